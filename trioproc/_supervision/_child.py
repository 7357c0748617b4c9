"""`SupervisedChild`, and one life of it.

A child keeps its state across lives; the supervisor moves it from life to
life through a few transitions (`SupervisedChild._begin`, ``_mark_running``,
``_mark_ready``, ``_cancel``, ``_finish``). What happens during one life --
a process spawned with its output cut into lines, its notify socket and
watchdog, what it leaves behind swept up; or a task run in a nursery -- is
`live_process` and `live_task`.
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
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, final

import trio

from .._errors import ProcessExitedAlready
from .._notify import NotifySocket
from .._protocol import ProcessProtocol
from .._spawn import spawn
from .._util import one_error
from ._notifications import notify_plan, receive, watchdog

if sys.version_info < (3, 11):  # pragma: no cover - trio requires it there
    from exceptiongroup import (  # type: ignore[import-not-found,unused-ignore]
        BaseExceptionGroup,
    )

if TYPE_CHECKING:
    from .._transport import ProcessTransport
    from ._policy import RestartPolicy
    from ._spec import ChildSpec, OutputSink

__all__ = ["SupervisedChild", "live_process", "live_task"]

logger: Final = logging.getLogger("trioproc.supervisor")

# STATUS= text beyond this is cut: status replies stay bounded.
_MAX_STATUS: Final = 512
# A line longer than this is delivered in pieces: memory stays bounded.
_MAX_LINE: Final = 1 << 16
_RECENT_LINES: Final = 256
# How long a child's output may stay open after the child exited.
_LEFTOVER_GRACE: Final = 0.5


#: ``open()`` flag keeping an fd out of every child but the ones handed it.
_NOT_INHERITED: Final[int] = getattr(os, "O_CLOEXEC", 0) or getattr(
    os, "O_NOINHERIT", 0
)


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

    def __init__(self, spec: ChildSpec, policy: RestartPolicy) -> None:
        self.name = spec.name
        self.spec = spec
        self.restarts = 0
        self.returncode: int | None = None
        self.status: str | None = None
        self._transport: ProcessTransport | None = None
        # Whether it runs is the policy's record, read through `running`.
        self._policy = policy
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
        self._ready = False
        self._stopping = False
        self._ended_by_itself = False
        #: The exception the last life ended by (a task that raised), if any.
        self._failure: BaseException | None = None
        self._last_pid: int | None = None
        self._scope: trio.CancelScope | None = None
        self._ended = trio.Event()
        self._ended.set()
        self._output: list[tuple[re.Pattern[bytes], trio.Event, list[bytes]]] = []
        # The current life's latest lines, for a ready check that starts late.
        self._recent: deque[bytes] = deque(maxlen=_RECENT_LINES)

    def __repr__(self) -> str:
        state = "running" if self.running else "down"
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
        # The policy's record is by name; a child replaced by a new one of
        # its name (only when down) has no life, whatever the new one does.
        return self._alive and self._policy.is_running(self.name)

    @property
    def ready(self) -> bool:
        """Whether its current life passed its ready check."""
        return self._ready

    @property
    def uptime(self) -> float | None:
        """Seconds since its current life started, or ``None`` when down."""
        if not self.running or self._since is None:
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

    # --- its lives, as the supervisor moves it on ------------------------

    @property
    def _alive(self) -> bool:
        """Whether a life of it has begun and not yet ended."""
        return self._scope is not None

    def _begin(self, scope: trio.CancelScope) -> None:
        """A new life begins, under *scope*: forget the last life's state."""
        self._ended = trio.Event()
        self._transport = None
        self._recent.clear()
        self._stopping = self._ready = False
        self.status = None
        self._notified_ready = trio.Event()
        self._became_ready = trio.Event()
        self._watchdog_seconds = self.spec.watchdog
        self._watchdog_expired = self._foreign_warned = False
        self._scope = scope

    def _mark_running(self, now: float) -> None:
        """This life started at *now* (it runs once the policy is told)."""
        self._since = now

    def _mark_ready(self, now: float) -> None:
        """This life passed its ready check at *now*; its watchdog (if any)
        counts from here."""
        self._ready = True
        self._last_ping = now
        self._became_ready.set()

    def _cancel(self) -> None:
        """Ask this life, if there is one, to end (a stop, not a failure)."""
        if self._scope is not None:
            self._stopping = True
            self._scope.cancel()

    @property
    def _stop_asked(self) -> bool:
        """Whether `_cancel` was called in this life."""
        return self._stopping

    def _finish(self, returncode: int | None, *, by_itself: bool) -> int | None:
        """This life ended (*by_itself*, or stopped); return how: its
        process's returncode, else *returncode* (a task's)."""
        if self._transport is not None:
            returncode = self._transport.returncode
        self._ready = False
        self.returncode = returncode
        self._scope = None
        self._ended_by_itself = by_itself
        self._ended.set()
        return returncode

    def _notified(self, fields: Mapping[str, str], now: float) -> None:
        """This life sent *fields* (``sd_notify``) at *now*."""
        if "STATUS" in fields:
            self.status = fields["STATUS"][:_MAX_STATUS]
        if fields.get("READY") == "1":
            self._notified_ready.set()
        usec = fields.get("WATCHDOG_USEC", "")
        if usec.isdigit() and int(usec) > 0:
            self._watchdog_seconds = int(usec) / 1e6
            self._last_ping = now
        if fields.get("WATCHDOG") == "1":
            self._last_ping = now
        elif fields.get("WATCHDOG") == "trigger":
            self._last_ping = -math.inf
        self._pinged.set()
        self._pinged = trio.Event()

    def _foreign_notification(self) -> bool:
        """A notification not from this life came: whether it is the first
        (to be logged; later ones are not)."""
        first = not self._foreign_warned
        self._foreign_warned = True
        return first

    def _expire_watchdog(self) -> None:
        """This life missed its watchdog deadline: it is stopped as failed."""
        self._watchdog_expired = True

    async def _until_notified_ready(self) -> None:
        """Wait for this life's ``READY=1``."""
        await self._notified_ready.wait()

    def _kill(self) -> None:
        """SIGKILL this life's process (and its process group, if it leads
        one)."""
        transport = self._transport
        if not self.running or transport is None or transport.pid is None:
            return
        # The child leads its own process group (spawn()'s default). A remote
        # child's pid is the remote host's: only signalProcess reaches it.
        # On Windows, KILL terminates the child's Job Object: its whole tree.
        if self.spec.host is None and sys.platform != "win32":
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(transport.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessExitedAlready):
            transport.signalProcess("KILL")


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


