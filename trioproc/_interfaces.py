"""The process contract as typing protocols.

Everything that drives a protocol (the real transport, the fake in
`trioproc.testing`) and every protocol (a `ProcessProtocol` subclass, or a
Twisted one) is checked against these shapes, not against a base class.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import signal

    from ._errors import ProcessEnded

__all__ = ["IProcessProtocol", "IProcessTransport", "IProducer", "IPushProducer"]


class IProducer(Protocol):
    """A pull producer: writes more each time ``resumeProducing`` is called."""

    def resumeProducing(self) -> None: ...

    def stopProducing(self) -> None: ...


class IPushProducer(IProducer, Protocol):
    """A streaming producer: writes until ``pauseProducing``, then waits for
    ``resumeProducing``."""

    def pauseProducing(self) -> None: ...


class IProcessTransport(Protocol):
    """What a protocol may call on its transport (Twisted's names)."""

    @property
    def pid(self) -> int | None: ...

    def write(self, data: bytes) -> None: ...

    def writeSequence(self, seq: Iterable[bytes]) -> None: ...

    def writeToChild(self, childFD: int, data: bytes) -> None: ...

    def closeChildFD(self, childFD: int) -> None: ...

    def closeStdin(self) -> None: ...

    def closeStdout(self) -> None: ...

    def closeStderr(self) -> None: ...

    def loseConnection(self) -> None: ...

    def signalProcess(self, signalID: str | int | signal.Signals) -> None: ...

    def getHost(self) -> Any: ...

    def getPeer(self) -> Any: ...

    def registerProducer(self, producer: Any, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...

    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...

    def stopProducing(self) -> None: ...


class IProcessProtocol(Protocol):
    """The callbacks a transport calls, all synchronous, in the contract's order."""

    def makeConnection(self, transport: Any) -> None: ...

    def childDataReceived(self, childFD: int, data: bytes) -> None: ...

    def childConnectionLost(self, childFD: int) -> None: ...

    def processExited(self, reason: ProcessEnded) -> None: ...

    def processEnded(self, reason: ProcessEnded) -> None: ...
