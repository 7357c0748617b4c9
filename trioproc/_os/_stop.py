"""The stop sequence both backends run: the graceful step, the hard one after
``kill_after``, a return only once the whole tree is gone, and the end of a
child's block around it.

`end_tree` and `finish` work on a `Stoppable` -- the Linux child
(`trioproc._os._reaper.Child`) or the portable one
(`trioproc._os._portable_child.PortableChild`) -- which says what its tree is
and how each step is taken.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, Protocol

import trio

from .._errors import ChildUnkillable

if TYPE_CHECKING:
    from ._seam import ExitListener, RemoteHook

__all__ = [
    "StopSequence",
    "Stoppable",
    "end_tree",
    "finish",
    "process_state",
    "until_gone_or_ending",
]

# Polling a tree for live members: from 1 ms, doubling up to 50 ms.
_POLL_FIRST: Final = 0.001
_POLL_MOST: Final = 0.05


class Stoppable(Protocol):
    """A started child and its tree, as the stop sequence sees them."""

    pid: int | None
    stopping: bool
    #: When the graceful step was taken (trio's clock), once it was.
    _term_sent_at: float | None

    @property
    def reaped(self) -> trio.Event:
        """Set once the child has been reaped."""

    @property
    def remote(self) -> RemoteHook | None:
        """A remote child's hook, which runs the remote stop sequence first."""

    @property
    def tree_gone(self) -> bool:
        """The child is reaped and nothing of its tree is alive."""

    @property
    def tree_sealed(self) -> bool:
        """No process can leave the tree, so once it is gone nothing can
        hold the child's pipes (see `reap`)."""

    @property
    def kill_grace(self) -> float:
        """How long to wait after the hard step before giving up."""

    def alive(self) -> bool:
        """Whether a live process of the tree other than the child is left."""

    def graceful_step(self) -> None:
        """Ask the whole tree to exit (SIGTERM and SIGCONT on POSIX)."""

    async def hard_step(self) -> None:
        """End the whole tree by force (SIGKILL on POSIX)."""

    def stuck_member(self) -> int:
        """A process of the tree still alive, the child being reaped."""

    def reap_in_background(self) -> None:
        """Leave reaping to a thread (the child is stuck in the kernel)."""

    def tree_ended(self) -> None:
        """The stop sequence saw the tree gone: remove what held it."""

    def release_tree(self) -> None:
        """The block is done with the tree, whatever happened: release what
        it held."""


class StopSequence:
    """The seam's ``finish`` and ``stop`` of a `Stoppable` child, written
    once for both backends' children (a mixin with no state)."""

    __slots__ = ()

    async def finish(self: Stoppable, kill_after: float, *, in_order: bool) -> None:
        """The block's end of the child (`finish`).

        Raises:
          ChildUnkillable: a process outlived the hard step.

        Cancellation: of the wait for an exit in order only; the tree is then
        ended before the cancellation propagates.
        """
        await finish(self, kill_after, in_order=in_order)

    async def stop(self: Stoppable, kill_after: float) -> None:
        """End the child and its tree (`end_tree`), from any task while the
        block runs; the child's watcher reaps it, this waits for that."""
        await end_tree(self, kill_after, self.reaped.wait)


async def finish(child: Stoppable, kill_after: float, *, in_order: bool) -> None:
    """The end of *child*'s block: *in_order*, wait for the child to exit by
    itself; then end what is left of its tree, and release what held it.

    Raises:
      ChildUnkillable: a process outlived the hard step (see `end_tree`).

    Cancellation: of the wait for an exit in order only (the block was
    cancelled from outside meanwhile); the tree is then ended, shielded,
    before the cancellation propagates.
    """
    try:
        if in_order and not child.reaped.is_set():
            await child.reaped.wait()
    finally:
        try:
            if not child.tree_gone:
                with trio.CancelScope(shield=True):
                    await end_tree(child, kill_after, child.reaped.wait, last=True)
            child.tree_ended()
        finally:
            child.release_tree()


async def until_gone_or_ending(child: Stoppable, listener: ExitListener) -> None:
    """Return once the reaped *child*'s tree is gone or its block is ending,
    as *listener* says (polled: no platform tells when a tree empties)."""
    delay = _POLL_FIRST
    while child.alive() and not listener._block_ending:
        await trio.sleep(delay)
        delay = min(delay * 2, _POLL_MOST)


async def end_tree(
    child: Stoppable,
    kill_after: float,
    wait: Callable[[], Awaitable[None]],
    *,
    last: bool = False,
) -> None:
    """End *child* and its tree: the graceful step, the hard one after
    *kill_after* seconds; return once *wait* has seen the child reaped and
    nothing of its tree lives.

    Raises:
      ChildUnkillable: a process is still alive ``kill_grace`` seconds after
        the hard step. As the block's *last* step, the child is then left to
        a thread that reaps it once it dies.

    Cancellation: not shielded here; callers that must not be interrupted
    shield it.
    """
    if child.tree_gone:
        if not last:  # the block's end has waited already: no pass to spare
            await trio.lowlevel.checkpoint()
        return
    if last:
        child.stopping = True
    grace = child.kill_grace
    if child.remote is not None and await child.remote.end(kill_after, grace, wait):
        return
    now = trio.current_time()
    if child._term_sent_at is None:
        child._term_sent_at = now
        child.graceful_step()
    # A second stop (a stop() cut short, then the block's) neither takes the
    # graceful step again -- it would interrupt a graceful exit -- nor
    # restarts the grace.
    with trio.move_on_after(max(kill_after - (now - child._term_sent_at), 0)):
        await _wait_tree_gone(child, wait)
        return
    await child.hard_step()
    with trio.move_on_after(grace):
        await _wait_tree_gone(child, wait)
        return
    if child.tree_gone:  # it went just as the grace ran out
        return
    stuck = child.pid
    if stuck is not None:
        if last:
            child.reap_in_background()
    else:
        stuck = child.stuck_member()
    raise ChildUnkillable(stuck, process_state(stuck), grace)


async def _wait_tree_gone(
    child: Stoppable, wait: Callable[[], Awaitable[None]]
) -> None:
    await wait()
    delay = _POLL_FIRST
    while child.alive():
        await trio.sleep(delay)
        delay = min(delay * 2, _POLL_MOST)


def process_state(pid: int) -> str:
    """*pid*'s state from ``/proc`` (``"D (disk sleep)"``), or ``"?"``."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("State:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"
