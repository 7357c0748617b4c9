"""What a supervisor is told and what it tells: `ChildSpec` (what to
supervise, and how), `SupervisorEvent` (what happened), and the sinks for
events and output lines.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final, Literal, TypeAlias, final

import attrs

from .._errors import ProcessEnded
from .._options import (
    DEFAULT_KILL_AFTER,
    DEFAULT_READY_TIMEOUT,
    SpawnOptions,
    StrOrBytesPath,
)
from .._spawn import cgroups_unavailable as unavailable
from .._ssh import check_remote
from ._policy import RESTART_TYPES, Backoff, RestartType, check_seconds
from ._readiness import NotifyReady, ReadyCheck

__all__ = [
    "ChildSpec",
    "EventKind",
    "EventSink",
    "OutputSink",
    "SupervisorEvent",
    "describe",
    "print_lines",
]

logger: Final = logging.getLogger("trioproc.supervisor")

OutputSink: TypeAlias = "Callable[[str, int, bytes], object]"
EventSink: TypeAlias = "Callable[[SupervisorEvent], object]"
EventKind: TypeAlias = Literal[
    "started", "ready", "exited", "restarting", "stopped", "gave_up"
]

_told_no_cgroup = False


def print_lines(name: str, fd: int, line: bytes) -> None:
    """The default output sink: ``name | line`` on stdout (``name ! line``
    for stderr)."""
    mark = "|" if fd == 1 else "!"
    sys.stdout.write(f"{name} {mark} {line.decode(errors='replace')}\n")
    sys.stdout.flush()


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
        children lead their own session by default (on Windows, which has
        none, a Job Object of their own), and their own process
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
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    watchdog: float | None = None
    kill_after: float = DEFAULT_KILL_AFTER
    backoff: Backoff = attrs.field(factory=Backoff)
    env: Mapping[str, str] | None = None
    cwd: StrOrBytesPath | None = None
    executable: StrOrBytesPath | None = None
    uid: int | str | None = None
    gid: int | str | None = None
    new_session: bool = sys.platform != "win32"  # Windows has no sessions
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
        if self.notifies and not sys.platform.startswith("linux"):
            raise ValueError(
                f"ChildSpec {self.name!r}: ready_on_notify() and watchdog= need "
                "Linux (the sender of READY=1 is known by SCM_CREDENTIALS), not "
                f"{sys.platform}"
            )
        if self.argv is not None:
            self.spawn_options()  # bad spawn() arguments fail here, not later

    @property
    def notifies(self) -> bool:
        """Whether the child gets a notify socket (`ready_on_notify`, or a
        watchdog)."""
        return isinstance(self.ready, NotifyReady) or self.watchdog is not None

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


def describe(
    kind: EventKind,
    name: str,
    *,
    pid: int | None,
    returncode: int | None,
    error: BaseException | None,
    delay: float | None,
) -> str:
    """The one line of text of an event: what `SupervisorEvent.message` and
    the log say."""
    if kind == "started":
        pid_text = f" (pid {pid})" if pid is not None else ""
        return f"{name} started{pid_text}"
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
