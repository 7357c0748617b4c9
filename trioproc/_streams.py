"""Trio streams over a child's fds, and stream mode.

`StdinStream` (`trioproc._stdin`) is fd 0 as a `trio.abc.SendStream`;
`OutputStream` (`trioproc._output`) is an output fd as a
`trio.abc.ReceiveStream`. Stream mode (``spawn(argv, protocol=None)``) is
`StreamProtocol`: an ordinary protocol whose callbacks fill one bounded
`OutputStream` per read fd, on a transport that is a `StreamHost`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, final

from ._expect import (
    MAX_LINE as MAX_LINE,
    LineTooLong as LineTooLong,
    UnexpectedEOF as UnexpectedEOF,
)
from ._output import (
    OUTPUT_BUFFER as OUTPUT_BUFFER,
    OutputStream as OutputStream,
    Puller as Puller,
)
from ._stdin import StdinStream as StdinStream

if TYPE_CHECKING:
    from ._errors import ProcessEnded

__all__ = [
    "MAX_LINE",
    "OUTPUT_BUFFER",
    "LineTooLong",
    "OutputStream",
    "Puller",
    "StdinStream",
    "StreamHost",
    "StreamProtocol",
    "UnexpectedEOF",
]


class StreamHost(Protocol):
    """What a transport offers stream mode: the real transport and the fake
    both do, through `trioproc._contract.TransportBase`."""

    def _output_fds(self) -> list[int]:
        """The child fds the parent reads."""

    def _pause_reading(self, fd: int) -> None:
        """Stop reading *fd*: its stream's buffer is full."""

    def _resume_reading(self, fd: int) -> None:
        """Read *fd* again: its stream's buffer has room."""

    def _puller(self, fd: int) -> Puller | None:
        """*fd* as its reader's task reads it (``None``: the host delivers)."""

    def _attach_streams(self, streams: dict[int, OutputStream]) -> None:
        """Keep *streams* for the transport's ``stdout`` and ``stderr``."""

    def closeChildFD(self, childFD: int) -> None:
        """Close the parent's end of *childFD*, discarding unread output."""


@final
class StreamProtocol:
    """The protocol of stream mode: output goes to bounded `OutputStream` s."""

    __slots__ = ("streams",)

    def __init__(self) -> None:
        self.streams: dict[int, OutputStream] = {}

    def makeConnection(self, transport: Any) -> None:
        # Stream mode runs on a transport that hosts it (the real one, the
        # fake): a StreamHost.
        host: StreamHost = transport
        for fd in host._output_fds():
            self.streams[fd] = OutputStream._create(host, fd)
        host._attach_streams(self.streams)

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
