"""`Supervisor`: fleets of children -- processes, tasks, nested supervisors --
restarted by Erlang/OTP's rules, brought up in order, stopped completely.

The rules themselves live in `trioproc._policy` (pure, tested without
processes); this module carries them out with Trio.

Structure: the children live in an inner nursery hosted under a shielded
scope, so that cancelling the user's block (a cancellation from outside, or
the supervisor giving up) does not stop them all at once: leaving the block
runs an orderly shutdown -- reverse start order or all together, each child
with SIGTERM to its process group and SIGKILL after its own ``kill_after``,
everything under one overall deadline -- and only then closes the nursery.

Each life of a child is one task (`Supervisor._life`): it starts the child,
reports it started, waits for its end, and if nobody asked for that end,
asks the policy what to do and does it.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import os
import re
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, final

import attrs
import trio

from ._errors import (
    ChildNotReady,
    ProcessEnded,
    ProcessExitedAlready,
    RestartIntensityExceeded,
)
from ._notify import Notification, NotifySocket
from ._options import SpawnOptions, StrOrBytesPath
from ._os._cgroup import unavailable
from ._os._launch import find_program
from ._policy import (
    RESTART_TYPES,
    STRATEGIES,
    Backoff,
    GiveUp,
    NoRestart,
    Restart,
    RestartPolicy,
    RestartType,
    Strategy,
    check_seconds,
)
from ._protocol import ProcessProtocol
from ._spawn import _one_error, exit_nursery, spawn
from ._ssh import check_remote, host_name

if sys.version_info < (3, 11):  # pragma: no cover - trio requires it there
    from exceptiongroup import (  # type: ignore[import-not-found,unused-ignore]
        BaseExceptionGroup,
    )

if TYPE_CHECKING:
    from ._transport import ProcessTransport

__all__ = [
    "ChildSpec",
    "SupervisedChild",
    "Supervisor",
    "SupervisorEvent",
    "print_lines",
    "ready_on_notify",
    "ready_on_output",
    "ready_on_port",
]

logger: Final = logging.getLogger("trioproc.supervisor")

ReadyCheck: TypeAlias = "Callable[[SupervisedChild], Awaitable[object]]"
OutputSink: TypeAlias = "Callable[[str, int, bytes], object]"
EventSink: TypeAlias = "Callable[[SupervisorEvent], object]"
EventKind: TypeAlias = Literal[
    "started", "ready", "exited", "restarting", "stopped", "gave_up"
]

# A line longer than this is delivered in pieces: memory stays bounded.
_MAX_LINE: Final = 1 << 16
_RECENT_LINES: Final = 256
# How long a child's output may stay open after the child exited.
_LEFTOVER_GRACE: Final = 0.5
_told_no_cgroup = False
_LEVELS: Final = {"exited": logging.WARNING, "gave_up": logging.ERROR}
# STATUS= text beyond this is cut: status replies stay bounded.
_MAX_STATUS: Final = 512
# Sets WATCHDOG_PID to the program's own pid, which is known only in the
# child: exec keeps the pid, and os.execv keeps argv[0] exactly. Python
# ignores SIGPIPE and SIGXFSZ, and that would survive exec: reset them.
_WATCHDOG_PID_WRAPPER: Final = (
    "import os, signal, sys\n"
    "for s in (signal.SIGPIPE, signal.SIGXFSZ):\n"
    "    signal.signal(s, signal.SIG_DFL)\n"
    "os.environ['WATCHDOG_PID'] = str(os.getpid())\n"
    "os.execv(sys.argv[1], sys.argv[2:])\n"
)


def print_lines(name: str, fd: int, line: bytes) -> None:
    """The default output sink: ``name | line`` on stdout (``name ! line``
    for stderr)."""
    mark = "|" if fd == 1 else "!"
    sys.stdout.write(f"{name} {mark} {line.decode(errors='replace')}\n")
    sys.stdout.flush()


def ready_on_output(pattern: bytes | str | re.Pattern[bytes]) -> ReadyCheck:
    """Ready once the child prints a line (stdout or stderr) matching *pattern*."""
    regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)

    async def check(child: SupervisedChild) -> None:
        await child.wait_for_output(regex)

    check.__qualname__ = f"ready_on_output({regex.pattern!r})"
    return check


def ready_on_port(
    port: int, host: str | None = None, *, every: float = 0.05
) -> ReadyCheck:
    """Ready once a TCP connection to *host*:*port* succeeds (tried every
    *every* seconds). *host* defaults to the child's own: the host name of
    its ``host=`` for a remote child (an ssh_config alias is not followed),
    else 127.0.0.1."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be from 1 to 65535, not {port!r}")

    async def check(child: SupervisedChild) -> None:
        target = host
        if target is None:
            remote = child.spec.host
            target = "127.0.0.1" if remote is None else host_name(remote)
        while True:
            try:
                stream = await trio.open_tcp_stream(target, port)
            except OSError:
                await trio.sleep(every)
                continue
            await stream.aclose()
            return

    check.__qualname__ = f"ready_on_port({port})"
    return check


@final
@attrs.frozen
class _NotifyReady:
    """The ready check `ready_on_notify` returns: the supervisor gives a
    child with this check a notify socket."""

    async def __call__(self, child: SupervisedChild) -> None:
        await child._notified_ready.wait()

    def __repr__(self) -> str:
        return "ready_on_notify()"


