"""The Linux backend's pump: one task per readable child fd, delivering what
the child writes; its holds and requests are `trioproc._os._holds.PumpState`'s.

The pump is the only code that reads or closes its fd. Others steer it with
`Reader.pause`, `Reader.resume` and `Reader.close`, which only set state and
wake it, so there is never a read racing a close.

In stream mode the reader's own task reads instead (`Reader.pull`,
`Reader.read_now`, `Reader.read_some`): each chunk then reaches the caller
without a trip through a second task, and the pump only waits for the end --
the reader's end of file, `close`, `finish` -- or for the block's ending
(`Reader.push`, or its cancellation), when it reads and delivers again. One
task at a time waits on the fd: the pump wakes a waiting reader before it
reads itself.
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
# pause() takes at most this many reads of what a pulled fd holds: 256 KiB,
# the stream buffer a pump fills before it pauses.
_PAUSE_READS: Final = 4


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
        both; it reads again only once every hold is released. In stream
        mode (`pull`) also whenever no reader waits on the fd: nothing reads
        it then, and the child blocks on a full pipe all the same.
      terminal: the fd is a pseudo-terminal master, where EIO means end of
        output; its writer shares it, so the transport closes it, not the pump.
    """

    fd: int
    terminal: bool = False
    _grown: bool = attrs.field(init=False, default=False)
    #: Stream mode: `read_some` reads, in its caller's task; the pump waits.
    _pulled: bool = attrs.field(init=False, default=False)
    #: A `read_some` waits on the fd (the pump wakes it before reading).
    _pulling: bool = attrs.field(init=False, default=False)
    #: `read_some` met the end of file: the pump reports it.
    _pulled_eof: bool = attrs.field(init=False, default=False)
    #: `fill` delivered while a `read_some` was under way: it returns, for
    #: its caller to find that in its buffer.
    _filled: bool = attrs.field(init=False, default=False)
    #: A `read_now` found the pipe empty: the `read_some` that comes next
    #: waits before it reads (no second read that must fail). A mark left
    #: by a cancelled call costs one wait, which returns at once if the fd
    #: is readable.
    _empty: bool = attrs.field(init=False, default=False)
    #: Set, and replaced, on every change a dormant pump or a pulling
    #: reader waits for.
    _changed: trio.Event = attrs.field(init=False, factory=trio.Event)
    #: The pump's *deliver*, for what `fill` takes from a pulled fd.
    _deliver: Callable[[bytes], None] | None = attrs.field(init=False, default=None)

    @property
    def paused(self) -> bool:
        """Whether nothing reads the fd now (see the class's attributes)."""
        return self._paused or (self._pulled and not self._pulling)

    @property
    def closed(self) -> bool:
        """Whether the parent's end is closed."""
        return self.fd < 0

    def pause(self, hold: Hold = "protocol") -> None:
        """Stop reading until *hold* is released by `resume`; a pulled fd
        first gives the stream what it holds now (`fill`), as a pump would
        have buffered it before the pause."""
        super().pause(hold)
        if hold == "protocol":
            self.fill()

    def resume(self, hold: Hold | None = "protocol") -> None:
        """Release *hold* (``None``: every hold); read again if none is left."""
        super().resume(hold)
        self._notify()

    def _wake(self) -> None:
        # A terminal's writer waits on the same fd and is woken too: closing a
        # terminal's output closes the terminal.
        # Wakes the pump if it waits on the fd (it checks why, and closes the
        # fd itself without another checkpoint, as notify_closing requires),
        # or on a hold.
        trio.lowlevel.notify_closing(self.fd)
        self._resumed.set()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def pull(self) -> bool:
        """Let the reader's task read (stream mode), through `read_some`;
        the pump waits for the end. Always possible here."""
        self._pulled = True
        return True

    def push(self) -> None:
        """The pump reads and delivers again (the block is ending: nobody
        will pull); a `read_some` waiting on the fd is woken, and leaves the
        fd to the pump."""
        if self._pulled:
            self._pulled = False
            if self._pulling:
                self._pulling = False
                trio.lowlevel.notify_closing(self.fd)
            self._notify()

    def read_now(self, max_bytes: int) -> bytes | None:
        """While `pull` holds and ``pauseProducing`` does not: at most
        *max_bytes* (up to 64 KiB) of what the fd holds now. ``None`` when it
        holds nothing yet, and when `read_some` must decide: the end of file
        (noted for the pump to report), a pause, the pump's turn.
        """
        if (
            not self._pulled
            or self._pulled_eof
            or self._closing
            or self._finishing
            or (self._holds and "protocol" in self._holds)
        ):
            return None
        fd = self.fd
        try:
            data = os.read(fd, max_bytes if max_bytes < _READ_SIZE else _READ_SIZE)
        except BlockingIOError:
            self._empty = True
            return None
        except OSError as exc:
            if exc.errno != errno.EIO or not self.terminal:
                raise
            data = b""  # the last child-side fd of the terminal closed
        if not data:
            self._pulled_eof = True
            self._notify()
            return None
        if len(data) == _READ_SIZE and not self._grown and not self.terminal:
            self._grown = True
            grow_pipe(fd)
        return data

    async def read_some(self, max_bytes: int, schedule: bool) -> bytes | None:
        """Read at most *max_bytes* (up to 64 KiB) in the caller's task,
        while `pull` holds: the bytes, after a schedule point if it waited or
        *schedule* asks for one (the caller shares them out). ``None`` when
        the pump delivers instead -- it reads again, or reports the end of
        file through *lost* -- so the caller waits for it; ``None`` too when
        `fill` delivered meanwhile (the caller's buffer has more now).

        Waits while ``pauseProducing`` holds the fd (a full stream buffer
        does not hold it: its reader reads only into an empty one).

        Cancellation: nothing was read.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        self._filled = False
        waited = False
        empty, self._empty = self._empty, False
        while True:
            if not self._pulled or self._pulled_eof or self._closing:
                return None
            if self._finishing or self._filled:
                return None
            if "protocol" in self._holds:
                await self._changed.wait()
                waited = True
                continue
            data = None if empty else self.read_now(max_bytes)
            empty = self._empty = False
            if data is None:
                if self._pulled_eof:
                    return None
                self._pulling = True
                try:
                    await trio.lowlevel.wait_readable(self.fd)
                except trio.ClosedResourceError:
                    pass  # push(), close() or finish() woke us
                finally:
                    self._pulling = False
                waited = True
                continue
            if schedule and not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return data

    async def pump(
        self, deliver: Callable[[bytes], None], lost: Callable[[], None]
    ) -> None:
        """`PumpState.pump`, keeping *deliver* for `fill`."""
        self._deliver = deliver
        await super().pump(deliver, lost)

    async def _pump(self, deliver: Callable[[bytes], None]) -> None:
        fd = self.fd
        since_yield = 0
        readable = False  # a child that just started has written nothing yet
        while not self._closing:
            if self._finishing:
                self._drain(deliver)
                return
            if self._pulled:
                if self._pulled_eof:
                    return
                await self._changed.wait()
                readable = False
                continue
            if self._paused:
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

    def fill(self) -> None:
        """A pulled fd: deliver what the pipe holds now, up to a stream's
        buffer (`trioproc._output.OUTPUT_BUFFER`), as a pump would have
        buffered it. ``pauseProducing`` calls it (nothing more is read until
        the pause is lifted), and so does ``statistics()`` (what it counts
        as buffered is what the child wrote and nobody read yet). A read,
        not a wait; a `read_some` under way returns, to find it buffered."""
        deliver = self._deliver
        if not self._pulled or deliver is None or self.fd < 0 or self._closing:
            return
        for _ in range(_PAUSE_READS):
            try:
                data = os.read(self.fd, _READ_SIZE)
            except OSError:  # EAGAIN: empty for now; EIO: a closed terminal
                break
            if not data:
                break  # the end of file stays in the pipe for the puller
            deliver(data)
            self._filled = True
            if len(data) < _READ_SIZE:
                break
        if self._filled and self._pulling:
            # The reader waits on the fd for what is now in its buffer.
            self._pulling = False
            trio.lowlevel.notify_closing(self.fd)

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