def _takes_task_status(task: Callable[..., Any]) -> bool:
    try:
        return "task_status" in inspect.signature(task).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without one
        return False


async def live_process(
    child: SupervisedChild,
    on_output: OutputSink | None,
    on_running: Callable[[], None],
) -> BaseException | None:
    """One life of a process child: spawn it, call *on_running* once it
    runs, wait for its exit and sweep up what it left; return why it failed
    beyond its exit code (a missed watchdog), else ``None``.

    Its stdin is ``/dev/null``; its stdout and stderr go to *on_output*
    line by line, and to its ready checks.
    """
    spec = child.spec
    null = os.open(os.devnull, os.O_RDONLY | _NOT_INHERITED)
    lines = _Lines(child, on_output)
    notifications = NotifySocket() if spec.notifies else None
    error: BaseException | None = None
    try:
        argv, executable, env = notify_plan(spec, notifications)
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
            on_running()
            async with trio.open_nursery() as helpers:
                if notifications is not None:
                    helpers.start_soon(receive, child, transport, notifications)
                if spec.watchdog is not None:
                    helpers.start_soon(watchdog, child, transport)
                await transport.wait()
                helpers.cancel_scope.cancel()
            await _sweep(child, transport, lines)
            if child._watchdog_expired:
                error = TimeoutError(
                    f"no WATCHDOG=1 within {child._watchdog_seconds:g}s (watchdog)"
                )
    finally:
        if null >= 0:
            os.close(null)
        if notifications is not None:
            notifications.close()
    return error


async def live_task(
    child: SupervisedChild, on_running: Callable[[], None]
) -> tuple[int, BaseException | None]:
    """One life of a task child: run it in a nursery (with ``task_status``
    if it takes one), call *on_running* once it runs; return ``(0, None)``
    when it returned, ``(1, its error)`` when it raised.

    Raises:
      BaseExceptionGroup: it failed before it ran, or with more than errors
        (a cancellation, KeyboardInterrupt): not a failure of the child's.
    """
    task = child.spec.task
    assert task is not None
    started = False
    try:
        async with trio.open_nursery() as nursery:
            if _takes_task_status(task):
                await nursery.start(task)
            else:
                nursery.start_soon(task)
            started = True
            on_running()
        return 0, None
    except BaseExceptionGroup as group:
        # A task that raised has failed: keep its own error.
        failure = group.subgroup(Exception)
        if not started or failure is None or failure != group:
            raise
        return 1, one_error(group) or group