def ready_on_notify() -> ReadyCheck:
    """Ready once the child sends ``READY=1`` by systemd's ``sd_notify``
    protocol, as a ``Type=notify`` service does.

    The child gets ``NOTIFY_SOCKET``: an ``AF_UNIX`` datagram socket of this
    life alone, in a private temporary directory. Only messages whose sender
    (as the kernel reports it) is the child, or a process in the child's
    process group, count -- so ``sd_notify()``, ``systemd-notify --ready``
    run from the child's shell script, and any helper it starts can report
    for it, and no other child can. ``STATUS=`` text is kept as
    `SupervisedChild.status`. Works with process children only.
    """
    return _NotifyReady()


@final
@attrs.frozen(kw_only=True)
class ChildSpec:
    """What to supervise, and how.

    Exactly one of *argv* (a process) or *task* (an async function, called
    with no arguments, or with ``task_status`` if it takes one -- then it is
    running once it calls ``task_status.started()``, as with
    ``nursery.start``) must be given. A task that raises has failed; one
    that returns has exited normally.

    Args:
      name: unique within its supervisor.
      restart: ``"permanent"`` (always restarted), ``"transient"`` (only
        after a failure) or ``"temporary"`` (never).
      ready: an async check the child must pass before it counts as started
        (`ready_on_output`, `ready_on_port`, or any ``async def
        check(child)``); ``None``: running is ready.
      ready_timeout: seconds the check may take; then the child is stopped
        and counts as failed.
      watchdog: seconds within which the child must send ``WATCHDOG=1``
        (``sd_notify``) once it is ready, and again after each one, else it
        is stopped and restarted as a failure -- systemd's ``WatchdogSec=``.
        The child gets ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and
        ``WATCHDOG_PID`` (its own pid); ``None``: no watchdog.
      kill_after: seconds between SIGTERM and SIGKILL when stopping it.
      backoff: the waits between its restarts (`Backoff`).
      cgroup: ``True``: the child's tree is held in a cgroup of its own, as
        ``spawn(cgroup=True)``; ``False``: not; ``None`` (the default):
        wherever a cgroup can be made, else (logged once) process groups.
      host, ssh_options: run the process on that host through ``ssh``, as
        ``spawn(host=...)``; it is supervised like a local one (and never
        gets a cgroup: *cgroup* ``None`` means ``False`` there).
      env, cwd, executable, uid, gid, new_session: as for ``spawn()``;
        children lead their own session by default, and their own process
        group in any case, so stopping one stops its own children too. When
        the process exits, a background process it left in its group that
        still holds its output is stopped as well (else the output stays
        open and the exit goes unnoticed).
    """

    name: str = attrs.field(kw_only=False)
    argv: Sequence[StrOrBytesPath] | None = None
    task: Callable[..., Awaitable[object]] | None = None
    restart: RestartType = "permanent"
    ready: ReadyCheck | None = None
    ready_timeout: float = 10.0
    watchdog: float | None = None
    kill_after: float = 5.0
    backoff: Backoff = attrs.field(factory=Backoff)
    env: Mapping[str, str] | None = None
    cwd: StrOrBytesPath | None = None
    executable: StrOrBytesPath | None = None
    uid: int | str | None = None
    gid: int | str | None = None
    new_session: bool = True
    cgroup: bool | None = None
    host: str | None = None
    ssh_options: Sequence[str] | StrOrBytesPath | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty str, not {self.name!r}")
        if (self.argv is None) == (self.task is None):
            raise TypeError(
                f"ChildSpec {self.name!r}: give exactly one of argv= or task="
            )
        if self.restart not in RESTART_TYPES:
            raise ValueError(
                f"restart must be one of {RESTART_TYPES}, not {self.restart!r}"
            )
        if self.task is not None and not callable(self.task):
            raise TypeError(f"task must be an async function, not {self.task!r}")
        if self.ready is not None and not callable(self.ready):
            raise TypeError(f"ready must be an async callable, not {self.ready!r}")
        if not isinstance(self.backoff, Backoff):
            raise TypeError(f"backoff must be a trioproc.Backoff, not {self.backoff!r}")
        check_seconds("ready_timeout", self.ready_timeout)
        if self.watchdog is not None and not check_seconds("watchdog", self.watchdog):
            raise ValueError("watchdog must be more than 0 seconds, or None")
        if self.task is not None and (self.watchdog is not None or self.notifies):
            raise TypeError(
                f"ChildSpec {self.name!r}: ready_on_notify() and watchdog= need "
                "a process child (argv=)"
            )
        if self.argv is not None:
            self.spawn_options()  # bad spawn() arguments fail here, not later

    @property
    def notifies(self) -> bool:
        """Whether the child gets a notify socket (`ready_on_notify`, or a
        watchdog)."""
        return isinstance(self.ready, _NotifyReady) or self.watchdog is not None

    def spawn_options(self) -> SpawnOptions:
        """The checked ``spawn()`` arguments of a process child."""
        assert self.argv is not None
        options = self._local_options()
        if self.host is not None:
            remote = check_remote(
                self.host, self.ssh_options, options, child_fds_given=False
            )
            options = attrs.evolve(options, remote=remote)
        return options

    def _local_options(self) -> SpawnOptions:
        assert self.argv is not None
        return SpawnOptions.check(
            self.argv,
            executable=self.executable,
            env=self.env,
            cwd=self.cwd,
            uid=self.uid,
            gid=self.gid,
            new_session=self.new_session,
            cgroup=bool(self.cgroup),
            kill_after=self.kill_after,
        )

    def wants_cgroup(self) -> bool:
        """Whether this child gets a cgroup of its own: as asked, or (``None``)
        wherever one can be made, saying once when none can."""
        if self.cgroup is not None:
            return self.cgroup
        if self.host is not None:
            return False
        why = unavailable()
        if why is not None:
            global _told_no_cgroup
            if not _told_no_cgroup:
                _told_no_cgroup = True
                logger.warning(
                    "no cgroup for supervised children (%s): their process "
                    "groups are stopped, but a daemon that leaves its group "
                    "escapes",
                    why.strerror or why,
                )
            return False
        return True


