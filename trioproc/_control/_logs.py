"""Recent output lines of each process, in bounded ring buffers, for
``trioproc ctl logs`` (and its followers).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Final, final

import trio

#: Each process's ring buffer of recent output lines, and their longest.
LOG_LINES: Final = 1000
LOG_LINE_MAX: Final = 4096


@final
class Logs:
    """Recent output lines of each process, bounded, with followers."""

    def __init__(self) -> None:
        self.lines: dict[str, deque[tuple[int, int, int, str]]] = {}
        self.counts: dict[str, int] = {}
        self.total = 0
        self.news = trio.Event()

    def add(self, name: str, fd: int, line: bytes) -> None:
        text = line[:LOG_LINE_MAX].decode(errors="replace")
        ring = self.lines.setdefault(name, deque(maxlen=LOG_LINES))
        self.counts[name] = count = self.counts.get(name, 0) + 1
        self.total += 1
        ring.append((self.total, count, fd, text))
        self.news.set()
        self.news = trio.Event()

    def since(
        self, names: Sequence[str], cursors: dict[str, int]
    ) -> tuple[list[tuple[int, str, int, str]], dict[str, int]]:
        """Lines of *names* after *cursors* (per-process counts), in the
        order they came, and how many of each were lost meanwhile."""
        found: list[tuple[int, str, int, str]] = []
        lost: dict[str, int] = {}
        for name in names:
            ring = self.lines.get(name, deque())
            cursor = cursors.get(name, 0)
            if ring and ring[0][1] > cursor + 1:
                lost[name] = ring[0][1] - cursor - 1
            for total, count, fd, text in ring:
                if count > cursor:
                    found.append((total, name, fd, text))
            cursors[name] = self.counts.get(name, cursor)
        found.sort()
        return found, lost
