"""`RecordingProtocol`: a protocol that writes down what it hears."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from .._errors import ProcessEnded
from .._protocol import ProcessProtocol

__all__ = ["RecordingProtocol"]


class RecordingProtocol(ProcessProtocol):
    """A protocol that records every callback, in order, for tests.

    ``events`` holds tuples: ``("connectionMade",)``, ``("data", fd)`` (once
    per run of data on one fd), ``("lost", fd)``, ``("exited", reason type
    name, exitCode, signal)`` and ``("ended", ...)`` alike; ``data[fd]`` the
    bytes received; ``pids_at`` the transport's pid at ``makeConnection`` and
    ``processExited``. `wait_for` and `wait_for_output` wait on it.
    """

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.data: dict[int, bytearray] = {}
        self.ended = trio.Event()
        self.exited = trio.Event()
        self.pids_at: dict[str, int | None] = {}
        self._news = trio.Event()

    def makeConnection(self, transport: Any) -> None:
        self.pids_at["makeConnection"] = transport.pid
        super().makeConnection(transport)

    def connectionMade(self) -> None:
        self.events.append(("connectionMade",))

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self.data.setdefault(childFD, bytearray()).extend(data)
        if not self.events or self.events[-1] != ("data", childFD):
            self.events.append(("data", childFD))
        self._tell()
        super().childDataReceived(childFD, data)

    def childConnectionLost(self, childFD: int) -> None:
        self.events.append(("lost", childFD))
        self._tell()

    def processExited(self, reason: ProcessEnded) -> None:
        assert self.transport is not None
        self.pids_at["processExited"] = self.transport.pid
        self.events.append(
            ("exited", type(reason).__name__, reason.exitCode, reason.signal)
        )
        self.exited.set()

    def processEnded(self, reason: ProcessEnded) -> None:
        self.events.append(
            ("ended", type(reason).__name__, reason.exitCode, reason.signal)
        )
        self.ended.set()

    def _tell(self) -> None:
        self._news.set()
        self._news = trio.Event()

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Return once *condition* holds; it is checked after each callback."""
        while not condition():
            await self._news.wait()

    async def wait_for_output(self, needle: bytes, fd: int = 1) -> None:
        """Return once the child wrote *needle* on *fd*."""
        await self.wait_for(lambda: needle in self.out(fd))

    def out(self, fd: int = 1) -> bytes:
        return bytes(self.data.get(fd, b""))

    def kinds(self) -> list[str]:
        return [event[0] for event in self.events]