@final
@attrs.frozen
class SupervisorEvent:
    """Something that happened to a supervised child (or the supervisor).

    Attributes:
      kind: ``"started"``, ``"ready"``, ``"exited"`` (by itself),
        ``"restarting"``, ``"stopped"`` (by the supervisor) or ``"gave_up"``.
      name: the child's name (the first child's that failed, for
        ``"gave_up"``).
      pid: its pid, for a process.
      returncode: for ``"exited"``: the exit code or ``-signum``; ``0`` for a
        task that returned.
      error: for ``"exited"`` of a task that raised: the exception's repr.
      delay: for ``"restarting"``: seconds before the restart.
      restarts: how many times the child was restarted before.
      message: the event as one line of text.
    """

    kind: EventKind
    name: str
    pid: int | None = None
    returncode: int | None = None
    error: str | None = None
    delay: float | None = None
    restarts: int = 0
    message: str = ""


@final
class SupervisedChild:
    """A supervised child across its lives (``supervisor.child(name)``).

    Attributes:
      name: its name.
      spec: its `ChildSpec`.
      restarts: how many times it was restarted.
      returncode: how its last life ended (``None`` before the first end).
      status: the latest ``STATUS=`` text its current life sent by
        ``sd_notify`` (`ready_on_notify`, ``watchdog``), else ``None``.
    """

    def __init__(self, spec: ChildSpec) -> None:
        self.name = spec.name
        self.spec = spec
        self.restarts = 0
        self.returncode: int | None = None
        self.status: str | None = None
        self._transport: ProcessTransport | None = None
        # trio.current_time() when the current life started.
        self._since: float | None = None
        # This life's READY=1 (ready_on_notify) and watchdog state.
        self._notified_ready = trio.Event()
        self._became_ready = trio.Event()
        self._pinged = trio.Event()
        self._last_ping = 0.0
        self._watchdog_seconds: float | None = None
        self._watchdog_expired = False
        self._foreign_warned = False
        self._running = False
        self._ready = False
        self._stopping = False
        # The _bring_up call that owns the current life's start (its end
        # before it is ready is that call's to report), if any.
        self._bringing_up: object | None = None
        # The start() or restart() call waiting for this child, if any.
        self._waiter: _Waiter | None = None
        self._ended_by_itself = False
        self._last_pid: int | None = None
        self._pending_restart: trio.CancelScope | None = None
        self._scope: trio.CancelScope | None = None
        self._ended = trio.Event()
        self._ended.set()
        self._output: list[tuple[re.Pattern[bytes], trio.Event, list[bytes]]] = []
        # The current life's latest lines, for a ready check that starts late.
        self._recent: deque[bytes] = deque(maxlen=_RECENT_LINES)

    def __repr__(self) -> str:
        state = "running" if self._running else "down"
        return (
            f"<SupervisedChild {self.name!r} {state}, pid {self.pid}, "
            f"{self.restarts} restarts>"
        )

    @property
    def pid(self) -> int | None:
        """The pid of its current life (a process child), else ``None``."""
        return self._transport.pid if self._transport is not None else None

    @property
    def running(self) -> bool:
        """Whether a life of it is running now."""
        return self._running

    @property
    def ready(self) -> bool:
        """Whether its current life passed its ready check."""
        return self._ready

    @property
    def uptime(self) -> float | None:
        """Seconds since its current life started, or ``None`` when down."""
        if not self._running or self._since is None:
            return None
        return trio.current_time() - self._since

    @property
    def transport(self) -> ProcessTransport | None:
        """The transport of its current life (a process child), else ``None``."""
        return self._transport

    async def wait_for_output(self, pattern: bytes | str | re.Pattern[bytes]) -> bytes:
        """Wait for a line of its current life's output matching *pattern*;
        return it. Lines written before the call count too (the latest
        hundreds of them), so a child that prints before anyone asks is
        still seen."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        for line in self._recent:
            if regex.search(line):
                await trio.lowlevel.checkpoint()
                return line
        found = trio.Event()
        result: list[bytes] = []
        self._output.append((regex, found, result))
        try:
            await found.wait()
        finally:
            with contextlib.suppress(ValueError):
                self._output.remove((regex, found, result))
        return result[0]

    def _line(self, line: bytes) -> None:
        self._recent.append(line)
        for regex, found, result in list(self._output):
            if not found.is_set() and regex.search(line):
                result.append(line)
                found.set()


@final
@attrs.define(eq=False)
class _Waiter:
    """A `Supervisor.start` or `Supervisor.restart` call waiting for its child
    to be ready, which group restarts stopped and owe a new life.

    Attributes:
      owed: group restarts that stopped the child and have not yet brought
        it up again (or given up on it).
      taken: whether any group restart did.
      error: why a group restart could not bring it up: the call's to raise.
      news: set (and replaced) whenever *owed* goes down.
    """

    owed: int = 0
    taken: bool = False
    error: Exception | None = None
    news: trio.Event = attrs.field(factory=trio.Event)

    def settle(self, error: Exception | None) -> None:
        """One group restart is done with the child: it is up, or *error*."""
        self.owed -= 1
        if error is not None and self.error is None:
            self.error = error
        self.news.set()
        self.news = trio.Event()


class _Lines(ProcessProtocol):
    """Cuts a child's output into lines for its sink and its ready checks."""

    def __init__(self, child: SupervisedChild, sink: OutputSink | None) -> None:
        self.child, self.sink = child, sink
        self.partial: dict[int, bytes] = {}
        self.open = {1, 2}
        self.closed = trio.Event()  # end of file on stdout and stderr

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        buffered = self.partial.pop(childFD, b"") + data
        *lines, rest = buffered.split(b"\n")
        for line in lines:
            self._deliver(childFD, line)
        while len(rest) > _MAX_LINE:  # no newline yet: keep the memory bounded
            self._deliver(childFD, rest[:_MAX_LINE])
            rest = rest[_MAX_LINE:]
        if rest:
            self.partial[childFD] = rest

    def childConnectionLost(self, childFD: int) -> None:
        rest = self.partial.pop(childFD, b"")
        if rest:
            self._deliver(childFD, rest)
        self.open.discard(childFD)
        if not self.open:
            self.closed.set()

    def _deliver(self, fd: int, line: bytes) -> None:
        line = line.removesuffix(b"\r")
        for start in range(0, max(len(line), 1), _MAX_LINE):
            piece = line[start : start + _MAX_LINE]
            if self.sink is not None:
                self.sink(self.child.name, fd, piece)
            self.child._line(piece)


