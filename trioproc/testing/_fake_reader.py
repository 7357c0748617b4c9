"""`FakeReader`: the holds on reading the fake child's output, and what the
child wrote while a hold was on.

The fake's counterpart of the real readers' holds (`trioproc._os._holds`):
the protocol's ``pauseProducing`` holds every output fd, a full stream buffer
holds its own. What the child writes on a held fd waits here, per fd and in
order, as a pipe would hold it, and goes to the protocol once no hold is left.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, final

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._os._holds import Hold

__all__ = ["FakeReader"]


@final
@attrs.define(eq=False)
class FakeReader:
    """The holds on reading the fake's output fds, and the output they hold.

    Attributes:
      changed: set when holds were lifted and held output went out, so that
        a task waiting for the parent to read looks again; a fresh event
        replaces it each time.
    """

    #: Gives one chunk to the protocol (``childDataReceived``).
    _deliver: Callable[[int, bytes], None]
    _protocol_paused: bool = attrs.field(init=False, default=False)
    _buffer_full: set[int] = attrs.field(init=False, factory=set)
    _held: deque[tuple[int, bytes]] = attrs.field(init=False, factory=deque)
    changed: trio.Event = attrs.field(init=False, factory=trio.Event)

    def paused(self, fd: int) -> bool:
        """Whether reading *fd* is held now."""
        return self._protocol_paused or fd in self._buffer_full

    def receive(self, fd: int, data: bytes) -> None:
        """The child wrote *data* on *fd*: deliver it, or hold it behind a
        hold or behind what *fd* holds already (each fd has its own pump)."""
        if self.paused(fd) or any(other == fd for other, _ in self._held):
            self._held.append((fd, data))
        else:
            self._deliver(fd, data)

    def hold(self, fd: int, hold: Hold) -> None:
        """Put on a hold: the protocol's (every fd) or *fd*'s full buffer."""
        if hold == "protocol":
            self._protocol_paused = True
        else:
            self._buffer_full.add(fd)

    def lift(self, fd: int, hold: Hold) -> bool:
        """Lift a hold; whether one was on (then `release` has work)."""
        if hold == "protocol" and self._protocol_paused:
            self._protocol_paused = False
            return True
        if hold == "buffer" and fd in self._buffer_full:
            self._buffer_full.discard(fd)
            return True
        return False

    def lift_all(self) -> None:
        """Lift every hold (the block ends: the child may run to its end)."""
        self._protocol_paused = False
        self._buffer_full.clear()

    def drop(self, fd: int) -> None:
        """Forget what *fd* holds: the parent closed it."""
        self._held = deque(item for item in self._held if item[0] != fd)

    def release(self) -> None:
        """Deliver the held output that no hold keeps any more, in order."""
        kept: deque[tuple[int, bytes]] = deque()
        while self._held:
            fd, data = self._held.popleft()
            if self.paused(fd) or any(other == fd for other, _ in kept):
                kept.append((fd, data))
            else:
                self._deliver(fd, data)
        self._held = kept
        changed, self.changed = self.changed, trio.Event()
        changed.set()
