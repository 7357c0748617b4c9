"""The stop sequence both backends run: the graceful step, the hard one after
``kill_after``, a return only once the whole tree is gone, and the reaper
task around it.

`end_tree` and `reap` work on a `Stoppable` -- the Linux child
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
    from ._seam import RemoteHook

__all__ = ["StopSequence", "Stoppable", "end_tree", "process_state", "reap"]

# Polling a tree for live members: from 1 ms, doubling up to 50 ms.
_POLL_FIRST: Final = 0.001
_POLL_MOST: Final = 0.05


class Stoppable(Protocol):
    """A started child and its tree, as the stop sequence sees them."""

    pid: int | None
    reaped: trio.Event
    stopping: bool
    #: When the graceful step was taken (trio's clock), once it was.
    _term_sent_at: float | None

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
        """The reaper is done, whatever happened: release what it held."""

    async def wait_until_reaped(self) -> None:
        """Reap the child (only the reaper task calls this)."""


class StopSequence:
    """The seam's ``reap`` and ``stop`` of a `Stoppable` child, written once
    for both backends' children (a mixin with no state)."""

    __slots__ = ()

    async def reap(
        self: Stoppable,
        kill_after: float,
        on_reaped: Callable[[], None],
        ending: trio.Event,
        on_tree_gone: Callable[[], None],
    ) -> None:
        """The reaper task (`reap`).

        Raises:
          ChildUnkillable: a process outlived the hard step.

        Cancellation: the tree is ended and the child reaped before the
        cancellation propagates.
        """
        await reap(self, kill_after, on_reaped, ending, on_tree_gone)

    async def stop(self: Stoppable, kill_after: float) -> None:
        """End the child and its tree (`end_tree`), from any task but the
        reaper's: the reaper reaps, this waits for it."""
        await end_tree(self, kill_after, self.reaped.wait)


async def reap(
    child: Stoppable,
    kill_after: float,
    on_reaped: Callable[[], None],
    ending: trio.Event,
    on_tree_gone: Callable[[], None],
) -> None:
    """The reaper task: reap *child*, call *on_reaped*; once *ending* is set,
    end what is left of its tree; then call *on_tree_gone*.

    Raises:
      ChildUnkillable: a process outlived the hard step (see `end_tree`).

    Cancellation: the tree is ended and the child reaped before the
    cancellation propagates.
    """
    told = gone_told = False
    try:
        await child.wait_until_reaped()
        told = True
        on_reaped()
        if not ending.is_set() and child.tree_sealed:
            # Where a closed read end cannot be seen from the write end
            # (Windows), a sealed tree that is gone tells that the child's
            # input is no longer read: say so before the block ends.
            await _until_gone_or_set(child, ending)
            if child.tree_gone:
                gone_told = True
                on_tree_gone()
        if not ending.is_set():  # no extra scheduler pass when it is
            await ending.wait()
    finally:
        try:
            if not child.tree_gone:
                with trio.CancelScope(shield=True):
                    await end_tree(
                        child, kill_after, child.wait_until_reaped, reaper=True
                    )
            child.tree_ended()
            if not told:
                on_reaped()
        finally:
            child.release_tree()
            if not gone_told:
                on_tree_gone()


async def _until_gone_or_set(child: Stoppable, event: trio.Event) -> None:
    """Return once the reaped *child*'s tree is gone or *event* is set."""
    delay = _POLL_FIRST
    while child.alive() and not event.is_set():
        with trio.move_on_after(delay):
            await event.wait()
        delay = min(delay * 2, _POLL_MOST)


async def end_tree(
    child: Stoppable,
    kill_after: float,
    wait: Callable[[], Awaitable[None]],
    *,
    reaper: bool = False,
) -> None:
    """End *child* and its tree: the graceful step, the hard one after
    *kill_after* seconds; return once *wait* has seen the child reaped and
    nothing of its tree lives.

    Raises:
      ChildUnkillable: a process is still alive ``kill_grace`` seconds after
        the hard step. Called by the *reaper* task, which then ends, the
        child is left to a thread that reaps it once it dies.

    Cancellation: not shielded here; callers that must not be interrupted
    shield it.
    """
    if child.tree_gone:
        if not reaper:  # the reaper has waited already: no pass to spare
            await trio.lowlevel.checkpoint()
        return
    if reaper:
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
    stuck = child.pid
    if stuck is not None:
        if reaper:
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