async def _sweep(
    child: SupervisedChild, transport: ProcessTransport, lines: _Lines
) -> None:
    """*child*'s process exited: do not let what it left behind (a background
    process still holding its output) keep this life open.

    After a short grace, such a process in the child's own process group is
    stopped as the child would have been (SIGTERM, SIGKILL after
    ``kill_after``), and the output pipes are closed.
    """
    with trio.move_on_after(_LEFTOVER_GRACE):
        await lines.closed.wait()
        return
    # What is left in the child's process group is stopped as the child
    # would have been; once the group is gone the block closes the pipes.
    await transport.stop()


def _notify_plan(
    spec: ChildSpec, notifications: NotifySocket | None
) -> tuple[Sequence[StrOrBytesPath], StrOrBytesPath | None, Mapping[str, str] | None]:
    """The argv, executable and env to spawn *spec*'s child with: as given,
    or with the notify socket and watchdog in its environment.

    With a watchdog the program is started through a small Python step that
    sets ``WATCHDOG_PID`` to the program's own pid; the program is looked up
    here first, so that a missing one still raises ``FileNotFoundError``.
    """
    assert spec.argv is not None
    if notifications is None:
        return spec.argv, spec.executable, spec.env
    env = dict(os.environ if spec.env is None else spec.env)
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(key, None)
    env["NOTIFY_SOCKET"] = notifications.path
    if spec.watchdog is None:
        return spec.argv, spec.executable, env
    env["WATCHDOG_USEC"] = str(round(spec.watchdog * 1e6))
    options = spec.spawn_options()
    program = find_program(options.program, options.search_path)
    wrapper: list[StrOrBytesPath] = [sys.executable, "-I", "-S", "-c"]
    return [*wrapper, _WATCHDOG_PID_WRAPPER, program, *options.argv], None, env


async def _receive(
    child: SupervisedChild, transport: ProcessTransport, sock: NotifySocket
) -> None:
    """Read *child*'s notifications for the length of its life."""
    pid = transport.pid
    while True:
        message = await sock.receive()
        if pid is None or not _from(child, pid, message):
            if not child._foreign_warned:
                child._foreign_warned = True
                logger.warning(
                    "%s: ignored a notification from pid %s, which is not "
                    "in its process group",
                    child.name,
                    message.pid,
                )
            continue
        fields = message.fields
        if "STATUS" in fields:
            child.status = fields["STATUS"][:_MAX_STATUS]
        if fields.get("READY") == "1":
            child._notified_ready.set()
        usec = fields.get("WATCHDOG_USEC", "")
        if usec.isdigit() and int(usec) > 0:
            child._watchdog_seconds = int(usec) / 1e6
            child._last_ping = trio.current_time()
        if fields.get("WATCHDOG") == "1":
            child._last_ping = trio.current_time()
        elif fields.get("WATCHDOG") == "trigger":
            child._last_ping = -math.inf
        child._pinged.set()
        child._pinged = trio.Event()


def _from(child: SupervisedChild, pid: int, message: Notification) -> bool:
    """Whether *message* came from *child* (pid *pid*) or its process group."""
    if message.pid is None:
        return False
    if message.pid == pid:
        return True
    return child.spec.new_session and message.pgid == pid


async def _watchdog(child: SupervisedChild, transport: ProcessTransport) -> None:
    """Stop *child* once it is ready and then misses its watchdog deadline."""
    await child._became_ready.wait()
    while True:
        seconds = child._watchdog_seconds
        assert seconds is not None
        with trio.move_on_at(child._last_ping + seconds):
            await child._pinged.wait()  # a new deadline: compute it again
            continue
        break
    child._watchdog_expired = True
    logger.warning("%s: no WATCHDOG=1 within %gs: stopping it", child.name, seconds)
    await transport.stop()


