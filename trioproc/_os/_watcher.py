"""The exit watcher: one task per Trio run that waits for the exit of every
Linux child at once, so that a running child costs a registration, not a task.

Each child's pidfd goes into an epoll set of the watcher's own; the watcher
task waits on that set's fd through Trio and, when it is readable, calls the
callback of each child that has exited. The set exists only while a child is
watched: it is closed when the last one has exited, and the task then waits
for the next child without holding an fd.

The callbacks run in the watcher's task, which is a Trio system task: they
must not raise (the transport catches what its protocol raises and hands it
to the child's block).
"""

from __future__ import annotations

import contextlib
import select
from typing import Final, Protocol, final

import attrs
import trio

__all__ = ["Watched", "forget", "watch"]


class Watched(Protocol):
    """A child the watcher waits for."""

    def _exited(self) -> None:
        """Its pidfd is readable: it has exited (called once, not to raise)."""


@final
@attrs.define(eq=False)
class _Watcher:
    """The pidfds of one Trio run's children, and their callbacks."""

    _callbacks: dict[int, Watched] = attrs.field(factory=dict)
    _epoll: select.epoll | None = None
    #: Set when the first child of a busy period is watched.
    _wanted: trio.Event = attrs.field(factory=trio.Event)

    def watch(self, pidfd: int, exited: Watched) -> None:
        if self._epoll is None:
            self._epoll = select.epoll()
            self._wanted.set()
        self._epoll.register(pidfd, select.EPOLLIN)
        self._callbacks[pidfd] = exited

    def forget(self, pidfd: int) -> None:
        if self._callbacks.pop(pidfd, None) is None:
            return
        assert self._epoll is not None
        self._epoll.unregister(pidfd)
        if not self._callbacks:
            # The task may be waiting on the set: wake it, and it closes it.
            trio.lowlevel.notify_closing(self._epoll.fileno())

    async def run(self) -> None:
        try:
            while True:
                await self._wanted.wait()
                epoll = self._epoll
                assert epoll is not None
                # Closed: forget() left the set empty.
                with contextlib.suppress(trio.ClosedResourceError):
                    await trio.lowlevel.wait_readable(epoll.fileno())
                for pidfd, _ in epoll.poll(0):
                    exited = self._callbacks.pop(pidfd, None)
                    if exited is not None:
                        epoll.unregister(pidfd)
                        exited._exited()
                if not self._callbacks:
                    # Not waited on now, so Trio holds no registration of it.
                    self._epoll = None
                    self._wanted = trio.Event()
                    epoll.close()
        finally:
            if self._epoll is not None:
                self._epoll.close()


_WATCHER: Final[trio.lowlevel.RunVar[_Watcher]] = trio.lowlevel.RunVar(
    "trioproc exit watcher"
)


def _current() -> _Watcher:
    try:
        return _WATCHER.get()
    except LookupError:
        watcher = _Watcher()
        trio.lowlevel.spawn_system_task(watcher.run, name="trioproc exit watcher")
        _WATCHER.set(watcher)
        return watcher


def watch(pidfd: int, child: Watched) -> None:
    """Call *child*'s ``_exited`` (from the watcher's task) once *pidfd* is
    readable: it has exited. Once only: a child still to be reaped is
    watched again. (The child itself, not a callback: one object fewer.)"""
    _current().watch(pidfd, child)


def forget(pidfd: int) -> None:
    """Stop watching *pidfd* (before it is closed, or left to a thread)."""
    _current().forget(pidfd)
