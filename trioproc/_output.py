"""`OutputStream`: one of the child's output fds as a `trio.abc.ReceiveStream`.

In stream mode (`trioproc._streams.StreamProtocol`) each read fd fills one
bounded `OutputStream`. When its buffer is full the stream pauses that fd's
reading through its host (the transport, a `trioproc._streams.StreamHost`),
so a reader that does not read makes the child block on a full pipe, and
memory stays bounded.

Where the host lets it (`StreamHost._puller`: the Linux backend), a reader
that finds the buffer empty reads the fd itself, in its own task, rather than
wait for a pump task to deliver: one task switch less per chunk. It reads only
into an empty buffer (or, for a line or a match, one below its bound), so the
bound holds the same way. A read that finds output at once goes through no
other coroutine (`Puller.read_now`): at 16 KiB a chunk, each frame less is a
few per cent of the throughput.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Final, Protocol, final

import attrs
import trio

from ._expect import (
    MAX_LINE,
    LineTooLong,
    Pattern,
    UnexpectedEOF,
    check_window,
    compile_patterns,
    describe,
    earliest,
)
from ._util import PASS_CALL_MIN, PASS_EVERY, NoPublicConstructor, fail

if TYPE_CHECKING:
    from ._streams import StreamHost

__all__ = ["OUTPUT_BUFFER", "OutputStream", "Puller"]

# lines() takes at most this many bytes without a schedule point.
_LINES_YIELD_EVERY: Final = 1 << 16
#: How many unread bytes an output stream holds before its pump pauses.
OUTPUT_BUFFER: Final = 1 << 18
# The most a pulled read asks for (the fd reads at most 64 KiB at a time).
_PULL_MAX: Final = 1 << 16


class Puller(Protocol):
    """An output fd that its stream's reader reads in its own task
    (`trioproc._os._seam.ChildReader` where the backend can)."""

    def read_now(self, max_bytes: int) -> bytes | None:
        """At most *max_bytes* (up to 64 KiB) the fd holds now; ``None`` if
        it holds none, or `read_some` must decide (the end of file, a pause,
        the pump's turn)."""

    async def read_some(self, max_bytes: int, schedule: bool) -> bytes | None:
        """A read that waits for output; ``None`` when the host delivers
        instead, for the caller to wait for."""


def _closed_stream() -> trio.ClosedResourceError:
    return trio.ClosedResourceError("this output stream was closed")


def _checked_max_bytes(max_bytes: object) -> int:
    """*max_bytes* when it is an int subclass >= 1 (not a bool); else raise."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
        raise TypeError("max_bytes must be an integer >= 1 or None")
    if max_bytes < 1:
        raise ValueError("max_bytes must be an integer >= 1 or None")
    return max_bytes


@final
@attrs.define(eq=False)
class OutputStream(trio.abc.ReceiveStream, metaclass=NoPublicConstructor):
    """One of the child's output fds as a `trio.abc.ReceiveStream` (stream mode).

    ``receive_some()``, ``lines()`` and ``expect()`` read from one buffer, so
    they can be mixed on the same stream: what one of them has buffered and
    not returned is what the next one returns first.
    """

    _transport: StreamHost
    _fd: int
    _chunks: deque[bytes] = attrs.field(init=False, factory=deque)
    #: Bytes of ``_chunks[0]`` already returned (lines take a chunk in pieces).
    _offset: int = attrs.field(init=False, default=0)
    #: Unread bytes buffered (the chunks' lengths less `_offset`).
    _size: int = attrs.field(init=False, default=0)
    #: The leading chunks, and their unread bytes, known to hold no newline.
    _scanned_chunks: int = attrs.field(init=False, default=0)
    _scanned_bytes: int = attrs.field(init=False, default=0)
    #: Buffered bytes at which the pump pauses: more while a line or a match
    #: that needs more is awaited.
    _limit: int = attrs.field(init=False, default=OUTPUT_BUFFER)
    _eof: bool = attrs.field(init=False, default=False)
    _closed: bool = attrs.field(init=False, default=False)
    _paused: bool = attrs.field(init=False, default=False)
    _receiving: bool = attrs.field(init=False, default=False)
    _lines_since_yield: int = attrs.field(init=False, default=0)
    #: What `receive_some` counted since its last schedule point (`PASS_EVERY`).
    _since_pass: int = attrs.field(init=False, default=0)
    _arrived: trio.lowlevel.ParkingLot = attrs.field(
        init=False, factory=trio.lowlevel.ParkingLot
    )
    _pull: Puller | None = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._pull = self._transport._puller(self._fd)

    async def _more(
        self, max_bytes: int = _PULL_MAX, schedule: bool = True
    ) -> bytes | None:
        """Wait for more output: read it here when the host lets the reader
        pull, and return it, not buffered (the caller takes it, or feeds
        it); else (or when the host delivers after all, as at the end of
        file) wait for its delivery, and return ``None``. A read that finds
        output at once takes a schedule point only if *schedule*. A
        cancelled wait took nothing."""
        pull = self._pull
        if pull is not None:
            size = self._size
            data = await pull.read_some(max_bytes, schedule)
            if data is not None:
                return data
            if self._closed or self._eof or self._size != size:
                # Closed (aclose woke the read), or delivered to while the
                # read waited: by the pump, which has the fd back now, or by
                # the host's `fill`. (Not "the buffer holds something": a
                # line or a match waits with part of one buffered.)
                return None
        await self._arrived.park()
        return None

    async def _more_within(self, bound: int) -> None:
        """`_more`, with the buffer let grow to *bound* bytes meanwhile (a
        line or a match in the making), buffering what is read here."""
        self._limit = max(OUTPUT_BUFFER, bound)
        try:
            self._flow()
            if (more := await self._more()) is not None:
                self._feed(more)
        finally:
            self._limit = OUTPUT_BUFFER
            self._flow()

    def _clear(self) -> None:
        self._chunks.clear()
        self._offset = self._size = 0
        self._scanned_chunks = self._scanned_bytes = 0

    def _discard(self) -> None:
        """Drop what is buffered and all that comes, without pausing the pump."""
        self._closed = True
        self._clear()
        self._arrived.unpark_all()

    def _feed(self, data: bytes) -> None:
        if self._closed:
            return
        self._chunks.append(data)
        self._size += len(data)
        self._flow()
        self._arrived.unpark_all()

    def _feed_eof(self) -> None:
        self._eof = True
        self._arrived.unpark_all()

    def _flow(self) -> None:
        """Pause the pump at the limit, and let it read again below it."""
        if self._closed:
            return
        if not self._paused and self._size >= self._limit:
            self._paused = True
            self._transport._pause_reading(self._fd)
        elif self._paused and self._size < self._limit:
            self._paused = False
            self._transport._resume_reading(self._fd)

    def _take(self, n: int) -> bytes:
        """Remove and return the first *n* buffered bytes (``0 < n <= _size``)."""
        chunks = self._chunks
        head = chunks[0]
        offset = self._offset
        rest = len(head) - offset
        if n < rest:
            piece = head[offset : offset + n]
            self._offset = offset + n
        elif n == rest:
            piece = head[offset:] if offset else head
            chunks.popleft()
            self._offset = 0
        else:
            parts = [head[offset:] if offset else head]
            chunks.popleft()
            self._offset = 0
            need = n - rest
            while need:
                chunk = chunks[0]
                if len(chunk) <= need:
                    parts.append(chunk)
                    chunks.popleft()
                    need -= len(chunk)
                else:
                    parts.append(chunk[:need])
                    self._offset = need
                    need = 0
            piece = b"".join(parts)
        self._size -= n
        self._scanned_chunks = self._scanned_bytes = 0
        self._flow()
        return piece

    def _line_length(self) -> int:
        """The length of the first buffered line with its newline; -1 if the
        buffer holds no newline. Chunks already scanned are not scanned again."""
        chunks = self._chunks
        k, seen = self._scanned_chunks, self._scanned_bytes
        while k < len(chunks):
            chunk = chunks[k]
            start = self._offset if k == 0 else 0
            end = chunk.find(b"\n", start)
            if end >= 0:
                return seen + end + 1 - start
            seen += len(chunk) - start
            k += 1
        self._scanned_chunks, self._scanned_bytes = k, seen
        return -1

    def _joined(self) -> bytes:
        """The whole buffer as one chunk (which stays buffered)."""
        chunks = self._chunks
        if self._offset or len(chunks) > 1:
            chunks[0] = chunks[0][self._offset :]
            joined = b"".join(chunks)
            self._clear()
            chunks.append(joined)
            self._size = len(joined)
        return chunks[0] if chunks else b""

    def _start_receiving(self) -> None:
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving from this stream")
        self._receiving = True

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """The next bytes the child wrote; ``b""`` at end of file.

        A cancel point. A schedule point whenever it waits for output, and
        otherwise at least once per 16 calls or 1 MiB (`PASS_EVERY`).

        Raises:
          trio.ClosedResourceError: this stream was closed.
          trio.BusyResourceError: another task is receiving.

        Cancellation: nothing was taken from the stream.
        """
        if max_bytes is None:
            size = _PULL_MAX
        elif type(max_bytes) is int and max_bytes >= 1:
            size = max_bytes
        else:
            size = _checked_max_bytes(max_bytes)
        self._start_receiving()
        try:
            if self._closed:
                await fail(_closed_stream())
            due = self._since_pass >= PASS_EVERY
            if due:
                self._since_pass = 0
            if self._chunks or self._eof:
                await trio.lowlevel.checkpoint_if_cancelled()
                if due:
                    await trio.lowlevel.cancel_shielded_checkpoint()
            elif (pull := self._pull) is not None:
                await trio.lowlevel.checkpoint_if_cancelled()
                if data := pull.read_now(size):
                    if due:
                        await trio.lowlevel.cancel_shielded_checkpoint()
                    got = len(data)
                    self._since_pass += got if got > PASS_CALL_MIN else PASS_CALL_MIN
                    return data
            while not self._chunks and not self._eof:
                data = await self._more(size, due)
                if self._closed:
                    await fail(_closed_stream())
                if data is not None:
                    # Read here, at most max_bytes: no trip through the buffer.
                    self._since_pass += max(len(data), PASS_CALL_MIN)
                    return data
            self._since_pass += PASS_CALL_MIN
            if not self._chunks:
                return b""
            if max_bytes is None:
                # Everything buffered at once: one copy is cheaper than a
                # trip through the scheduler per chunk.
                return self._take(self._size)
            return self._take(min(max_bytes, len(self._chunks[0]) - self._offset))
        finally:
            self._receiving = False

    def lines(self, max_line: int = MAX_LINE) -> AsyncIterator[bytes]:
        """Iterate over the output line by line::

            async for line in transport.stdout.lines():
                ...

        Each line is what iterating over a binary file gives: it ends in
        ``b"\\n"``, except perhaps the last one before end of file. The
        iterator holds no bytes of its own: a line not yet complete stays in
        the stream's buffer, so ``receive_some()``, ``expect()`` or another
        ``lines()`` can take over at any time, a ``break`` loses nothing, and
        each step is a receive that raises `trio.BusyResourceError` when
        another task is receiving.

        Each step is a cancel point. It is a schedule point too whenever it
        waits for output, and at least once per 64 KiB of lines taken
        without waiting, rather than on every line: a full checkpoint costs
        about 3 us, three quarters of a line's cost, and a reader of a busy
        child lets other tasks run once per chunk either way.

        Args:
          max_line: the longest line accepted, newline included (default 1
            MiB). A longer line raises instead of growing the buffer.

        Raises:
          LineTooLong: (a `ValueError`) from the step that meets a line
            longer than *max_line*; its bytes stay buffered for
            ``receive_some()``.
          trio.ClosedResourceError: this stream was closed.
          trio.BusyResourceError: another task is receiving.

        Cancellation: a step that is cancelled takes nothing from the stream.
        """
        if isinstance(max_line, bool) or not isinstance(max_line, int):
            raise TypeError("max_line must be an integer >= 1")
        if max_line < 1:
            raise ValueError("max_line must be an integer >= 1")
        return _Lines(self, max_line)

    async def _receive_line(self, max_line: int) -> bytes | None:
        """The next line of at most *max_line* bytes, ``None`` at end of file."""
        self._start_receiving()
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            if self._lines_since_yield >= _LINES_YIELD_EVERY:
                self._lines_since_yield = 0
                await trio.lowlevel.cancel_shielded_checkpoint()
            while True:
                if self._closed:
                    await fail(_closed_stream())
                chunks = self._chunks
                if chunks and not self._scanned_chunks:
                    # The usual case, kept short: the line ends in the
                    # first chunk (_take's first branches, inline).
                    head, offset = chunks[0], self._offset
                    end = head.find(b"\n", offset) + 1
                    if 0 < end - offset <= max_line:
                        self._size -= end - offset
                        self._lines_since_yield += end - offset
                        if end == len(head):
                            chunks.popleft()
                            self._offset = 0
                        else:
                            self._offset = end
                        if self._paused:
                            self._flow()
                        return head[offset:end] if offset or end < len(head) else head
                length = self._line_length()
                if length > max_line or (length < 0 and self._size > max_line):
                    raise LineTooLong(
                        f"a line of output is longer than max_line={max_line} bytes"
                    )
                if length > 0:
                    self._lines_since_yield += length
                    return self._take(length)
                if self._eof:
                    return self._take(self._size) if self._size else None
                self._lines_since_yield = 0
                await self._more_within(max_line + 1)
        finally:
            self._receiving = False

    async def expect(
        self,
        pattern: Pattern | Sequence[Pattern],
        *,
        window: int = OUTPUT_BUFFER,
    ) -> re.Match[bytes]:
        """Wait until the output matches *pattern*; return the match.

        For interactive programs (a shell or a REPL on a pty)::

            await shell.stdin.send_all(b"ls\\n")
            m = await shell.stdout.expect(b"\\$ ")
            listing = m.string[: m.start()]

        The search covers the output received since the previous match (or
        since the last ``receive_some()`` / line): ``m.string[:m.start()]`` is
        what came before the match. Output after the match stays buffered
        for the next ``expect()``, ``lines()`` or ``receive_some()``; it may
        also be in ``m.string`` (do not read it from there too).

        There is no timeout argument: wrap the call in ``trio.fail_after()``
        or ``trio.move_on_after()``.

        Args:
          pattern: a bytes regular expression, a compiled bytes pattern, or
            a list of them. With a list, the match that starts first wins
            (the earlier pattern on a tie), and ``m.re`` says which one it is:
            the compiled pattern you passed, or one whose ``m.re.pattern`` is
            the bytes you passed.
          window: the search window, in bytes (default 256 KiB). Output older
            than the newest *window* bytes is dropped unmatched, as scrolled
            off a screen, so a match must lie within the window; this bounds
            memory whatever the child prints.

        Returns:
          The `re.Match`, ``m.re`` being the pattern that matched.

        Raises:
          UnexpectedEOF: (an `EOFError`) the output ended first; its
            ``output`` holds what was received since the previous match.
          trio.ClosedResourceError: this stream was closed.
          trio.BusyResourceError: another task is receiving.
          TypeError, ValueError: a pattern that is not bytes, or a bad window.

        Cancellation: nothing is taken from the stream (output dropped from
        the front of the window is gone).
        """
        patterns = compile_patterns(pattern)
        check_window(window)
        self._start_receiving()
        try:
            await trio.lowlevel.checkpoint()
            while True:
                if self._closed:
                    await fail(_closed_stream())
                if self._size > window:
                    self._take(self._size - window)
                data = self._joined()
                found = earliest(patterns, data)
                if found is not None:
                    if found.end():
                        self._take(found.end())
                    return found
                if self._eof:
                    output = self._take(self._size) if self._size else b""
                    raise UnexpectedEOF(
                        f"the output ended before {describe(patterns)} appeared",
                        output,
                    )
                await self._more_within(window + 1)
        finally:
            self._receiving = False

    async def aclose(self) -> None:
        """Discard unread output and close the parent's end of the fd."""
        if not self._closed:
            self._closed = True
            self._clear()
            self._arrived.unpark_all()
            if not self._eof:
                self._transport.closeChildFD(self._fd)
        await trio.lowlevel.checkpoint()


@final
@attrs.define(eq=False)
class _Lines:
    """The iterator ``OutputStream.lines()`` returns: a stream and a bound,
    nothing buffered, so leaving it loses nothing."""

    _stream: OutputStream
    _max_line: int

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> bytes:
        line = await self._stream._receive_line(self._max_line)
        if line is None:
            raise StopAsyncIteration
        return line
