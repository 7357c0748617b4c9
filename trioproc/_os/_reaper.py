"""The Linux child: waiting for its exit, reaping it, and the steps that end
its process tree (the stop sequence itself is `trioproc._os._stop`'s).

No task waits for a child: its pidfd goes to the run's exit watcher
(`trioproc._os._watcher`), which reaps it when it exits, and everybody else
waits on an event, so any number of concurrent or cancelled ``wait()`` calls
all see the same exit. No SIGCHLD handler is installed. A pidfd also makes
signals race-free (it cannot come to name another process). Where pidfds are
refused, a thread blocks in ``waitid(WNOWAIT)`` for each child.

A child leads its own process group by default, so what it starts (a shell's
background jobs, a build tool's helpers) is in that group too, and the block
ends the whole group: SIGTERM and SIGCONT (a stopped process acts on nothing
else), SIGKILL after ``kill_after``, and it returns only once no live process
is left in the group. The group's id is safe to signal: it is the child's pid,
which the kernel does not give to another process while the child is
unreaped or any member of its group lives, and the group is checked for a
live member just before each signal.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final, final

import attrs
import trio

from .._errors import ProcessExitedAlready
from . import _stop, _watcher
from ._stop import end_tree as end_tree, process_state as process_state

if TYPE_CHECKING:
    from ._cgroup import ChildCgroup
    from ._seam import ExitListener, RemoteHook

__all__ = ["Child", "end_tree", "process_state"]

#: How long the stop sequence waits after SIGKILL before it gives up on a
#: process stuck in the kernel and leaves the block with `ChildUnkillable`.
KILL_GRACE: float = 5.0

#: Set to False to force the thread fallback (tests of it do).
USE_PIDFD: bool = hasattr(os, "pidfd_open")

# One thread per waiting child is the design of the fallback, not a buffer:
# a bounded limiter would leave the exits of later children unnoticed.
_WAITID_THREADS: Final = trio.CapacityLimiter(math.inf)


def _open_pidfd(pid: int) -> int | None:
    global USE_PIDFD
    if not USE_PIDFD:
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:  # pragma: no cover - kernels before 5.3, some sandboxes
        USE_PIDFD = False
        return None


def _wait_reapable(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # someone else reaped it
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


@final
@attrs.define(eq=False)
class Child(_stop.StopSequence):
    """A started child process until it is reaped, and its process group.

    Attributes:
      group: the child leads its own process group (the default, and always
        with ``new_session`` or a pseudo-terminal); the block's stop sequence
        then reaches the whole group.
      pid: the child's pid from `started` until it is reaped, then ``None``.
      pgid: the child's process group, when it leads one; kept after the child
        is reaped, for what it left in the group.
      status: the raw wait status once reaped.
      reaped: set once the child has been reaped.
      stopping: the block itself is ending the child's tree (its last
        `end_tree` has begun).
      cgroup: the cgroup that holds the child's whole tree (``cgroup=True``),
        which `end_tree` ends too; ``None`` without one.
      remote: for a child on another host, the local ``ssh``'s hook: signals
        go to the remote program's group through it, `end_tree` runs the
        remote stop sequence first, and the exit status is the program's.
    """

    group: bool
    cgroup: ChildCgroup | None = None
    session: bool = False
    pid: int | None = attrs.field(init=False, default=None)
    pgid: int | None = attrs.field(init=False, default=None)
    status: int | None = attrs.field(init=False, default=None)
    #: `reaped`, made when it is first asked for: most children are only
    #: waited for at the end of their block.
    _reaped: trio.Event | None = attrs.field(init=False, default=None)
    stopping: bool = attrs.field(init=False, default=False)
    remote: RemoteHook | None = attrs.field(init=False, default=None)
    _pidfd: int | None = attrs.field(init=False, default=None)
    #: When the graceful signal was sent (trio's clock), once it was.
    _term_sent_at: float | None = attrs.field(init=False, default=None)
    _listener: ExitListener | None = attrs.field(init=False, default=None)
    #: The block gave the child up to `reap_in_background`'s thread.
    _given_up: bool = attrs.field(init=False, default=False)
    #: Without a pidfd: the scope of the task that waits in a thread.
    _waiting: trio.CancelScope | None = attrs.field(init=False, default=None)

    def started(self, pid: int) -> None:
        """The child now exists as *pid* (`watch` it next)."""
        self.pid = pid
        self.pgid = pid if self.group else None
        self._pidfd = _open_pidfd(pid)

    @property
    def reaped(self) -> trio.Event:
        """Set once the child has been reaped."""
        if self._reaped is None:
            self._reaped = trio.Event()
            if self.status is not None:
                self._reaped.set()
        return self._reaped

    @property
    def returncode(self) -> int | None:
        """The exit code, ``-signum`` if a signal ended the child, else ``None``."""
        if self.status is None:
            return None
        return os.waitstatus_to_exitcode(self.status)

    def send_signal(
        self, signum: int, *, group: bool = False, foreground_of: int | None = None
    ) -> None:
        """Send *signum* to the child.

        With *group*, to its process group when it leads one; with
        *foreground_of* (a terminal's fd), to that terminal's foreground
        process group. A child that has exited but is not yet reaped is a
        zombie and the signal is harmless; once reaped its pid may belong to
        someone else.

        Raises:
          ProcessExitedAlready: the child has been reaped.
        """
        if self.pid is None:
            raise ProcessExitedAlready(f"the child has exited already ({self.status})")
        if self.remote is not None:
            self.remote.signal(signum)
            return
        if foreground_of is not None:
            try:
                os.killpg(os.tcgetpgrp(foreground_of), signum)
                return
            except OSError:  # pragma: no cover - no foreground group just now
                pass
        if group and self.signal_group(signum):
            return
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, signum)
            else:
                os.kill(self.pid, signum)
        except ProcessLookupError:  # pragma: no cover - reaped by a stranger
            pass

    def signal_group(self, signum: int) -> bool:
        """Send *signum* to the child's process group -- with ``session``,
        to every group of its session (a job-control shell's jobs) -- if it
        has a live member; return whether it did."""
        if self.pgid is None or not self.group_alive():
            return False
        groups = {self.pgid}
        if self.session:
            groups |= session_groups(self.pgid)
        sent = False
        for pgid in groups:
            try:
                os.killpg(pgid, signum)
            except (ProcessLookupError, PermissionError):
                # Emptied just now, or a member changed identity.
                continue
            sent = True
        return sent

    def group_alive(self) -> bool:
        """Whether the child, or a live process of its group or its cgroup,
        exists."""
        if self.pid is not None:
            return True
        if self.cgroup is not None and self.cgroup.populated():
            return True
        if self.pgid is None:
            return False
        # The group exists, but zombies count as members until their new
        # parent reaps them: look for a live one. Once none is left the id is
        # forgotten: an empty group's id may be reused by a stranger's group.
        if self.session:
            # A session's other groups do not show in killpg(pgid, 0): look.
            if live_member(self.pgid, session=True) is not None:
                return True
        elif _group_exists(self.pgid) and live_member(self.pgid) is not None:
            return True
        self.pgid = None
        return False

    @property
    def tree_gone(self) -> bool:
        """The child is reaped and its process group has no live member."""
        return self.pid is None and not self.group_alive()

    @property
    def tree_sealed(self) -> bool:
        """A process group can be left (and Linux sees a pipe's far end
        close anyway)."""
        return False

    def watch(self, listener: ExitListener) -> None:
        """Reap the child once it exits, and then tell *listener*, from the
        run's exit watcher (no task waits for this child). A process group
        can be left, so the end of its tree is the block's to tell."""
        self._listener = listener
        if self._pidfd is None:
            trio.lowlevel.spawn_system_task(
                self._wait_in_thread, name=f"trioproc waitid {self.pid}"
            )
        else:
            _watcher.watch(self._pidfd, self)

    def _exited(self) -> None:
        """The watcher saw the pidfd readable."""
        if self._reap():
            assert self._listener is not None
            self._listener._child_reaped()
        else:  # pragma: no cover - a pidfd is readable once it has exited
            assert self._pidfd is not None
            _watcher.watch(self._pidfd, self)

    async def _wait_in_thread(self) -> None:
        """Without a pidfd: wait in a thread, then reap (a system task)."""
        with trio.CancelScope() as self._waiting:
            while self.pid is not None:
                await trio.to_thread.run_sync(
                    _wait_reapable,
                    self.pid,
                    abandon_on_cancel=True,
                    limiter=_WAITID_THREADS,
                )
                if self.pid is None or self._given_up:
                    return  # reap_in_background's thread reaps it
                if self._reap():
                    assert self._listener is not None
                    self._listener._child_reaped()

    def _reap(self) -> bool:
        assert self.pid is not None
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # pragma: no cover - reaped by a stranger
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return False
        if self._pidfd is not None:
            # The watcher has let go of it.
            os.close(self._pidfd)
            self._pidfd = None
        self.status = status if self.remote is None else self.remote.translate(status)
        self.pid = None
        if self.pgid is not None and not (
            live_member(self.pgid, session=True) is not None
            if self.session
            else _group_exists(self.pgid)
        ):
            # Nobody pins the group's (or session's) id any more: it may be
            # reused from now.
            self.pgid = None
        if self._reaped is not None:
            self._reaped.set()
        return True

    # The stop sequence's steps (`trioproc._os._stop.Stoppable`).

    @property
    def kill_grace(self) -> float:
        """`KILL_GRACE`, read when the sequence needs it (tests change it)."""
        return KILL_GRACE

    alive = group_alive

    def graceful_step(self) -> None:
        """SIGTERM and SIGCONT (a stopped process acts on nothing else)."""
        for signum in (signal.SIGTERM, signal.SIGCONT):
            _signal_tree(self, signum)

    async def hard_step(self) -> None:
        """SIGKILL to the tree, and the cgroup's kill when there is one."""
        _signal_tree(self, signal.SIGKILL)
        if self.cgroup is not None:
            await self.cgroup.kill()

    def stuck_member(self) -> int:
        """A live process of the cgroup or the group (the child is reaped)."""
        if self.cgroup is not None and self.cgroup.pids():
            return self.cgroup.pids()[0]
        assert self.pgid is not None
        return live_member(self.pgid) or self.pgid

    def tree_ended(self) -> None:
        """Remove the child's cgroup, if it has one."""
        if self.cgroup is not None:
            self.cgroup.remove()

    def release_tree(self) -> None:
        """Nothing is held once the cgroup is removed."""

    def reap_in_background(self) -> None:
        """Leave reaping to a thread: for a child stuck in the kernel, which
        no task may wait for, but which must not stay a zombie once it dies."""
        pid, cgroup = self.pid, self.cgroup
        if pid is None:  # pragma: no cover - reaped meanwhile
            return
        # The thread reaps it now, not the watcher.
        self._given_up = True
        if self._pidfd is not None:
            _watcher.forget(self._pidfd)
        if self._waiting is not None:
            self._waiting.cancel()
        token = trio.lowlevel.current_trio_token()

        def reaped_late(status: int) -> None:
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
            self.status, self.pid = status, None
            if self._reaped is not None:
                self._reaped.set()

        def reap() -> None:
            status = 255 << 8
            with contextlib.suppress(ChildProcessError):
                status = os.waitpid(pid, 0)[1]
            try:
                token.run_sync_soon(reaped_late, status)
            except trio.RunFinishedError:
                if self._pidfd is not None:
                    os.close(self._pidfd)
            if cgroup is not None:
                # Once the rest of its tree has died too (bounded).
                for _ in range(600):
                    try:
                        cgroup.remove()
                        return
                    except OSError:
                        time.sleep(0.1)

        threading.Thread(
            target=reap, name=f"trioproc reaper {pid}", daemon=True
        ).start()


def _signal_tree(child: Child, signum: int) -> None:
    # Each process once: a second SIGTERM would interrupt a graceful exit.
    if child.cgroup is not None and child.cgroup.signal_all(signum):
        return  # the cgroup holds the group, and what left it
    if not child.signal_group(signum) and child.pid is not None:
        child.send_signal(signum)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


@attrs.frozen
class _Stat:
    """What ``/proc/<pid>/stat`` says of one process."""

    pid: int
    state: bytes
    ppid: int
    pgrp: int
    session: int


def _processes() -> Iterator[_Stat]:
    """Every process ``/proc`` shows now."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        yield _Stat(int(entry), fields[0], *map(int, fields[1:4]))


def session_groups(sid: int) -> set[int]:
    """The process groups of the live members of the session *sid*."""
    return {p.pgrp for p in _processes() if p.session == sid and p.state != b"Z"}


def live_member(pgid: int, *, session: bool = False) -> int | None:
    """A process of the group *pgid* (with *session*: of the session *pgid*)
    that is not a zombie, if there is one."""
    me = os.getpid()
    for process in _processes():
        if (process.session if session else process.pgrp) != pgid:
            continue
        if process.state != b"Z":
            return process.pid
        if process.ppid == me:
            # Re-parented to us (we are PID 1 or a subreaper): nobody else
            # will reap it.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(process.pid, os.WNOHANG)
    return None
