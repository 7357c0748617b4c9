"""Signals to the processes a listing names, each pinned by a pidfd so that
none reaches a stranger that reused a pid.

A pid read from a listing (a cgroup's ``cgroup.procs``) may name another
process by the time it is signalled: the listed one exited, was reaped, and
its pid was given to a newcomer. A pidfd taken *before* the listing is read
again names the process that second listing saw, or a dead one -- so only
pids listed both times are signalled, through their pidfd.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from typing import Final

__all__ = ["signal_listed"]

#: pidfds held open at once while signalling (bounds the fds in use).
_BATCH: Final = 256


def signal_listed(listing: Callable[[], list[int]], signum: int) -> int:
    """Send *signum* to every process *listing* names, listed twice around
    taking its pidfd; return how many got it.

    A process forked meanwhile may be missed. Where pidfds do not exist
    (before Linux 5.3, some sandboxes) a pid still listed is signalled by
    pid, the only way left.
    """
    sent = 0
    for batch in _batches(listing()):
        pidfds: dict[int, int] = {}
        try:
            for pid in batch:
                try:
                    pidfds[pid] = os.pidfd_open(pid)
                except ProcessLookupError:  # exited since the listing
                    continue
                except OSError:  # pragma: no cover - before 5.3, sandboxes
                    if pid in listing():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signum)
                            sent += 1
                    continue
            listed = set(listing())
            for pid, pidfd in pidfds.items():
                if pid in listed:
                    with contextlib.suppress(ProcessLookupError):
                        signal.pidfd_send_signal(pidfd, signum)
                        sent += 1
        finally:
            for pidfd in pidfds.values():
                os.close(pidfd)
    return sent


def _batches(pids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(pids), _BATCH):
        yield pids[start : start + _BATCH]
