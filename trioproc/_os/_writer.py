"""The writer: one task per writable child fd, the queue that feeds it, and
the producer that fills it.

`Writer.write` never blocks: it writes at once what the pipe takes (up to
1 MiB) and queues the rest, counted in bytes; `Writer.offer` (for
``send_all``) queues only up to the high-water mark and says how much it
took. The writer task empties the queue as the pipe drains. The queue's high-
and low-water marks are where flow control happens: a streaming producer is
paused when the queued bytes pass the high mark and resumed when they fall
below the low mark; ``send_all`` waits while the queue is at the high mark; a
pull producer is asked for more when the queue has room.

When the queue is empty the task watches the fd instead: on Linux a pipe's
write end reports an error as soon as its read end is closed, so the parent
learns that the child closed its stdin (or exited) without writing anything.
Python ignores SIGPIPE by default, so a write that races with that closing
fails with EPIPE, which is handled the same way.
"""

from __future__ import annotations

import errno
import itertools
import mmap
import os
import select
from collections import deque
from collections.abc import Callable
from typing import Any, Final, final

import attrs
import trio

from .._flow import InputQueue
from ._reader import grow_pipe

__all__ = ["Writer"]

_IOV_MAX: Final = min(os.sysconf("SC_IOV_MAX"), 1024)
# Linux keeps the last pages a pipe's reader freed (two on recent kernels, one
# on older ones) for the pipe's next write. While the child keeps up, writes
# of two pages reuse them, warm in the cache, instead of allocating (and
# charging) fresh pages. Into `cat` on Linux 6.18 that is 1.6x the MB/s of
# 64 KiB writes, with less CPU on both sides. When the child lags behind, it
# costs more system calls per byte.
_WRITE_SIZE: Final = 2 * mmap.PAGESIZE
# A writer that keeps finding room yields once per this many bytes.
_YIELD_EVERY: Final = 1 << 20
# What a write raises once the child's end is gone (EIO: a pty with no slave).
_BROKEN: Final = frozenset({errno.EPIPE, errno.ECONNRESET, errno.EIO})


def _write_pages(fd: int, data: memoryview) -> int:
    """Write *data* to *fd* in page-pair pieces until it is written, the fd
    is full or the child's end is gone; return how many bytes were written.

    Raises:
      BlockingIOError: not even the first piece fit.
      OSError: the first piece failed (EPIPE once the child's end is gone).
        After a piece was written, the error is left for the next write.
    """
    written = 0
    end = len(data)
    while written < end:
        try:
            n = os.write(fd, data[written : written + _WRITE_SIZE])
        except OSError as exc:
            if written and (exc.errno == errno.EAGAIN or exc.errno in _BROKEN):
                break
            raise
        written += n
        if n < _WRITE_SIZE:
            break  # the fd is full now
    return written


def _reader_gone(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, 0)
    return any(flags & (select.POLLERR | select.POLLHUP) for _, flags in poller.poll(0))


@final
@attrs.define(eq=False, init=False)
class Writer:
    """The parent's write end of one child fd, with its queue of pending bytes.

    The queue's accounting and its producer rules are `queue`'s
    (`trioproc._flow.InputQueue`); this class writes, waits and wakes.

    Attributes:
      child_fd: the fd number in the child.
      fd: the parent's end (non-blocking), or -1 once the task has finished.
      queue: the bytes accepted and not yet written, the marks, the producer.
        For a pseudo-terminal its ``eof`` is the end-of-file character that
        closing writes; the fd is the master, shared with the pump, and is not
        closed here. A pipe (``eof`` is ``None``) is closed by closing.
    """

    child_fd: int
    fd: int
    queue: InputQueue
    _chunks: deque[memoryview] = attrs.field(init=False, factory=deque)
    _idle: trio.CancelScope | None = attrs.field(init=False, default=None)
    _grown: bool = attrs.field(init=False, default=False)
    _room: trio.lowlevel.ParkingLot = attrs.field(
        init=False, factory=trio.lowlevel.ParkingLot
    )

    def __init__(
        self,
        child_fd: int,
        fd: int,
        high_water: int,
        low_water: int,
        *,
        eof: bytes | None = None,
    ) -> None:
        self.__attrs_init__(child_fd, fd, InputQueue(high_water, low_water, eof))

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
        """Take the start of *data* (a view of bytes) that fits: what the fd
        accepts now (up to 1 MiB), then what the queue has room for below its
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
        # Write what the fd takes now, then queue at most *room* more bytes.
        written = 0
        if not self._chunks and self.fd >= 0:
            try:
                if len(data) <= _WRITE_SIZE:
                    written = os.write(self.fd, data)
                else:
                    written = _write_pages(self.fd, memoryview(data)[:_YIELD_EVERY])
            except BlockingIOError:
                pass
            except OSError as exc:
                if exc.errno not in _BROKEN:
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
        """Stop accepting writes; end the fd once every pending byte is written.

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
        """Drop pending bytes and end the fd now."""
        self._chunks.clear()
        self.queue.drop()
        self._room.unpark_all()
        self._wake()
        if self.queue.eof is None and self.fd >= 0:
            # A writer parked on a full pipe that nobody reads (an escaped
            # process holds it) is woken too; run() closes the fd at once.
            trio.lowlevel.notify_closing(self.fd)

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

        Cancellation: pending bytes are dropped and a pipe is closed at once,
        so the child sees end of input.
        """
        try:
            await self._run()
        except trio.ClosedResourceError:
            pass  # a terminal whose output was closed: the terminal is closing
        finally:
            self.abort()
            if self.queue.eof is None:
                # No notify_closing: only this task ever waits on the fd.
                os.close(self.fd)
            self.fd = -1
            producer = self.queue.unregister()
            try:
                if producer is not None:
                    producer.stopProducing()
            finally:
                lost()

    async def _run(self) -> None:
        fd = self.fd
        queue = self._chunks
        state = self.queue
        since_yield = 0
        while not state.broken:
            if queue:
                try:
                    head = queue[0]
                    if len(queue) == 1 or len(head) >= _WRITE_SIZE:
                        written = _write_pages(fd, head[:_YIELD_EVERY])
                    else:
                        written = os.writev(fd, list(itertools.islice(queue, _IOV_MAX)))
                except BlockingIOError:
                    if not self._grown and state.eof is None:
                        self._grown = True
                        grow_pipe(fd)
                    since_yield = 0
                    await trio.lowlevel.wait_writable(fd)
                    continue
                except OSError as exc:
                    if exc.errno not in _BROKEN:
                        raise
                    self._break()
                    return
                self._consume(written)
                since_yield += written
                if since_yield >= _YIELD_EVERY:  # a writer that never waits yields
                    since_yield = 0
                    await trio.lowlevel.checkpoint()
            elif state.closing:
                return
            elif (producer := state.turn()) is not None:
                producer.resumeProducing()
                await trio.lowlevel.checkpoint()
            else:
                await self._idle_until_woken(fd)

    async def _idle_until_woken(self, fd: int) -> None:
        watch = self.queue.eof is None  # the pump already waits on a terminal's fd
        with trio.CancelScope() as self._idle:
            if watch:
                await trio.lowlevel.wait_readable(fd)
            else:
                await trio.sleep_forever()
        self._idle = None
        if watch and not self.queue.done and not self._chunks and _reader_gone(fd):
            self._break()

    def _consume(self, written: int) -> None:
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
