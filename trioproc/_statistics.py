"""Snapshots of a transport's flow state, for monitoring and tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal, Protocol, final

import attrs

__all__ = ["FDStatistics", "TransportStatistics", "snapshot"]


@final
@attrs.frozen
class FDStatistics:
    """One child fd at the moment `ProcessTransport.statistics` was called.

    Attributes:
      fd: the fd number in the child.
      direction: ``"w"`` (the parent writes) or ``"r"`` (the child writes).
      buffered: for ``"w"``, bytes queued but not yet in the pipe; for ``"r"``,
        bytes read but not yet received from the stream (stream mode only).
      paused: for ``"w"``, the queue holds its high-water mark or more, so
        ``send_all`` waits (a streaming producer is paused once the queue
        passes the mark); for ``"r"``, reading is paused (``pauseProducing``,
        or a stream buffer nobody empties).
      closed: the parent's end is closed (or will close once flushed).
    """

    fd: int
    direction: Literal["r", "w"]
    buffered: int
    paused: bool
    closed: bool


@final
@attrs.frozen
class TransportStatistics:
    """A transport's flow state at one moment.

    Attributes:
      fds: per child fd with a parent end, its `FDStatistics`.
      producer: ``"streaming"``, ``"pull"``, or ``None`` when none is
        registered.
      producer_paused: whether a streaming producer is paused now.
      high_water, low_water: the marks of the stdin queue, in bytes.
    """

    fds: Mapping[int, FDStatistics]
    producer: Literal["streaming", "pull"] | None
    producer_paused: bool
    high_water: int
    low_water: int


class _Queue(Protocol):
    """What a snapshot reads of a write end's queue (the real writer's, or
    the fake's)."""

    @property
    def buffered(self) -> int: ...
    @property
    def high_water(self) -> int: ...
    @property
    def low_water(self) -> int: ...
    @property
    def producer(self) -> Any: ...
    @property
    def streaming(self) -> bool: ...
    @property
    def producer_paused(self) -> bool: ...
    @property
    def done(self) -> bool: ...


def snapshot(
    writers: Mapping[int, _Queue], readers: Iterable[FDStatistics]
) -> TransportStatistics:
    """The statistics of a transport with these write ends and read ends (a
    read end that is also a write end, a terminal, is reported as written to)."""
    fds = {
        fd: FDStatistics(
            fd, "w", queue.buffered, queue.buffered >= queue.high_water, queue.done
        )
        for fd, queue in writers.items()
    }
    for reader in readers:
        fds.setdefault(reader.fd, reader)
    stdin = writers.get(0)
    producer: Literal["streaming", "pull"] | None = None
    if stdin is not None and stdin.producer is not None:
        producer = "streaming" if stdin.streaming else "pull"
    return TransportStatistics(
        fds=MappingProxyType(fds),
        producer=producer,
        producer_paused=stdin is not None and stdin.producer_paused,
        high_water=stdin.high_water if stdin is not None else 0,
        low_water=stdin.low_water if stdin is not None else 0,
    )