def _kill(child: SupervisedChild) -> None:
    """SIGKILL *child*'s process (and its process group, if it leads one)."""
    transport = child._transport
    if not child._running or transport is None or transport.pid is None:
        return
    # The child leads its own process group (spawn()'s default). A remote
    # child's pid is the remote host's: only signalProcess reaches it.
    if child.spec.host is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(transport.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessExitedAlready):
        transport.signalProcess(signal.SIGKILL)


def _not_again(
    owed: dict[SupervisedChild, _Waiter], child: SupervisedChild, why: str
) -> None:
    """The group restart that stopped *child* for its waiting caller will not
    bring it up: that caller raises `ChildNotReady`."""
    waiter = owed.pop(child, None)
    if waiter is not None:
        message = f"{child.name} was stopped by a restart of its group, {why}"
        waiter.settle(ChildNotReady(message, child.name))


def _takes_task_status(task: Callable[..., Any]) -> bool:
    try:
        return "task_status" in inspect.signature(task).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without one
        return False


@final
class Supervisor:
    """Supervise children by Erlang/OTP's rules, in an ``async with`` block.

    ::

        async with trioproc.Supervisor("one_for_one", max_restarts=3) as sup:
            await sup.start(trioproc.ChildSpec("web", argv=[...],
                            ready=trioproc.ready_on_port(8000)))
            await trio.sleep_forever()

    Args:
      strategy: ``"one_for_one"``, ``"one_for_all"`` or ``"rest_for_one"``.
      max_restarts, max_seconds: more restarts than *max_restarts* within
        *max_seconds* and the supervisor stops everything and raises
        `RestartIntensityExceeded` out of the block.
      shutdown: ``"reverse"`` stops children in reverse start order, one at a
        time; ``"parallel"`` stops them all at once.
      shutdown_timeout: the deadline for the whole shutdown; children still
        running then are killed (SIGKILL to their process groups).
      on_output: ``(name, fd, line)`` for each line a process child writes;
        by default `print_lines`; ``None`` discards. Ready checks on output
        work either way.
      on_event: called with each `SupervisorEvent`; every event is also
        logged on the ``trioproc.supervisor`` logger.

    Leaving the block (normally, by an exception, or by a cancellation)
    stops every child; the block returns only when every process is reaped.

    A child still starting when its group restarts: with ``"one_for_all"``
    or ``"rest_for_one"``, a sibling's crash while `start` (or `restart`)
    waits for a child's ready check restarts that child with the group, as
    Erlang/OTP's strategies restart every child of the group: it is stopped
    with the others and started again in its place in start order, and the
    waiting call goes on waiting -- for that new life -- so that it still
    returns only a child that is running and ready, with no stop asked of
    it since. If that life is not ready either (it exits first, its check
    fails, its ``ready_timeout`` passes), the call raises `ChildNotReady`
    as for a first life and the child is no longer supervised; a
    ``"temporary"`` child, which a group restart does not start again, makes
    the call raise `ChildNotReady` at once. So a crash-looping sibling delays
    a start, and may outlast it only until the restart intensity gives up.
    """

    def __init__(
        self,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        *,
        shutdown: Literal["reverse", "parallel"] = "reverse",
        shutdown_timeout: float = 60.0,
        on_output: OutputSink | None = print_lines,
        on_event: EventSink | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, not {strategy!r}")
        if shutdown not in ("reverse", "parallel"):
            raise ValueError(
                f"shutdown must be 'reverse' or 'parallel', not {shutdown!r}"
            )
        self._policy = RestartPolicy(strategy, max_restarts, max_seconds)
        self._shutdown_order = shutdown
        self._shutdown_timeout = check_seconds("shutdown_timeout", shutdown_timeout)
        self._on_output = on_output
        self._on_event = on_event
        self._children: dict[str, SupervisedChild] = {}
        self._pending: set[trio.CancelScope] = set()
        self._group_lock = trio.Lock()
        self._gave_up: RestartIntensityExceeded | None = None
        self._closing = False
        self._manager: Any = None
        self._outer: trio.Nursery | None = None
        self._inner: trio.Nursery | None = None
        self._host_scope: trio.CancelScope | None = None

    # --- the block -----------------------------------------------------------

    async def __aenter__(self) -> Supervisor:
        if self._manager is not None:
            raise RuntimeError("this Supervisor was already entered")
        self._manager = trio.open_nursery()
        self._outer = await self._manager.__aenter__()
        try:
            self._inner = await self._outer.start(self._host)
        except BaseException as exc:
            await self._manager.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def _host(self, task_status: trio.TaskStatus[trio.Nursery]) -> None:
        # Shielded: only an orderly shutdown stops the children, never the
        # cancellation of the block around them.
        with trio.CancelScope(shield=True) as self._host_scope:
            async with trio.open_nursery() as inner:
                task_status.started(inner)
                await trio.sleep_forever()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        manager = self._manager
        with trio.CancelScope(shield=True):
            await self._shutdown()
        assert self._host_scope is not None
        self._host_scope.cancel()
        gave_up = self._gave_up
        try:
            suppressed = await exit_nursery(manager, exc_type, exc, tb)
        except (BaseExceptionGroup, trio.Cancelled) as ended:
            # Several errors, or the cancellation giving up caused: giving up
            # is what leaves the block.
            if gave_up is not None:
                raise gave_up from ended
            raise
        if gave_up is not None and (exc is None or isinstance(exc, trio.Cancelled)):
            raise gave_up from exc  # (a body error of its own leaves as itself)
        return suppressed

    # --- public operations ---------------------------------------------------

    async def start(self, spec: ChildSpec) -> SupervisedChild:
        """Start supervising *spec*; return once it runs and, with
        ``spec.ready``, once it is ready.

        A restart of its group meanwhile starts it again, and this call waits
        for that life (see the class doc): the child returned is running and
        ready.

        Raises:
          ValueError: a child of that name is supervised already.
          ChildNotReady: it exited before it was ready, its ready check
            failed, or its ``ready_timeout`` passed -- in its first life or
            in one a group restart started for it -- or it is temporary and
            a group restart stopped it; it has been stopped and is not
            supervised.
          OSError: the program could not be started.

        Cancellation: a child half-started is stopped.
        """
        if not isinstance(spec, ChildSpec):
            raise TypeError(f"start() takes a ChildSpec, not {spec!r}")
        if self._inner is None or self._closing:
            raise RuntimeError("start() needs the supervisor's async with block")
        old = self._children.get(spec.name)
        if old is not None and (old.running or spec.name in self._policy.order):
            raise ValueError(f"a child named {spec.name!r} is supervised already")
        child = SupervisedChild(spec)
        self._children[spec.name] = child
        self._policy.add(spec.name, spec.restart, spec.backoff)
        try:
            await self._bring_up_for_caller(child)
        except BaseException:
            self._policy.remove(spec.name)
            del self._children[spec.name]
            raise
        return child

    def child(self, name: str) -> SupervisedChild:
        """The child called *name*.

        Raises:
          KeyError: no such child.
        """
        try:
            return self._children[name]
        except KeyError:
            raise KeyError(f"no supervised child named {name!r}") from None

    @property
    def children(self) -> list[SupervisedChild]:
        """Every child, in start order."""
        return list(self._children.values())

    async def stop(self, name: str) -> None:
        """Stop *name* for good (SIGTERM, SIGKILL after its kill_after); it is
        not restarted (a restart waiting in its backoff is dropped), and
        `start` may start a new one under that name."""
        child = self.child(name)
        self._policy.remove(name)
        self._drop_pending_restart(child)
        await self._stop(child)

    async def restart(self, name: str) -> None:
        """Stop *name* and start it again (waiting until it is ready, as
        `start` does, through restarts of its group).

        This restart is asked for: it counts in ``child.restarts`` but not
        against the restart intensity.

        Raises:
          KeyError: no such child.
          RuntimeError: the supervisor is shutting down.
          ChildNotReady, OSError: as for `start`; the child is then no longer
            supervised (`start` may start it again).
        """
        child = self.child(name)
        if self._closing:
            raise RuntimeError("restart() during the supervisor's shutdown")
        if name not in self._policy.order:
            self._policy.add(name, child.spec.restart, child.spec.backoff)
        self._drop_pending_restart(child)
        await self._stop(child)
        child.restarts += 1
        try:
            await self._bring_up_for_caller(child)
        except BaseException:
            self._policy.remove(name)
            raise

    def _drop_pending_restart(self, child: SupervisedChild) -> None:
        if child._pending_restart is not None:
            child._pending_restart.cancel()
            child._pending_restart = None

    # --- lives of children -----------------------------------------------

    async def _bring_up_for_caller(self, child: SupervisedChild) -> None:
        """`_bring_up` for `start` and `restart`: return once *child* is
        ready, though group restarts stop it meanwhile.

        A group restart that stops the child before this call returned starts
        it again with the group (`_restart`); this call then waits for that
        life instead, and raises what the group's attempt raised. When it
        returns, no group restart has stopped the child since it was ready.
        """
        waiter = child._waiter = _Waiter()
        try:
            try:
                await self._bring_up(child)
            except Exception:
                if not waiter.taken:
                    raise
            while waiter.owed and waiter.error is None:
                await waiter.news.wait()
            if waiter.error is not None:
                raise waiter.error
        except BaseException:
            if waiter.owed:
                # Cancelled while a group restart owes it a life: that life,
                # once started, must not go on unsupervised (the group
                # restart skips it once the caller has forgotten it).
                with trio.CancelScope(shield=True):
                    await self._stop(child)
            raise
        finally:
            if child._waiter is waiter:
                child._waiter = None

    async def _bring_up(self, child: SupervisedChild) -> None:
        """Start a life of *child* and wait until it is ready.

        A child that ends before it is ready is this call's to report (as
        `ChildNotReady`), not its life's: the life does not ask the policy.
        """
        assert self._inner is not None
        if child._scope is not None:
            return  # alive already: never two lives at once
        # A token, not a flag: a group restart may start the next life while
        # this call is still unwinding from the life it stopped.
        token = child._bringing_up = object()
        try:
            await self._inner.start(self._life, child)
            try:
                await self._until_ready(child)
            except BaseException:
                # Not ready, or the caller was cancelled: a life that is not
                # handed over must not go on unsupervised.
                with trio.CancelScope(shield=True):
                    await self._stop(child)
                raise
        finally:
            if child._bringing_up is token:
                child._bringing_up = None
        if child._ended.is_set():
            if child._ended_by_itself:
                # Ready, then ended before we got here: an ordinary end,
                # which its life left to us.
                self._inner.start_soon(self._after_end, child, child.returncode)
            else:
                # Ready, but stopped before we got here: not ready -- unless
                # a group restart stopped it, to start it again for a caller.
                if child._waiter is None or not child._waiter.owed:
                    raise ChildNotReady(
                        f"{child.name} was stopped before it was ready", child.name
                    )
            return
        child._ready = True
        child._last_ping = trio.current_time()  # the watchdog counts from here
        child._became_ready.set()
        self._emit("ready", child)

    async def _until_ready(self, child: SupervisedChild) -> None:
        """Run the child's ready check, racing its end and its ready_timeout."""
        check = child.spec.ready
        if check is None:
            await trio.lowlevel.checkpoint()
            return
        ended = child._ended
        outcome: list[str] = []
        failure: list[Exception] = []
        with trio.move_on_after(child.spec.ready_timeout):
            async with trio.open_nursery() as race:

                async def ready() -> None:
                    try:
                        await check(child)
                    except Exception as exc:
                        failure.append(exc)
                        outcome.append("failed")
                    else:
                        outcome.append("ready")
                    race.cancel_scope.cancel()

                async def exited() -> None:
                    await ended.wait()
                    outcome.append("exited")
                    race.cancel_scope.cancel()

                race.start_soon(ready)
                race.start_soon(exited)
        if outcome[:1] == ["ready"]:
            return
        if outcome[:1] == ["exited"]:
            code = child.returncode
            raise ChildNotReady(
                f"{child.name} exited ({code}) before it was ready", child.name, code
            )
        if outcome[:1] == ["failed"]:
            raise ChildNotReady(
                f"{child.name}'s ready check failed: {failure[0]!r}", child.name
            ) from failure[0]
        raise ChildNotReady(
            f"{child.name} was not ready within {child.spec.ready_timeout:g}s",
            child.name,
        )

    async def _life(
        self, child: SupervisedChild, task_status: trio.TaskStatus[None]
    ) -> None:
        """One life of *child*: start, report started, wait for the end, act."""
        spec = child.spec
        child._ended = trio.Event()
        child._transport = None
        child._recent.clear()
        child._stopping = child._ready = False
        child.status = None
        child._notified_ready = trio.Event()
        child._became_ready = trio.Event()
        child._watchdog_seconds = spec.watchdog
        child._watchdog_expired = child._foreign_warned = False
        child._scope = scope = trio.CancelScope()
        returncode: int | None = None
        error: BaseException | None = None
        started = False
        try:
            with scope:
                if spec.argv is not None:
                    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
                    lines = _Lines(child, self._on_output)
                    notifications = NotifySocket() if spec.notifies else None
                    try:
                        argv, executable, env = _notify_plan(spec, notifications)
                        block = spawn(
                            argv,
                            lines,
                            executable=executable,
                            env=env,
                            cwd=spec.cwd,
                            child_fds={0: null, 1: "r", 2: "r"},
                            uid=spec.uid,
                            gid=spec.gid,
                            new_session=spec.new_session,
                            cgroup=spec.wants_cgroup(),
                            kill_after=spec.kill_after,
                            host=spec.host,
                            ssh_options=spec.ssh_options,
                        )
                        async with block as transport:
                            os.close(null)
                            null = -1
                            child._transport = transport
                            child._last_pid = transport.pid
                            started = self._running(child)
                            task_status.started()
                            async with trio.open_nursery() as helpers:
                                if notifications is not None:
                                    helpers.start_soon(
                                        _receive, child, transport, notifications
                                    )
                                if spec.watchdog is not None:
                                    helpers.start_soon(_watchdog, child, transport)
                                await transport.wait()
                                helpers.cancel_scope.cancel()
                            await _sweep(child, transport, lines)
                            if child._watchdog_expired:
                                error = TimeoutError(
                                    "no WATCHDOG=1 within "
                                    f"{child._watchdog_seconds:g}s (watchdog)"
                                )
                    finally:
                        if null >= 0:
                            os.close(null)
                        if notifications is not None:
                            notifications.close()
                else:
                    assert spec.task is not None
                    try:
                        async with trio.open_nursery() as nursery:
                            if _takes_task_status(spec.task):
                                await nursery.start(spec.task)
                            else:
                                nursery.start_soon(spec.task)
                            started = self._running(child)
                            task_status.started()
                        returncode = 0
                    except BaseExceptionGroup as group:
                        # A task that raised has failed: keep its own error.
                        failure = group.subgroup(Exception)
                        if not started or failure is None or failure != group:
                            raise
                        error = _one_error(group) or group
                        returncode = 1
        finally:
            if child._transport is not None:
                returncode = child._transport.returncode
            child._running = child._ready = False
            child.returncode = returncode
            child._scope = None
            stopped = child._stopping or scope.cancelled_caught or self._closing
            child._ended_by_itself = started and not stopped
            child._ended.set()
            if started and stopped:
                if child.name in self._policy.order:
                    self._policy.stopped(child.name)
                self._emit("stopped", child, returncode=returncode)
        if started and not stopped:
            self._emit("exited", child, returncode=returncode, error=error)
            if child._bringing_up is not None:
                return  # _bring_up deals with it (ChildNotReady, or _after_end)
            await self._after_end(child, returncode)

    async def _after_end(self, child: SupervisedChild, returncode: int | None) -> None:
        """*child* ended by itself: ask the policy, and do what it says."""
        if child.name not in self._policy.order or self._closing:
            await trio.lowlevel.checkpoint()
            return
        failed = returncode != 0 or child._watchdog_expired
        decision = self._policy.exited(child.name, trio.current_time(), failed=failed)
        await self._act(child, decision)

    def _running(self, child: SupervisedChild) -> bool:
        child._running = True
        child._since = trio.current_time()
        self._policy.started(child.name, trio.current_time())
        self._emit("started", child)
        return True

    async def _act(self, child: SupervisedChild, decision: Any) -> None:
        """Carry out what the policy decided about *child*'s end."""
        # Children whose start() or restart() still waits, stopped by these
        # restarts and owed a new life (or an answer) by them.
        owed: dict[SupervisedChild, _Waiter] = {}
        try:
            while True:
                if isinstance(decision, NoRestart):
                    return
                if isinstance(decision, GiveUp):
                    self._give_up(child, decision)
                    return
                assert isinstance(decision, Restart)
                failed = await self._restart(child, decision, owed)
                if failed is None:
                    return
                child, decision = failed
        finally:
            for other in list(owed):
                _not_again(owed, other, "which did not start it again")

    async def _restart(
        self,
        child: SupervisedChild,
        decision: Restart,
        owed: dict[SupervisedChild, _Waiter],
    ) -> tuple[SupervisedChild, Any] | None:
        """Stop, wait, start; return the next decision if a start failed.

        A child stopped here while its `start` or `restart` call still waits
        is started again here in its place, for that call (*owed*); whether
        it came up or not is that call's to report, not the policy's.
        """
        scope = trio.CancelScope()
        self._pending.add(scope)
        if not decision.stop:
            child._pending_restart = scope
        try:
            with scope:
                async with (
                    self._group_lock if decision.stop else contextlib.nullcontext()
                ):
                    self._emit("restarting", child, delay=decision.delay)
                    for name in decision.stop:
                        if name not in self._children:
                            continue  # its start failed since the decision
                        other = self._children[name]
                        waiter = other._waiter
                        live = other._scope is not None
                        if waiter is not None and live and other not in owed:
                            waiter.owed += 1
                            waiter.taken = True
                            owed[other] = waiter
                        await self._stop(other)
                    for other in list(owed):
                        if other.name not in decision.start:  # temporary, or forgotten
                            _not_again(owed, other, "which does not start it again")
                    await trio.sleep(decision.delay)
                    for name in decision.start:
                        if name not in self._policy.order:
                            # Stopped for good meanwhile, or its start failed.
                            for other in [o for o in owed if o.name == name]:
                                _not_again(owed, other, "and then stopped")
                            continue
                        other = self._children[name]
                        waiter = owed.pop(other, None)
                        other.restarts += 1
                        try:
                            await self._bring_up(other)
                        except Exception as exc:  # it could not be started
                            if waiter is not None:
                                # Its caller's failed start: unsupervised.
                                self._policy.remove(name)
                                waiter.settle(exc)
                                continue
                            if not isinstance(exc, ChildNotReady):
                                self._emit("exited", other, error=exc)
                            now = trio.current_time()
                            return other, self._policy.exited(name, now, failed=True)
                        if waiter is not None:
                            waiter.settle(None)
                            if name not in self._policy.order:
                                # Its caller was cancelled as it came up.
                                await self._stop(other)
        finally:
            self._pending.discard(scope)
            if child._pending_restart is scope:
                child._pending_restart = None
        return None

    async def _stop(self, child: SupervisedChild) -> None:
        """End *child*'s current life, if it has one; return once it ended."""
        if child._scope is not None:
            child._stopping = True
            child._scope.cancel()
        await child._ended.wait()

    def _give_up(self, child: SupervisedChild, decision: GiveUp) -> None:
        if self._gave_up is not None:
            return
        message = (
            f"{decision.restarts} restarts within {decision.seconds:g}s "
            f"(last: {child.name}); giving up"
        )
        self._gave_up = RestartIntensityExceeded(message)
        self._emit("gave_up", child, message=message)
        assert self._outer is not None
        self._outer.cancel_scope.cancel()

    async def _shutdown(self) -> None:
        """Stop every child in order, under one deadline; kill the rest."""
        self._closing = True
        for scope in list(self._pending):
            scope.cancel()
        order = [c for c in self._children.values() if c._scope is not None]
        with trio.move_on_after(self._shutdown_timeout):
            if self._shutdown_order == "reverse":
                for child in reversed(order):
                    await self._stop(child)
            else:
                async with trio.open_nursery() as nursery:
                    for child in order:
                        nursery.start_soon(self._stop, child)
        for child in order:
            _kill(child)
            await self._stop(child)

    # --- events --------------------------------------------------------------

    def _emit(
        self,
        kind: EventKind,
        child: SupervisedChild,
        *,
        returncode: int | None = None,
        error: BaseException | None = None,
        delay: float | None = None,
        message: str = "",
    ) -> None:
        pid = child._last_pid if child.spec.argv is not None else None
        if not message:
            message = _describe(kind, child, returncode, error, delay)
        event = SupervisorEvent(
            kind,
            child.name,
            pid=pid,
            returncode=returncode,
            error=None if error is None else repr(error),
            delay=delay,
            restarts=child.restarts,
            message=message,
        )
        logger.log(_LEVELS.get(kind, logging.INFO), "%s", message)
        if self._on_event is not None:
            self._on_event(event)


def _describe(
    kind: str,
    child: SupervisedChild,
    returncode: int | None,
    error: BaseException | None,
    delay: float | None,
) -> str:
    name = child.name
    if kind == "started":
        pid = f" (pid {child.pid})" if child.pid is not None else ""
        return f"{name} started{pid}"
    if kind == "ready":
        return f"{name} is ready"
    if kind == "restarting":
        return f"{name}: restarting in {delay:.2f}s"
    if error is not None:
        return f"{name} failed: {error!r}"
    if returncode is None:
        return f"{name} {kind}"
    if returncode < 0:
        reason = ProcessEnded(signal=-returncode)
        return f"{name} {kind}: {reason}"
    return f"{name} {kind} with exit code {returncode}"
