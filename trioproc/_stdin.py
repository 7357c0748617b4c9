"""`StdinStream`: the child's fd 0 as a `trio.abc.SendStream`.

It is a stream over a writer (an `InputEnd`): it shares the writer's queue with
``transport.write()``, and ``send_all`` waits while the queue is full, which is
real backpressure for async callers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import attrs
import trio

from ._util import PASS_CALL_MIN, PASS_EVERY, NoPublicConstructor, fail

if TYPE_CHECKING:
    from ._flow import InputEnd

__all__ = ["StdinStream"]


@final
@attrs.define(eq=False)
class StdinStream(trio.abc.SendStream, metaclass=NoPublicConstructor):
    """The child's fd 0 as a `trio.abc.SendStream` (``transport.stdin``).

    ``send_all`` returns once every byte is queued for the child, waiting
    while the queue holds its high-water mark. If it is cancelled, the bytes
    queued so far (`committed`) still reach the child in order, and the
    stream stays usable.
    """

    _writer: InputEnd
    committed: int = attrs.field(init=False, default=0)
    """Bytes of the last ``send_all`` that were queued (all, unless cancelled)."""
    _sending: bool = attrs.field(init=False, default=False)
    #: What `send_all` counted since its last schedule point (`PASS_EVERY`).
    _since_pass: int = attrs.field(init=False, default=0)

    def _unusable(self) -> Exception | None:
        queue = self._writer.queue
        if queue.broken:
            return trio.BrokenResourceError("the child closed its end of the pipe")
        if queue.closing:
            return trio.ClosedResourceError("stdin was closed")
        return None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Queue *data* for the child, waiting while the queue is full.

        A cancel point. A schedule point whenever it waits for room, and
        otherwise at least once per 16 calls or 1 MiB (`PASS_EVERY`), empty
        calls included.

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
                await fail(error)
            # The checkpoint first, as trio's own streams have it: a
            # cancelled call writes nothing.
            if self._since_pass >= PASS_EVERY:
                self._since_pass = 0
                await trio.lowlevel.checkpoint()
            else:
                await trio.lowlevel.checkpoint_if_cancelled()
            view = memoryview(data)
            if view.ndim != 1 or view.format != "B":
                view = view.cast("B")  # bytes, whatever the caller's format
            copy = not isinstance(data, bytes)  # the caller may reuse its buffer
            total = len(view)
            # Each step takes what the pipe accepts at once and what the
            # queue has room for, so `committed` is exact if this is
            # cancelled; a checkpoint when the queue is full (to wait for
            # room) or once a MiB (to let others run).
            writer = self._writer
            taken = writer.offer(view, copy=copy)
            if taken == total:  # the usual case: all of it at once (or b"")
                self.committed = total
                self._since_pass += max(total, PASS_CALL_MIN)
                return
            queue = writer.queue
            since_yield = 0
            while True:
                # The write itself may find the child gone.
                if (error := self._unusable()) is not None:
                    await fail(error)
                self.committed += taken
                since_yield += taken
                if self.committed == total:
                    return
                if queue.buffered >= queue.high_water or since_yield >= 1 << 20:
                    since_yield = self._since_pass = 0
                    await writer.wait_for_room()
                if (error := self._unusable()) is not None:
                    await fail(error)
                taken = writer.offer(view[self.committed :], copy=copy)
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        """Return once the queue has room (or stdin is closed or broken)."""
        if self._sending:
            raise trio.BusyResourceError("another task is using stdin for send_all")
        if (error := self._unusable()) is not None:
            await fail(error)
        await self._writer.wait_for_room()

    async def aclose(self) -> None:
        """Close stdin once the queued bytes are written (``closeStdin()``)."""
        self._writer.close()
        await trio.lowlevel.checkpoint()
