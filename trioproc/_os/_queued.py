"""What both backends' stdin writers share: the queue of pending bytes, the
producer's turns and the writer task's loop, over three I/O hooks.

`QueuedWriter` holds the chunks accepted and not yet written, counted by a
`trioproc._flow.InputQueue`, and the loop that writes them out, gives a pull
producer its turn and idles until woken. A backend's writer
(`trioproc._os._writer.Writer` on an fd, `trioproc._os._stream_writer.StreamWriter`
on a Trio stream) adds only its I/O: `QueuedWriter._write_now` (what fits at
once), `QueuedWriter._send` (write some of the queue, waiting if it must),
`QueuedWriter._watched_fd` (an fd that reports the reader's close while idle),
`QueuedWriter._end_now` and `QueuedWriter._release` (end and close its end).
"""

from __future__ import annotations

import select
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import trio

from .._flow import InputQueue

__all__ = ["QueuedWriter", "reader_gone"]


def reader_gone(fd: int) -> bool:
    """Whether the pipe's write end *fd* reports its read end closed."""
    poller = select.poll()
    poller.register(fd, 0)
    return any(flags & (select.POLLERR | select.POLLHUP) for _, flags in poller.poll(0))


@attrs.define(eq=False, init=False)
class QueuedWriter:
    """The parent's write end of one child input, with its queue of pending
    bytes; a backend's subclass does the I/O.

    Attributes:
      child_fd: the fd number in the child.
      queue: the bytes accepted and not yet written, the marks, the producer.
    """

    #: What a write raises once the child's end is gone.
    broken_errnos: ClassVar[frozenset[int]]

    child_fd: int
    queue: InputQueue
    _chunks: deque[memoryview] = attrs.field(init=False, factory=deque)
    #: The task's wait for work, which a write, a close or an abort cancels.
    _idle: trio.CancelScope | None = attrs.field(init=False, default=None)
    _room: trio.lowlevel.ParkingLot = attrs.field(
        init=False, factory=trio.lowlevel.ParkingLot
    )

    def write(self, data: bytes | memoryview) -> None:
        """Queue *data* in order, writing what fits at once; dropped once done."""
        queue = self.queue
        if queue.done or not data:
            return
        self._take(data, len(data), copy=False)
        if queue.producer is not None and queue.wrote():
            # The turn is given from the writer task, never from in here: the
            # producer may be the caller.
            self._wake()

    def offer(self, data: memoryview, *, copy: bool) -> int:
        """Take the start of *data* (a view of bytes) that fits: what the
        child's end accepts now, then what the queue has room for below its
        high mark.

        Returns how many bytes were taken (0 once done; a write that finds
        the child gone makes the queue broken). With *copy*, queued bytes
        are copied, because the caller may reuse its buffer.
        """
        queue = self.queue
        if queue.done or not data:
            return 0
        # queue.room, spelled out: a property call costs a tenth of this path.
        return self._take(data, max(queue.high_water - queue.buffered, 0), copy=copy)

    def _take(self, data: bytes | memoryview, room: int, *, copy: bool) -> int:
        # Write what the child's end takes now, then queue at most *room* more.
        written = 0
        if not self._chunks:
            try:
                written = self._write_now(data)
            except BlockingIOError:
                pass
            except OSError as exc:
                if exc.errno not in self.broken_errnos:
                    raise
                self._break()
                return 0
        queued = 0
        if written < len(data):
            rest = memoryview(data)[written : written + room]
            if rest:
                self._chunks.append(memoryview(bytes(rest)) if copy else rest)
                queued = len(rest)
                self._wake()
        queue = self.queue
        if queued or queue.eof is not None:  # else nothing to count
            queue.accepted(data, written + queued, queued)
        return written + queued

    def register_producer(self, producer: Any, streaming: bool) -> None:
        """Let *producer* fill the queue (see `InputQueue.register`)."""
        self.queue.register(producer, streaming)

    def unregister_producer(self) -> None:
        """Forget the producer, whatever its state."""
        self.queue.unregister()

    def close(self) -> None:
        """Stop accepting writes; end the child's end once every pending byte
        is written.

        A pipe is closed; a terminal gets its end-of-file character instead.
        """
        if not self.queue.done:
            eof = self.queue.end_of_input()
            if eof:
                self._take(eof, len(eof), copy=False)
            self.queue.closing = True
            self._room.unpark_all()
            self._wake()

    def abort(self) -> None:
        """Drop pending bytes and end the child's end now."""
        self._chunks.clear()
        self.queue.drop()
        self._room.unpark_all()
        self._wake()
        self._end_now()

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

        Cancellation: the block is being left, and its end stops the child;
        the parent's end stays open until that end aborts the writer (the
        child's tree is gone), so that the child never sees an end of input
        before its stop signal -- it could take a cut-off input for a whole
        one. Pending bytes are then dropped.
        """
        try:
            await self._run()
        except trio.ClosedResourceError:
            pass  # a terminal whose output was closed: the terminal is closing
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                while not (self.queue.done and not self._chunks):
                    await self._room.park()  # abort() and _break() unpark
            raise
        finally:
            self.abort()
            self._release()
            producer = self.queue.unregister()
            try:
                if producer is not None:
                    producer.stopProducing()
            finally:
                lost()

    async def _run(self) -> None:
        chunks = self._chunks
        state = self.queue
        # A send that breaks the queue or sees it aborted ends the loop here:
        # broken, or done with nothing queued.
        while not state.broken:
            if chunks:
                await self._send()
            elif state.closing:
                return
            elif (producer := state.turn()) is not None:
                producer.resumeProducing()
                await trio.lowlevel.checkpoint()
            else:
                await self._idle_until_woken()

    async def _idle_until_woken(self) -> None:
        fd = self._watched_fd()
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
            and reader_gone(fd)
        ):
            self._break()

    def _consume(self, written: int) -> None:
        """*written* bytes from the queue's head reached the child's end."""
        queue = self._chunks
        left = written
        while left:
            head = queue[0]
            if left >= len(head):
                left -= len(head)
                queue.popleft()
            else:
                queue[0] = head[left:]
                left = 0
        if self.queue.drained(written):
            self._room.unpark_all()

    # The backend's I/O.

    def _write_now(self, data: bytes | memoryview) -> int:
        """Write the start of *data* that the child's end takes without a
        wait; return how much (raise `BlockingIOError` or `OSError`)."""
        raise NotImplementedError

    async def _send(self) -> None:
        """Write some of the (non-empty) queue, waiting if it must, and
        `_consume` it; `_break` when the child's end is gone."""
        raise NotImplementedError

    def _watched_fd(self) -> int | None:
        """The fd whose readiness tells that the reader closed, while idle."""
        raise NotImplementedError

    def _end_now(self) -> None:
        """Wake a write stuck on a full pipe: the queue was aborted."""
        raise NotImplementedError

    def _release(self) -> None:
        """Close the parent's end (the task is done with it)."""
        raise NotImplementedError
