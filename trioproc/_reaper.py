"""Waiting for a child's exit, reaping it, and stopping it.

One task per child reaps it, and only that task: everybody else waits on an
event, so any number of concurrent or cancelled ``wait()`` calls all see the
same exit. No SIGCHLD handler is installed. On Linux a pidfd tells Trio's
event loop when the child has exited, and it also makes signals race-free (a
pidfd cannot come to name another process). Elsewhere, or where pidfds are
refused, a thread blocks in ``waitid(WNOWAIT)``.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Final, final

import attrs
import trio

from ._errors import ProcessExitedAlready

__all__ = ["Child", "stop_sequence"]

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
class Child:
    """A started child process until it is reaped.

    Attributes:
      group: the child leads its own process group.
      pid: the child's pid from `started` until it is reaped, then ``None``.
      status: the raw wait status once reaped.
      reaped: set once the child has been reaped.
    """

    group: bool
    pid: int | None = attrs.field(init=False, default=None)
    status: int | None = attrs.field(init=False, default=None)
    reaped: trio.Event = attrs.field(init=False, factory=trio.Event)
    _pidfd: int | None = attrs.field(init=False, default=None)

    def started(self, pid: int) -> None:
        """The child now exists as *pid*: start `reap` for it."""
        self.pid = pid
        self._pidfd = _open_pidfd(pid)

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
        if foreground_of is not None:
            try:
                os.killpg(os.tcgetpgrp(foreground_of), signum)
                return
            except OSError:  # pragma: no cover - no foreground group just now
                pass
        if group and self.group:
            try:
                os.killpg(self.pid, signum)
                return
            except ProcessLookupError:  # pragma: no cover - group emptied
                pass
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, signum)
            else:
                os.kill(self.pid, signum)
        except ProcessLookupError:  # pragma: no cover - reaped by a stranger
            pass

    async def _wait_exited(self) -> None:
        """Return once the child has exited (it is not reaped here)."""
        if self._pidfd is not None:
            await trio.lowlevel.wait_readable(self._pidfd)
        else:
            assert self.pid is not None
            await trio.to_thread.run_sync(
                _wait_reapable,
                self.pid,
                abandon_on_cancel=True,
                limiter=_WAITID_THREADS,
            )

    def _reap(self) -> bool:
        assert self.pid is not None
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # pragma: no cover - reaped by a stranger
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return False
        if self._pidfd is not None:
            # Only the reaper waits on the pidfd, and it is not waiting now.
            os.close(self._pidfd)
            self._pidfd = None
        self.status = status
        self.pid = None
        self.reaped.set()
        return True

    async def reap(self, kill_after: float, on_reaped: Callable[[], None]) -> None:
        """The reaper task: reap the child, then call *on_reaped*.

        Cancellation: the child is stopped -- SIGTERM (to its group when it
        leads one), SIGKILL after *kill_after* seconds -- and reaped before the
        cancellation propagates.
        """
        try:
            await self._wait_until_reaped()
        except BaseException:
            with trio.CancelScope(shield=True):
                await stop_sequence(self, kill_after, self._wait_until_reaped)
            on_reaped()
            raise
        on_reaped()

    async def _wait_until_reaped(self) -> None:
        await self._wait_exited()
        while not self._reap():  # pragma: no cover - a pidfd wakes at exit
            await self._wait_exited()


async def stop_sequence(
    child: Child, kill_after: float, wait: Callable[[], Awaitable[None]]
) -> None:
    """SIGTERM, then SIGKILL after *kill_after* seconds; return once *wait* does.

    Cancellation: not shielded here; callers that must not be interrupted
    shield it. The wait after SIGKILL is not bounded: SIGKILL cannot be
    ignored, so only a child stuck in the kernel can keep it waiting, and
    returning before its real exit would leave it running.
    """
    if child.pid is None:
        await trio.lowlevel.checkpoint()
        return
    child.send_signal(signal.SIGTERM, group=True)
    with trio.move_on_after(kill_after):
        await wait()
        return
    if child.pid is not None:
        child.send_signal(signal.SIGKILL, group=True)
    await wait()
