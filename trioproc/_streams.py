"""Trio streams over a child's fds.

`StdinStream` is a `trio.abc.SendStream` over a writer: it shares the writer's
queue with ``transport.write()``, and ``send_all`` waits while the queue is
full, which is real backpressure for async callers.

Stream mode (``spawn(argv, protocol=None)``) is `StreamProtocol`: an ordinary
protocol whose callbacks fill one bounded `OutputStream` per read fd. When a
buffer is full the protocol pauses that fd's pump, so a reader that does not
read makes the child block on a full pipe, and memory stays bounded.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Final, NoReturn, final

import attrs
import trio

if TYPE_CHECKING:
    from ._errors import ProcessEnded
    from ._os._writer import Writer

__all__ = ["OutputStream", "StdinStream", "StreamProtocol"]

#: How many unread bytes an output stream holds before its pump pauses.
OUTPUT_BUFFER: Final = 1 << 18


async def _fail(error: Exception) -> NoReturn:
    """Raise *error*, unless the caller is cancelled: a block torn down by a
    cancellation closes its own streams, and a task of that block must see
    its cancellation (trio's rule: a cancelled call raises Cancelled), not a
    closed stream."""
    await trio.lowlevel.checkpoint_if_cancelled()
    raise error


def _closed_stream() -> trio.ClosedResourceError:
    return trio.ClosedResourceError("this output stream was closed")


def _no_constructor(cls: type) -> NoReturn:
    raise TypeError(f"{cls.__name__} has no public constructor: use spawn()")


@final
@attrs.define(eq=False, init=False)
class StdinStream(trio.abc.SendStream):
    """The child's fd 0 as a `trio.abc.SendStream` (``transport.stdin``).

    ``send_all`` returns once every byte is queued for the child, waiting
    while the queue holds its high-water mark. If it is cancelled, the bytes
    queued so far (`committed`) still reach the child in order, and the
    stream stays usable.
    """

    _writer: Writer
    committed: int = attrs.field(init=False, default=0)
    """Bytes of the last ``send_all`` that were queued (all, unless cancelled)."""
    _sending: bool = attrs.field(init=False, default=False)

    def __init__(self, *args: object, **kwargs: object) -> None:
        _no_constructor(type(self))

    @classmethod
    def _create(cls, writer: Writer) -> StdinStream:
        self = cls.__new__(cls)
        self.__attrs_init__(writer)
        return self

    def _unusable(self) -> Exception | None:
        if self._writer.broken:
            return trio.BrokenResourceError("the child closed its end of the pipe")
        if self._writer.closing:
            return trio.ClosedResourceError("stdin was closed")
        return None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Queue *data* for the child, waiting while the queue is full.

        Raises:
          trio.ClosedResourceError: stdin was closed by the parent.
          trio.BrokenResourceError: the child closed its end.
          trio.BusyResourceError: another task is in ``send_all``.

        Cancellation: `committed` says how many bytes were queued; those are
        written, the rest are not.
        """
        if self._sending:
            raise trio.BusyResourceError("another task is using stdin for send_all")
        self._sending = True
        try:
            self.committed = 0
            if (error := self._unusable()) is not None:
                await _fail(error)
            await trio.lowlevel.checkpoint()
            writer = self._writer
            view = memoryview(data)
            if view.ndim != 1 or view.format != "B":
                view = view.cast("B")  # bytes, whatever the caller's format
            copy = not isinstance(data, bytes)  # the caller may reuse its buffer
            since_yield = 0
            while True:
                # Each step takes what the pipe accepts at once and what the
                # queue has room for, so `committed` is exact if this is
                # cancelled; a checkpoint when the queue is full (to wait for
                # room) or once a MiB (to let others run).
                if (error := self._unusable()) is not None:
                    await _fail(error)
                taken = writer.offer(view[self.committed :], copy=copy)
                # The write itself may find the child gone.
                if (error := self._unusable()) is not None:
                    await _fail(error)
                self.committed += taken
                since_yield += taken
                if self.committed == len(view):
                    return
                if writer.buffered >= writer.high_water or since_yield >= 1 << 20:
                    since_yield = 0
                    await writer.wait_for_room()
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        """Return once the queue has room (or stdin is closed or broken)."""
        if self._sending:
            raise trio.BusyResourceError("another task is using stdin for send_all")
        if (error := self._unusable()) is not None:
            await _fail(error)
        await self._writer.wait_for_room()

    async def aclose(self) -> None:
        """Close stdin once the queued bytes are written (``closeStdin()``)."""
        self._writer.close()
        await trio.lowlevel.checkpoint()


@final
@attrs.define(eq=False, init=False)
class OutputStream(trio.abc.ReceiveStream):
    """One of the child's output fds as a `trio.abc.ReceiveStream` (stream mode)."""

    _transport: Any  # a transport that hosts stream mode (see StreamProtocol)
    _fd: int
    _chunks: deque[bytes] = attrs.field(init=False, factory=deque)
    _size: int = attrs.field(init=False, default=0)
    _eof: bool = attrs.field(init=False, default=False)
    _closed: bool = attrs.field(init=False, default=False)
    _paused: bool = attrs.field(init=False, default=False)
    _receiving: bool = attrs.field(init=False, default=False)
    _arrived: trio.lowlevel.ParkingLot = attrs.field(
        init=False, factory=trio.lowlevel.ParkingLot
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        _no_constructor(type(self))

    @classmethod
    def _create(cls, transport: Any, fd: int) -> OutputStream:
        self = cls.__new__(cls)
        self.__attrs_init__(transport, fd)
        return self

    def _discard(self) -> None:
        """Drop what is buffered and all that comes, without pausing the pump."""
        self._closed = True
        self._chunks.clear()
        self._size = 0
        self._arrived.unpark_all()

    def _feed(self, data: bytes) -> None:
        if self._closed:
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._size >= OUTPUT_BUFFER and not self._paused:
            self._paused = True
            self._transport._pause_reading(self._fd)
        self._arrived.unpark_all()

    def _feed_eof(self) -> None:
        self._eof = True
        self._arrived.unpark_all()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """The next bytes the child wrote; ``b""`` at end of file.

        Raises:
          trio.ClosedResourceError: this stream was closed.
          trio.BusyResourceError: another task is receiving.
        """
        if max_bytes is not None and (
            isinstance(max_bytes, bool) or not isinstance(max_bytes, int)
        ):
            raise TypeError("max_bytes must be an integer >= 1 or None")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be an integer >= 1 or None")
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving from this stream")
        self._receiving = True
        try:
            if self._closed:
                await _fail(_closed_stream())
            if self._chunks or self._eof:
                await trio.lowlevel.checkpoint()
            while not self._chunks and not self._eof:
                await self._arrived.park()
                if self._closed:
                    await _fail(_closed_stream())
            chunks = self._chunks
            if not chunks:
                return b""
            if max_bytes is None and len(chunks) > 1:
                # Everything buffered at once: one copy is cheaper than a
                # trip through the scheduler per chunk.
                chunk = b"".join(chunks)
                chunks.clear()
            else:
                chunk = chunks.popleft()
                if max_bytes is not None and len(chunk) > max_bytes:
                    chunks.appendleft(chunk[max_bytes:])
                    chunk = chunk[:max_bytes]
            self._size -= len(chunk)
            if self._paused and self._size < OUTPUT_BUFFER:
                self._paused = False
                self._transport._resume_reading(self._fd)
            return chunk
        finally:
            self._receiving = False

    async def aclose(self) -> None:
        """Discard unread output and close the parent's end of the fd."""
        if not self._closed:
            self._closed = True
            self._chunks.clear()
            self._size = 0
            self._arrived.unpark_all()
            if not self._eof:
                self._transport.closeChildFD(self._fd)
        await trio.lowlevel.checkpoint()


@final
class StreamProtocol:
    """The protocol of stream mode: output goes to bounded `OutputStream` s."""

    __slots__ = ("streams",)

    def __init__(self) -> None:
        self.streams: dict[int, OutputStream] = {}

    def makeConnection(self, transport: Any) -> None:
        # Any transport that hosts stream mode (the real one, the fake) has
        # _output_fds(), _pause_reading(fd), _resume_reading(fd) and a
        # _streams mapping for its stdout/stderr properties.
        for fd in transport._output_fds():
            self.streams[fd] = OutputStream._create(transport, fd)
        transport._streams = self.streams

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self.streams[childFD]._feed(data)

    def childConnectionLost(self, childFD: int) -> None:
        stream = self.streams.get(childFD)
        if stream is not None:
            stream._feed_eof()

    def processExited(self, reason: ProcessEnded) -> None:
        pass

    def processEnded(self, reason: ProcessEnded) -> None:
        pass
