"""Snapshots of a transport's flow state, for monitoring and tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, final

import attrs

__all__ = ["FDStatistics", "TransportStatistics"]


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
