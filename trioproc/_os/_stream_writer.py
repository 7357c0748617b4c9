"""The portable writer: one task per child input, written through a Trio stream.

`StreamWriter` is the portable backend's `trioproc._os._seam.ChildWriter`: the
queue's accounting and its producer rules are the shared
`trioproc._flow.InputQueue`, as for the Linux writer
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
anything. Elsewhere that is learnt at the next write, or when the child's
tree is gone.
"""

from __future__ import annotations

import errno
import itertools
import os
import select
import sys
from collections import deque
from collections.abc import Callable
from typing import Any, Final, final

import attrs
import trio

from .._flow import InputQueue

__all__ = ["StreamWriter"]

# A piece of at most one pipe's default capacity: its end is where the queue
# is counted down (and a paused producer may be resumed).
_PIECE: Final = 1 << 16
# Only where a pipe's write end is known to report its reader's close as an
# error to epoll (see the module docstring).
_WATCH_IDLE: Final = sys.platform.startswith("linux")
# What a write raises once the child's end is gone.
_BROKEN: Final = frozenset({errno.EPIPE, errno.ECONNRESET})


def _reader_gone(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, 0)
    return any(flags & (select.POLLERR | select.POLLHUP) for _, flags in poller.poll(0))


@final
@attrs.define(eq=False, init=False)
class StreamWriter:
    """The parent's write end of one child input, with its queue of pending
    bytes.

    Attributes:
      child_fd: the fd number in the child.
      stream: the parent's end, until the task closes it.
      queue: the bytes accepted and not yet written, the marks, the producer.
    """

    child_fd: int
    stream: trio.abc.SendStream
    queue: InputQueue
    _chunks: deque[memoryview] = attrs.field(init=False, factory=deque)
    #: The task's wait for work, which a write, a close or an abort cancels.
    _idle: trio.CancelScope | None = attrs.field(init=False, default=None)
    #: The send in progress, which an abort cancels.
    _sending: trio.CancelScope | None = attrs.field(init=False, default=None)
    _room: trio.lowlevel.ParkingLot = attrs.field(
        init=False, factory=trio.lowlevel.ParkingLot
    )
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
        self.__attrs_init__(child_fd, stream, InputQueue(high_water, low_water))
        fileno = getattr(stream, "fileno", None)
        self._fd = None if fileno is None else fileno()

    def write(self, data: bytes | memoryview) -> None:
        """Queue *data* in order; dropped once done."""
        queue = self.queue
        if queue.done or not data:
            return
        self._take(data, len(data), copy=False)
        if queue.producer is not None and queue.wrote():
            self._wake()  # the turn is given from the writer task

    def offer(self, data: memoryview, *, copy: bool) -> int:
        """Queue the start of *data* that fits below the high mark; return how
        many bytes were taken (0 once done). With *copy*, the queued bytes
        are copied, because the caller may reuse its buffer."""
        if self.queue.done or not data:
            return 0
        return self._take(data, self.queue.room, copy=copy)

    def _take(self, data: bytes | memoryview, room: int, *, copy: bool) -> int:
        # POSIX: write what the pipe takes now, as the Linux writer does, so
        # that a child already gone is seen by this very write.
        written = 0
        fd = self._fd
        if fd is not None and not self._chunks:
            try:
                written = os.write(fd, memoryview(data)[:_PIECE])
            except BlockingIOError:
                pass
            except OSError as exc:
                if exc.errno not in _BROKEN:
                    raise
                self._break()
                return 0
        rest = memoryview(data)[written : written + room]
        if rest:
            self._chunks.append(memoryview(bytes(rest)) if copy else rest)
            self._wake()
        self.queue.accepted(data, written + len(rest), len(rest))
        return written + len(rest)

    def register_producer(self, producer: Any, streaming: bool) -> None:
        """Let *producer* fill the queue (see `InputQueue.register`)."""
        self.queue.register(producer, streaming)

    def unregister_producer(self) -> None:
        """Forget the producer, whatever its state."""
        self.queue.unregister()

    def close(self) -> None:
        """Stop accepting writes; close the pipe once every pending byte is
        written."""
        if not self.queue.done:
            self.queue.closing = True
            self._room.unpark_all()
            self._wake()

    def abort(self) -> None:
        """Drop pending bytes and end the pipe now (a send stuck on a full pipe
        that nobody reads is cancelled)."""
        self._chunks.clear()
        self.queue.drop()
        self._room.unpark_all()
        self._wake()
        if self._sending is not None:
            self._sending.cancel()

    def _break(self) -> None:
        # The child's end is gone: what is queued can never be delivered.
        self._chunks.clear()
        self.queue.drop(broken=True, closing=False)
        self._room.unpark_all()
        self._wake()

    def _wake(self) -> None:
        if self._idle is not None:
            self._idle.cancel()

    async def wait_for_room(self) -> None:
        """Return once the queue is below its high mark, or the writer is done."""
        if self.queue.full:
            await self._room.park()
        else:
            await trio.lowlevel.checkpoint()

    async def run(self, lost: Callable[[], None]) -> None:
        """The writer task: write the queue out until done, then call *lost*.

        A producer still registered then is stopped.

        Cancellation: pending bytes are dropped and the pipe is closed at
        once, so the child sees end of input.
        """
        try:
            await self._run()
        finally:
            self.abort()
            # Only this task uses the stream, and it is not using it now.
            self.stream.close()  # type: ignore[attr-defined]  # FdStream, PipeSendStream
            producer = self.queue.unregister()
            try:
                if producer is not None:
                    producer.stopProducing()
            finally:
                lost()

    async def _run(self) -> None:
        chunks = self._chunks
        state = self.queue
        while not state.broken:
            if chunks:
                piece = self._piece()
                with trio.CancelScope() as self._sending:
                    try:
                        await self.stream.send_all(piece)
                    except trio.BrokenResourceError:
                        self._break()
                        return
                self._sending = None
                if state.done and not chunks:
                    return  # aborted meanwhile
                self._consume(len(piece))
            elif state.closing:
                return
            elif (producer := state.turn()) is not None:
                producer.resumeProducing()
                await trio.lowlevel.checkpoint()
            else:
                await self._idle_until_woken()

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

    async def _idle_until_woken(self) -> None:
        fd = self._fd if _WATCH_IDLE else None
        with trio.CancelScope() as self._idle:
            if fd is not None:
                await trio.lowlevel.wait_readable(fd)
            else:
                await trio.sleep_forever()
        self._idle = None
        if (
            fd is not None
            and not self.queue.done
            and not self._chunks
            and _reader_gone(fd)
        ):
            self._break()

    def _consume(self, written: int) -> None:
        chunks = self._chunks
        left = written
        while left:
            head = chunks[0]
            if left >= len(head):
                left -= len(head)
                chunks.popleft()
            else:
                chunks[0] = head[left:]
                left = 0
        if self.queue.drained(written):
            self._room.unpark_all()
