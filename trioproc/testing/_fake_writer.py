"""`FakeWriter`: what the fake child reads on one ``"w"`` fd.

The fake's counterpart of the real writer (`trioproc._os._writer.Writer`):
the same queue accounting (`trioproc._flow.InputQueue`), with bytes that go
into memory instead of a pipe, and the real writer's later work (a lost fd, a
pull producer's turn) deferred to the fake's next driver call or flush.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import trio

from .._flow import InputQueue

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._interfaces import IProducer

__all__ = ["FakeWriter"]

# A terminal's end-of-file character in the fake (^D, as by default).
_EOF = b"\x04"


@final
class FakeWriter:
    """What the child reads on one ``"w"`` fd: received bytes, and bytes the
    parent wrote that a stalled child has not read yet (`pending`, counted by
    `queue` as the real writer counts its queue)."""

    def __init__(
        self,
        high: int,
        low: int,
        *,
        terminal: bool,
        defer: Callable[[Callable[[], object]], None],
        lost: Callable[[], None],
    ) -> None:
        """*defer* queues work the real writer would do later, from its task;
        *lost* tells the fake that this fd is lost (the write end closed)."""
        self.queue = InputQueue(high, low, _EOF if terminal else None)
        self._defer, self._lost = defer, lost
        self.received = bytearray()
        self.pending = bytearray()
        self.stalled = False
        self._room = trio.lowlevel.ParkingLot()

    def write(self, data: bytes | memoryview) -> None:
        if self.queue.done or not data:
            return
        self._take(data, len(data))
        if self.queue.wrote():
            self._defer(self._turn)

    def offer(self, data: memoryview, *, copy: bool) -> int:
        """As the real writer: what the child reads at once, then what fits
        below the high mark."""
        if self.queue.done:
            return 0
        return self._take(data, self.queue.room)

    def _take(self, data: bytes | memoryview, room: int) -> int:
        if self.stalled or self.pending:
            taken = data[:room]
            self.pending += taken
            self.queue.accepted(data, len(taken), len(taken))
        else:
            taken = data
            self.received += taken
            self.queue.accepted(data, len(taken), 0)
        return len(taken)

    def _turn(self) -> None:
        # As the real writer: a pull producer's turn comes once everything
        # queued is written.
        producer = self.queue.turn()
        if producer is not None:
            producer.resumeProducing()

    def drain(self, nbytes: int | None) -> None:
        taken = self.pending[:nbytes] if nbytes is not None else self.pending[:]
        del self.pending[: len(taken)]
        self.received += taken
        if self.queue.drained(len(taken)):
            self._room.unpark_all()
            self._turn()
        if self.queue.closing and not self.pending:
            self._defer(self._lost)

    async def wait_for_room(self) -> None:
        if self.queue.full:
            await self._room.park()
        else:
            await trio.lowlevel.checkpoint()

    def register_producer(self, producer: IProducer, streaming: bool) -> None:
        self.queue.register(producer, streaming)

    def unregister_producer(self) -> None:
        self.queue.unregister()

    def close(self) -> None:
        if self.queue.done:
            return
        eof = self.queue.end_of_input()
        if eof:
            self._take(eof, len(eof))
        self.queue.closing = True
        self._room.unpark_all()
        if not self.pending:
            self._defer(self._lost)

    def end(self, broken: bool) -> None:
        """The fd is gone: drop what waits, wake send_all, stop the producer."""
        self.queue.drop(broken=broken)
        self.pending.clear()
        self._room.unpark_all()
        producer = self.queue.unregister()
        if producer is not None:
            producer.stopProducing()
