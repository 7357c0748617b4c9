"""The portable writer: one task per child input, written through a Trio stream.

`StreamWriter` is the portable backend's `trioproc._os._seam.ChildWriter`: the
queue, its producer rules and the task's loop are the shared
`trioproc._os._queued.QueuedWriter`, as for the Linux writer
(`trioproc._os._writer.Writer`); the bytes go out through a
`trio.abc.SendStream` (a pipe `trio.lowlevel.open_process` made). A Trio
stream has no "write what fits now": on POSIX, `write` and `offer` write
what the pipe takes at once to the stream's fd (so a child already gone is
seen by that write), and queue the rest; elsewhere they only queue. The
writer task sends the queue out in pieces of at most 64 KiB, counting each
piece off as it is written.

When the queue is empty on Linux the task watches the pipe as the Linux
writer does (a pipe's write end reports an error as soon as its read end is
closed), so the parent learns that the child closed its stdin without writing
anything. On Windows it writes no bytes now and then, which fails once the
read end is closed (`trioproc._os._windows.wait_reader_closed`): from 5 ms apart,
doubling to half a second. Elsewhere that is learnt at the next write, or
when the child's tree is gone.
"""

from __future__ import annotations

import errno
import itertools
import os
import sys
from typing import ClassVar, Final, final

import attrs
import trio

from .._flow import InputQueue
from ._queued import QueuedWriter

__all__ = ["StreamWriter"]

# A piece of at most one pipe's default capacity: its end is where the queue
# is counted down (and a paused producer may be resumed).
_PIECE: Final = 1 << 16
# Only where a pipe's write end is known to report its reader's close as an
# error to epoll (see the module docstring).
_WATCH_IDLE: Final = sys.platform.startswith("linux")
# What a write raises once the child's end is gone.
_BROKEN: Final = frozenset({errno.EPIPE, errno.ECONNRESET})


@final
@attrs.define(eq=False, init=False)
class StreamWriter(QueuedWriter):  # type: ignore[override]  # attrs: __attrs_init__ takes stream too
    """The parent's write end of one child input, with its queue of pending
    bytes.

    The queue, the producer's turns and the task's loop are `QueuedWriter`'s;
    this class sends through the stream and closes it.

    Attributes:
      child_fd: the fd number in the child.
      stream: the parent's end, until the task closes it.
      queue: the bytes accepted and not yet written, the marks, the producer.
    """

    broken_errnos: ClassVar[frozenset[int]] = _BROKEN

    stream: trio.abc.SendStream
    #: The send in progress, which an abort cancels.
    _sending: trio.CancelScope | None = attrs.field(init=False, default=None)
    #: The pipe's fd where the stream has one (POSIX), for writes that need
    #: no wait.
    _fd: int | None = attrs.field(init=False, default=None)

    def __init__(
        self,
        child_fd: int,
        stream: trio.abc.SendStream,
        high_water: int,
        low_water: int,
    ) -> None:
        self.__attrs_init__(
            child_fd=child_fd, queue=InputQueue(high_water, low_water), stream=stream
        )
        fileno = getattr(stream, "fileno", None)
        self._fd = None if fileno is None else fileno()

    def _write_now(self, data: bytes | memoryview) -> int:
        # POSIX: write what the pipe takes now, as the Linux writer does, so
        # that a child already gone is seen by this very write.
        if self._fd is None:
            return 0
        return os.write(self._fd, memoryview(data)[:_PIECE])

    async def _send(self) -> None:
        piece = self._piece()
        with trio.CancelScope() as self._sending:
            try:
                await self.stream.send_all(piece)
            except trio.BrokenResourceError:
                self._break()
                return
        self._sending = None
        if self.queue.done and not self._chunks:
            return  # aborted meanwhile
        self._consume(len(piece))

    def _piece(self) -> bytes | memoryview:
        """The next piece to send: the head chunk's start, or small chunks
        joined, up to 64 KiB."""
        chunks = self._chunks
        head = chunks[0]
        if len(head) >= _PIECE or len(chunks) == 1:
            return head[:_PIECE]
        size = 0
        taken = []
        for chunk in itertools.islice(chunks, 1024):
            if size + len(chunk) > _PIECE:
                break
            taken.append(chunk)
            size += len(chunk)
        return b"".join(taken)

    def _watched_fd(self) -> int | None:
        return self._fd if _WATCH_IDLE else None

    async def _idle_until_woken(self) -> None:
        if sys.platform == "win32":  # pragma: no cover - Windows only
            await self._probe_until_woken()
        else:
            await super()._idle_until_woken()

    async def _probe_until_woken(self) -> None:  # pragma: no cover - Windows only
        if sys.platform == "win32":
            from ._windows import wait_reader_closed

            gone = False
            with trio.CancelScope() as self._idle:
                await wait_reader_closed(self.stream)
                gone = True
            self._idle = None
            if gone and not self.queue.done and not self._chunks:
                self._break()

    def _end_now(self) -> None:
        # A send stuck on a full pipe that nobody reads is cancelled.
        if self._sending is not None:
            self._sending.cancel()

    def _release(self) -> None:
        # Only this task uses the stream, and it is not using it now.
        self.stream.close()  # type: ignore[attr-defined]  # FdStream, PipeSendStream
