"""`ProcessProtocol`: the base class for protocols, with Twisted's defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._errors import ProcessEnded
    from ._interfaces import IProcessTransport

__all__ = ["ProcessProtocol"]


class ProcessProtocol:
    """Receives a child's output and the news of its end.

    Subclass it and override what you need; every callback is synchronous and
    does nothing by default. ``childDataReceived`` and ``childConnectionLost``
    dispatch fds 0, 1 and 2 to the named callbacks, as Twisted's does, so a
    protocol written for Twisted's ``ProcessProtocol`` runs unchanged.

    Order: `makeConnection` first; data in the order each fd produced it;
    `childConnectionLost` once per fd; `processExited` when the child is
    reaped; `processEnded` exactly once, last. An exception raised by a
    callback stops the child and leaves the ``async with spawn(...)`` block.
    """

    transport: IProcessTransport | None = None
    connected: bool = False

    def makeConnection(self, transport: Any) -> None:
        """Remember *transport* and call `connectionMade`."""
        self.connected = True
        self.transport = transport
        self.connectionMade()

    def connectionMade(self) -> None:
        """The child has started; ``self.transport`` is ready to use."""

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        """*data* arrived on *childFD*; fds 1 and 2 go to the named callbacks."""
        if childFD == 1:
            self.outReceived(data)
        elif childFD == 2:
            self.errReceived(data)

    def outReceived(self, data: bytes) -> None:
        """*data* arrived on the child's stdout."""

    def errReceived(self, data: bytes) -> None:
        """*data* arrived on the child's stderr."""

    def childConnectionLost(self, childFD: int) -> None:
        """*childFD* is closed for good; fds 0, 1 and 2 go to the named callbacks."""
        if childFD == 0:
            self.inConnectionLost()
        elif childFD == 1:
            self.outConnectionLost()
        elif childFD == 2:
            self.errConnectionLost()

    def inConnectionLost(self) -> None:
        """The child's stdin is closed (by the parent, or by the child)."""

    def outConnectionLost(self) -> None:
        """The child's stdout reached end of file or was closed by the parent."""

    def errConnectionLost(self) -> None:
        """The child's stderr reached end of file or was closed by the parent."""

    def processExited(self, reason: ProcessEnded) -> None:
        """The child was reaped; its fds may still be open (a grandchild)."""

    def processEnded(self, reason: ProcessEnded) -> None:
        """The child was reaped and every fd is closed: the last callback."""
