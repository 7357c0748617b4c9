"""The Linux backend's pump: one task per readable child fd, delivering what
the child writes; its holds and requests are `trioproc._os._holds.PumpState`'s.

The pump is the only code that reads or closes its fd. Others steer it with
`Reader.pause`, `Reader.resume` and `Reader.close`, which only set state and
wake it, so there is never a read racing a close.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable
from typing import Final, final

import attrs
import trio

from ._holds import Hold, PumpState

__all__ = ["F_SETPIPE_SZ", "Hold", "Reader", "grow_pipe"]

# Reads stay at 64 KiB even from a grown pipe: larger reads make os.read
# allocate (and mostly free again) large blocks, which costs more in page
# faults than the extra system calls.
_READ_SIZE: Final = 1 << 16
_LARGE_PIPE: Final = 1 << 20
# A pump that keeps finding data yields to the scheduler once per this many
# bytes, rather than once per read.
_YIELD_EVERY: Final = 1 << 20
#: Linux's fcntl to resize a pipe (Python names it on Linux only).
F_SETPIPE_SZ: Final[int] = getattr(fcntl, "F_SETPIPE_SZ", 1031)
# Once the child's tree is gone, at most this many reads of what it left (a
# 1 MiB pipe empties in 16): a process that escaped the tree and keeps
# writing cannot keep the block open.
_DRAIN_READS: Final = 64


def grow_pipe(fd: int) -> int:
    """Make the pipe *fd* hold 1 MiB if the system allows; return its capacity.

    A busy pipe then costs the event loop one wake-up per MiB instead of one
    per 64 KiB. Pipes start small because each large pipe counts against the
    user's pipe-buffer quota.
    """
    try:
        return fcntl.fcntl(fd, F_SETPIPE_SZ, _LARGE_PIPE)
    except OSError:  # over the quota, or not a pipe
        return _READ_SIZE


@final
@attrs.define(eq=False)
class Reader(PumpState):
    """The parent's read end of one child fd, and the state of its pump
    (`PumpState`, which holds the holds and the requests).

    Attributes:
      child_fd: the fd number in the child.
      fd: the parent's end (non-blocking), or -1 once closed.
      paused: whether the pump is held (the child blocks on a full pipe):
        by the protocol (``pauseProducing``), by a full stream buffer, or
        both; it reads again only once every hold is released.
      terminal: the fd is a pseudo-terminal master, where EIO means end of
        output; its writer shares it, so the transport closes it, not the pump.
    """

    fd: int
    terminal: bool = False
    _grown: bool = attrs.field(init=False, default=False)

    @property
    def closed(self) -> bool:
        """Whether the parent's end is closed."""
        return self.fd < 0

    def _wake(self) -> None:
        # A terminal's writer waits on the same fd and is woken too: closing a
        # terminal's output closes the terminal.
        # Wakes the pump if it waits on the fd (it checks why, and closes the
        # fd itself without another checkpoint, as notify_closing requires),
        # or on a hold.
        trio.lowlevel.notify_closing(self.fd)
        self._resumed.set()

    async def _pump(self, deliver: Callable[[bytes], None]) -> None:
        fd = self.fd
        since_yield = 0
        readable = False  # a child that just started has written nothing yet
        while not self._closing:
            if self._finishing:
                self._drain(deliver)
                return
            if self.paused:
                since_yield = 0
                await self._resumed.wait()
                continue
            if not readable:
                since_yield = 0
                try:
                    await trio.lowlevel.wait_readable(fd)
                except trio.ClosedResourceError:
                    continue  # close() or finish() woke us
                readable = True
                continue
            try:
                data = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                readable = False
                continue
            except OSError as exc:
                if exc.errno == errno.EIO and self.terminal:
                    return  # the last child-side fd of the terminal closed
                raise
            if not data:
                return
            if len(data) == _READ_SIZE and not self._grown and not self.terminal:
                self._grown = True  # a full read: this child writes fast
                grow_pipe(fd)
            deliver(data)
            since_yield += len(data)
            if since_yield >= _YIELD_EVERY:
                since_yield = 0
                await trio.lowlevel.checkpoint()

    def _drain(self, deliver: Callable[[bytes], None]) -> None:
        """Deliver what is in the pipe now, without waiting for more."""
        for _ in range(_DRAIN_READS):
            if self._closing:
                return
            try:
                data = os.read(self.fd, _READ_SIZE)
            except OSError:  # EAGAIN: empty for now; EIO: a closed terminal
                return
            if not data:
                return
            deliver(data)

    def _close(self) -> None:
        # No notify_closing: only this task ever waits on the fd, and it is
        # not waiting now.
        if self.fd >= 0 and not self.terminal:
            os.close(self.fd)
        self.fd = -1
