"""The Linux backend's writer: one task per writable child fd, the queue
that feeds it (`trioproc._os._queued.QueuedWriter`), and its fd's I/O.

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
from typing import ClassVar, Final, final

import attrs
import trio

from .._flow import InputQueue
from ._queued import QueuedWriter
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
# A write of at most this much (send_all's usual 64 KiB) is one write: between
# such calls the child drains the pipe and sleeps, so page-pair pieces would
# wake it once per piece. 64 KiB calls into `cat` on Linux 6.18: 1.5x the MB/s.
_WHOLE_WRITE: Final = 1 << 16
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


@final
@attrs.define(eq=False, init=False)
class Writer(QueuedWriter):  # type: ignore[override]  # attrs: __attrs_init__ takes fd too
    """The parent's write end of one child fd, with its queue of pending bytes.

    The queue, the producer's turns and the task's loop are `QueuedWriter`'s;
    this class writes to the fd, waits for it and closes it.

    Attributes:
      child_fd: the fd number in the child.
      fd: the parent's end (non-blocking), or -1 once the task has finished.
      queue: the bytes accepted and not yet written, the marks, the producer.
        For a pseudo-terminal its ``eof`` is the end-of-file character that
        closing writes; the fd is the master, shared with the pump, and is not
        closed here. A pipe (``eof`` is ``None``) is closed by closing.
    """

    broken_errnos: ClassVar[frozenset[int]] = _BROKEN

    fd: int
    _grown: bool = attrs.field(init=False, default=False)
    _since_yield: int = attrs.field(init=False, default=0)

    def __init__(
        self,
        child_fd: int,
        fd: int,
        high_water: int,
        low_water: int,
        *,
        eof: bytes | None = None,
    ) -> None:
        self.__attrs_init__(
            child_fd=child_fd, queue=InputQueue(high_water, low_water, eof), fd=fd
        )

    def _write_now(self, data: bytes | memoryview) -> int:
        if self.fd < 0:
            return 0
        if len(data) <= _WHOLE_WRITE:
            return os.write(self.fd, data)
        return _write_pages(self.fd, memoryview(data)[:_YIELD_EVERY])

    async def _send(self) -> None:
        fd = self.fd
        queue = self._chunks
        try:
            head = queue[0]
            if len(queue) == 1 or len(head) >= _WRITE_SIZE:
                written = _write_pages(fd, head[:_YIELD_EVERY])
            else:
                written = os.writev(fd, list(itertools.islice(queue, _IOV_MAX)))
        except BlockingIOError:
            if not self._grown and self.queue.eof is None:
                self._grown = True
                grow_pipe(fd)
            self._since_yield = 0
            await trio.lowlevel.wait_writable(fd)
            return
        except OSError as exc:
            if exc.errno not in _BROKEN:
                raise
            self._break()
            return
        self._consume(written)
        self._since_yield += written
        if self._since_yield >= _YIELD_EVERY:  # a writer that never waits yields
            self._since_yield = 0
            await trio.lowlevel.checkpoint()

    def _watched_fd(self) -> int | None:
        # The pump already waits on a terminal's fd.
        return self.fd if self.queue.eof is None else None

    def _end_now(self) -> None:
        if self.queue.eof is None and self.fd >= 0:
            # A writer parked on a full pipe that nobody reads (an escaped
            # process holds it) is woken too; run() closes the fd at once.
            trio.lowlevel.notify_closing(self.fd)

    def _release(self) -> None:
        if self.queue.eof is None:
            # No notify_closing: only this task ever waits on the fd.
            os.close(self.fd)
        self.fd = -1
