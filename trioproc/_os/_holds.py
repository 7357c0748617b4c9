"""What both backends' pumps share: the holds on a child output's pump, its
``close`` and ``finish`` requests, and its drain when the block is cancelled.

`PumpState` is the bookkeeping, with the task's outer shape (`PumpState.pump`);
a backend's pump (`trioproc._os._reader.Reader` on an fd,
`trioproc._os._stream_reader.StreamReader` on a Trio stream) adds only its
I/O: `PumpState._pump` (read and deliver until told to stop), `PumpState._wake`
(interrupt a wait) and `PumpState._close` (close its end).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeAlias

import attrs
import trio

__all__ = ["Hold", "PumpState"]

#: Who holds a pump: the protocol (``pauseProducing``) or a full stream buffer.
Hold: TypeAlias = Literal["protocol", "buffer"]


@attrs.define(eq=False)
class PumpState:
    """The parent's read end of one child output and the state of its pump;
    a backend's subclass does the I/O.

    Attributes:
      child_fd: the fd number in the child.
      paused: whether a hold keeps the pump from reading (the protocol's
        ``pauseProducing``, a full stream buffer, or both; the child blocks
        on a full pipe); it reads again only once every hold is released.
    """

    child_fd: int
    _paused: bool = attrs.field(init=False, default=False)
    _holds: set[Hold] = attrs.field(init=False, factory=set)
    _resumed: trio.Event = attrs.field(init=False, factory=trio.Event)
    _closing: bool = attrs.field(init=False, default=False)
    _finishing: bool = attrs.field(init=False, default=False)
    _draining: bool = attrs.field(init=False, default=False)

    @property
    def paused(self) -> bool:
        """Whether nothing reads now (see the class's attributes)."""
        return self._paused

    @property
    def closed(self) -> bool:
        """Whether the parent's end is closed."""
        raise NotImplementedError

    def pause(self, hold: Hold = "protocol") -> None:
        """Stop reading until *hold* is released by `resume` (the child blocks
        when the pipe is full)."""
        if self._draining:  # the block is ending: nothing may hold the pump
            return
        self._holds.add(hold)
        if not self._paused:
            self._paused = True
            self._resumed = trio.Event()

    def resume(self, hold: Hold | None = "protocol") -> None:
        """Release *hold* (``None``: every hold); read again if none is left."""
        if hold is None:
            self._holds.clear()
        else:
            self._holds.discard(hold)
        if self._paused and not self._holds:
            self._paused = False
            self._resumed.set()

    def close(self) -> None:
        """Ask the pump to stop now and close its end, discarding unread
        output."""
        if not self.closed and not self._closing:
            self._closing = True
            self._wake()

    def finish(self) -> None:
        """The child's whole tree is gone: deliver what the pipe holds now,
        whatever the holds, and stop, rather than wait for an end of file
        that a process which escaped the tree could keep back for ever."""
        if not self.closed and not self._finishing:
            self._finishing = True
            self._wake()

    async def pump(
        self, deliver: Callable[[bytes], None], lost: Callable[[], None]
    ) -> None:
        """Deliver the child's output until end of file, `close` or `finish`,
        then call *lost*.

        Cancellation: the block is ending, and the child is being stopped
        (by the block's end, which bounds it). A child that logs while it shuts
        down must not block on a full pipe, so the pump goes on reading and
        delivering, shielded, with every hold released, until end of file or
        `finish`; then the cancellation propagates.
        """
        try:
            try:
                await self._pump(deliver)
            except trio.Cancelled:
                with trio.CancelScope(shield=True):
                    self._draining = True
                    self.resume(None)
                    self.push()
                    await self._pump(deliver)
                raise
        finally:
            self._close()
            lost()

    # Stream mode's reads in the reader's task: a backend that has them
    # overrides these five; here the pump always delivers.

    def pull(self) -> bool:
        """Let the reader's task read, through `read_some`, rather than the
        pump deliver; whether this backend can (here: no, the pump delivers
        in stream mode too)."""
        return False

    def push(self) -> None:
        """The block is ending, nobody will pull: the pump delivers again."""

    def fill(self) -> None:
        """While `pull` holds: deliver what the fd holds now, bounded, with
        no wait."""

    def read_now(self, max_bytes: int) -> bytes | None:
        """While `pull` holds, a read that does not wait."""
        return None

    async def read_some(self, max_bytes: int, schedule: bool) -> bytes | None:
        """One read in the caller's task while `pull` holds; ``None`` when
        the pump delivers instead (the caller waits for its delivery)."""
        return None

    # The backend's I/O.

    async def _pump(self, deliver: Callable[[bytes], None]) -> None:
        """Read and deliver until end of file, `close` or `finish`."""
        raise NotImplementedError

    def _wake(self) -> None:
        """Wake the pump from whatever it waits on (it checks why)."""
        raise NotImplementedError

    def _close(self) -> None:
        """Close the parent's end (the pump is done with it)."""
        raise NotImplementedError
