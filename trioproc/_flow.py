"""The input queue's accounting, with no I/O: what the real writer
(`trioproc._os._writer.Writer`) and the fake's writer both decide the same way.

`InputQueue` counts the bytes queued for one child input fd and holds the
rules around that count: a streaming (push) producer is paused when the count
passes the high-water mark and resumed when it falls below the low-water mark,
once per crossing; a pull producer is asked for more once its write has been
written out; a terminal's end of input is one EOF character after a complete
line and two after a partial one. The writers do the writing, the waiting and
the waking; this class only says what follows from the count, so it is tested
synchronously (``tests/test_flow_queue.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, final

import attrs

if TYPE_CHECKING:
    from ._interfaces import IProducer

__all__ = ["InputEnd", "InputQueue"]

_NEWLINE = ord("\n")


@final
@attrs.define(eq=False)
class InputQueue:
    """The state of one input fd's queue, and its producer.

    Attributes:
      high_water, low_water: the marks, in bytes.
      eof: a terminal's end-of-file character, ``None`` for a pipe.
      buffered: bytes accepted and not yet written to the fd.
      closing: no more writes are accepted; queued bytes are still written.
      broken: the child's end is gone; queued bytes were dropped.
      producer: the registered producer, if any.
      streaming: whether it is a streaming (push) producer.
      producer_paused: whether a streaming producer is paused now.
      wants_more: a pull producer wrote, and is owed its next turn.
      line_start: the last byte accepted ended a line (or none was).
    """

    high_water: int
    low_water: int
    eof: bytes | None = None
    buffered: int = attrs.field(init=False, default=0)
    closing: bool = attrs.field(init=False, default=False)
    broken: bool = attrs.field(init=False, default=False)
    producer: IProducer | None = attrs.field(init=False, default=None)
    streaming: bool = attrs.field(init=False, default=False)
    producer_paused: bool = attrs.field(init=False, default=False)
    wants_more: bool = attrs.field(init=False, default=False)
    line_start: bool = attrs.field(init=False, default=True)

    @property
    def done(self) -> bool:
        """Nothing more will be accepted: closed by the parent or by the child."""
        return self.closing or self.broken

    @property
    def full(self) -> bool:
        """A sender must wait: the queue holds its high mark and is not done."""
        return self.buffered >= self.high_water and not self.done

    @property
    def room(self) -> int:
        """How many more bytes fit below the high mark."""
        return max(self.high_water - self.buffered, 0)

    def accepted(self, data: bytes | memoryview, taken: int, queued: int) -> None:
        """*taken* bytes of *data* were accepted, *queued* of them queued."""
        self.buffered += queued
        if self.eof is not None and taken:
            self.line_start = data[taken - 1] == _NEWLINE

    def wrote(self) -> bool:
        """The producer's write was accepted: pause a streaming producer past
        the high mark. Returns whether a pull producer is now owed a turn
        (the caller gives it later, never from inside the producer's write)."""
        producer = self.producer
        if producer is None:
            return False
        if not self.streaming:
            self.wants_more = True
            return True
        if self.buffered > self.high_water and not self.producer_paused:
            self.producer_paused = True
            producer.pauseProducing()  # type: ignore[attr-defined]  # streaming
        return False

    def drained(self, written: int) -> bool:
        """*written* queued bytes reached the fd: resume a paused streaming
        producer below the low mark. Returns whether the queue is below the
        low mark (senders waiting for room may go on)."""
        self.buffered -= written
        if self.buffered >= self.low_water:
            return False
        if self.producer_paused and self.producer is not None:
            self.producer_paused = False
            self.producer.resumeProducing()
        return True

    def turn(self) -> IProducer | None:
        """The pull producer owed a turn now that the queue is empty (the
        caller calls its ``resumeProducing()``), else ``None``."""
        producer = self.producer
        if not self.wants_more or producer is None or self.buffered or self.done:
            return None
        self.wants_more = False
        return producer

    def register(self, producer: Any, streaming: bool) -> None:
        """Let *producer* fill the queue (the caller checked it is the only one).

        A streaming producer is paused at once if the queue is already past
        its high mark; a pull producer is asked for its first data now. A
        queue that is done stops the producer instead.
        """
        if self.done:
            producer.stopProducing()
            return
        self.producer, self.streaming = producer, streaming
        self.producer_paused = False
        if not streaming:
            producer.resumeProducing()
        elif self.buffered > self.high_water:
            self.producer_paused = True
            producer.pauseProducing()

    def unregister(self) -> IProducer | None:
        """Forget the producer, whatever its state; return it."""
        producer, self.producer = self.producer, None
        self.producer_paused = self.wants_more = False
        return producer

    def end_of_input(self) -> bytes:
        """What closing writes last: for a terminal, its EOF character -- in
        canonical mode EOF after a partial line only hands that line over, so
        a second one then means end of input; for a pipe, nothing."""
        if self.eof is None:
            return b""
        return self.eof if self.line_start else self.eof * 2

    def drop(self, *, broken: bool = False, closing: bool = True) -> None:
        """Forget the queued bytes: the fd ends now (*broken*: the child's end
        is gone)."""
        self.buffered = 0
        self.broken = self.broken or broken
        self.closing = self.closing or closing


class InputEnd(Protocol):
    """The parent's end of one ``"w"`` fd over an `InputQueue`: what the
    contract and ``stdin`` use of the real writer (`trioproc._os._writer.Writer`)
    and of the fake's writer."""

    @property
    def queue(self) -> InputQueue:
        """The queue's accounting: bytes queued, marks, producer, state."""

    def write(self, data: bytes) -> None:
        """Queue *data*, writing what fits now; dropped once the queue is done."""

    def offer(self, data: memoryview, *, copy: bool) -> int:
        """Take what fits below the high-water mark; return how much."""

    def register_producer(self, producer: IProducer, streaming: bool) -> None:
        """Let *producer* fill the queue, with flow control."""

    def unregister_producer(self) -> None:
        """Forget the producer."""

    def close(self) -> None:
        """End the fd once the queue is written (a terminal: send EOF)."""

    async def wait_for_room(self) -> None:
        """Return once the queue is below its high-water mark, or done."""
