"""The portable pump: one task per child output, read through a Trio stream.

`StreamReader` is the portable backend's `trioproc._os._seam.ChildReader`: the
same holds, ``close`` and ``finish`` as the Linux pump
(`trioproc._os._reader.Reader`), shared in `trioproc._os._holds.PumpState`,
on any `trio.abc.ReceiveStream` (the pipes `trio.lowlevel.open_process`
makes: fd streams on POSIX, overlapped named pipes on Windows). Every read
is one ``receive_some`` (`StreamReader._receive`), so a caller-driven read
can be added beside the pump.

The pump is the only task that reads or closes the stream. Others steer it
with `pause`, `resume`, `close` and `finish`, which only set state and wake
it: `close` and `finish` cancel a read in progress (a Trio stream's cancelled
read loses no data), so there is never a read racing a close; a read in
progress when `pause` comes is left to finish, and what it returns is held
back until the pump is resumed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, final

import attrs
import trio

from ._holds import PumpState

__all__ = ["StreamReader"]

_READ_SIZE: Final = 1 << 16
# A pump that keeps finding data yields once per this many bytes.
_YIELD_EVERY: Final = 1 << 20
# Once the child's tree is gone, at most this many reads of what it left, each
# given this long to find data: a process that escaped the tree and keeps the
# pipe open (or keeps writing) cannot keep the block open. A portable stream
# has no "read only what is there now", so an empty pipe costs one wait.
_DRAIN_READS: Final = 64
_DRAIN_WAIT: Final = 0.05


@final
@attrs.define(eq=False)
class StreamReader(PumpState):
    """The parent's read end of one child output, and the state of its pump.

    Attributes:
      child_fd: the fd number in the child.
      stream: the parent's end, until the pump closes it.
      paused: whether a hold keeps the pump from reading (the protocol's
        ``pauseProducing``, a full stream buffer, or both).
      closed: the parent's end is closed.
    """

    stream: trio.abc.ReceiveStream
    _closed: bool = attrs.field(init=False, default=False)
    #: The scope of the read in progress, which `close` and `finish` cancel.
    _reading: trio.CancelScope | None = attrs.field(init=False, default=None)
    #: Data a read in progress returned after `pause`, delivered first once
    #: resumed (so a paused pump holds at most one read's worth).
    _early: bytes = attrs.field(init=False, default=b"")

    @property
    def closed(self) -> bool:
        """Whether the parent's end is closed."""
        return self._closed

    def _wake(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
        self._resumed.set()

    async def _pump(self, deliver: Callable[[bytes], None]) -> None:
        since_yield = 0
        while not self._closing:
            if self._finishing:
                await self._drain(deliver)
                return
            if self.paused:
                await self._resumed.wait()
                continue
            data = self._early
            if data:
                self._early = b""
            else:
                received = await self._receive()
                if received is None:
                    continue  # woken by close() or finish()
                if not received:
                    return
                data = received
                if self.paused:
                    # A read in progress when pause() came (left to run: a
                    # cancelled one and a new one cost more than the one
                    # read): held back until resumed.
                    self._early = data
                    continue
            deliver(data)
            since_yield += len(data)
            if since_yield >= _YIELD_EVERY:
                # Trio's streams checkpoint on every read already; this keeps
                # one fast child from starving the others of the same loop.
                since_yield = 0
                await trio.lowlevel.checkpoint()

    async def _receive(self, wait: float = float("inf")) -> bytes | None:
        """One read of at most 64 KiB: ``b""`` at end of file, ``None`` when
        woken (or when nothing came within *wait* seconds)."""
        with trio.CancelScope(deadline=trio.current_time() + wait) as self._reading:
            try:
                data = await self.stream.receive_some(_READ_SIZE)
                return data if type(data) is bytes else bytes(data)
            except trio.BrokenResourceError:
                return b""  # Windows: the child's end of the pipe closed
            finally:
                self._reading = None
        return None

    async def _drain(self, deliver: Callable[[bytes], None]) -> None:
        """Deliver what is in the pipe now, without waiting long for more."""
        if self._early:
            deliver(self._early)
            self._early = b""
        for _ in range(_DRAIN_READS):
            if self._closing:
                return
            data = await self._receive(_DRAIN_WAIT)
            if not data:
                return
            deliver(data)

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            # Only this task ever reads the stream, and it is not reading now:
            # a synchronous close is safe (both of Trio's pipe streams have
            # one; `aclose` would checkpoint in a finally).
            self.stream.close()  # type: ignore[attr-defined]  # FdStream, PipeReceiveStream
