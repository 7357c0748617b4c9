"""A child of the portable backend: its exit, its signals, the end of its tree.

`PortableChild` is the portable backend's `trioproc._os._seam.ChildProcess`.
A system task of the run (not a task of the child's block) waits for the
exit with `trio.Process.wait` -- a pidfd or kqueue on POSIX,
``WaitForSingleObject`` on Windows, as Trio does it -- and everybody else
waits on the `reaped` event, so any number of concurrent or cancelled
``wait()`` calls see the same exit. The stop sequence and the block's end
are the Linux backend's (`trioproc._os._stop`): the graceful step, the hard
one after ``kill_after``, and a return only once the whole tree is gone; what
"the tree" is and how its steps are taken is the platform's
(`trioproc._os._platform.ProcessTree`).
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, final

import attrs
import trio

from .._errors import ProcessExitedAlready
from . import _reaper, _stop

if TYPE_CHECKING:
    from ._platform import ProcessTree
    from ._seam import ExitListener, RemoteHook

__all__ = ["PortableChild", "wait_status"]


def wait_status(returncode: int) -> int:
    """The raw wait status for a `subprocess` return code (``-signum`` after
    a signal; the core-dump flag is lost). On Windows, ``code << 8``, which
    `os.waitstatus_to_exitcode` turns back into the code."""
    return -returncode if returncode < 0 else returncode << 8


@final
@attrs.define(eq=False)
class PortableChild(_stop.StopSequence):
    """A started child until it is reaped, and its tree.

    Attributes:
      pid: the child's pid until it is reaped, then ``None``.
      status: the raw wait status once reaped (`wait_status`).
      returncode: the exit code, ``-signum`` after a signal, ``None`` before.
      reaped: set once the child has been reaped.
      stopping: the block itself is ending the child's tree.
    """

    _process: trio.Process
    _tree: ProcessTree
    pid: int | None = attrs.field(init=False)
    status: int | None = attrs.field(init=False, default=None)
    returncode: int | None = attrs.field(init=False, default=None)
    reaped: trio.Event = attrs.field(init=False, factory=trio.Event)
    stopping: bool = attrs.field(init=False, default=False)
    #: When the graceful step was taken (trio's clock), once it was.
    _term_sent_at: float | None = attrs.field(init=False, default=None)
    #: The block gave the child up to `reap_in_background`'s thread.
    _given_up: bool = attrs.field(init=False, default=False)
    #: The scope of the task that waits for the exit.
    _waiting: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)

    def __attrs_post_init__(self) -> None:
        self.pid = self._process.pid

    @property
    def remote(self) -> RemoteHook | None:
        """Remote children run on the Linux backend only."""
        return None

    def send_signal(
        self, signum: int, *, group: bool = False, foreground_of: int | None = None
    ) -> None:
        """Send *signum* to the child (with *group*, to its tree).

        Raises:
          ProcessExitedAlready: the child has been reaped.
        """
        if self.pid is None:
            raise ProcessExitedAlready(f"the child has exited already ({self.status})")
        self._tree.signal(signum, group=group)

    @property
    def tree_gone(self) -> bool:
        """The child is reaped and nothing of its tree is alive."""
        return self.pid is None and not self._tree.alive()

    @property
    def tree_sealed(self) -> bool:
        """Whether the platform's tree can be left (`ProcessTree.sealed`)."""
        return self._tree.sealed

    def watch(self, listener: ExitListener) -> None:
        """Reap the child once it exits, and then tell *listener*, from a
        system task; where the tree is sealed (`tree_sealed`), tell it too
        once the tree is gone, unless the block is ending first."""
        trio.lowlevel.spawn_system_task(
            self._watch, listener, name=f"trioproc wait {self.pid}"
        )

    async def _watch(self, listener: ExitListener) -> None:
        with self._waiting:
            returncode = await self._process.wait()
            if self._given_up:
                return  # reap_in_background's thread tells the block
            self.returncode = returncode
            self.status = wait_status(returncode)
            self.pid = None
            self._tree.reaped()
            self.reaped.set()
            listener._child_reaped()
            if self.tree_sealed and not listener._block_ending:
                # Where a closed read end cannot be seen from the write end
                # (Windows), a sealed tree that is gone tells that the
                # child's input is no longer read: say so before the block
                # ends.
                await _stop.until_gone_or_ending(self, listener)
                if self.tree_gone and not listener._block_ending:
                    listener._child_tree_gone()

    # The stop sequence's steps (`trioproc._os._stop.Stoppable`).

    @property
    def kill_grace(self) -> float:
        """The Linux backend's `trioproc._os._reaper.KILL_GRACE`, read when
        the sequence needs it (tests change it)."""
        return _reaper.KILL_GRACE

    def alive(self) -> bool:
        """Whether the platform sees a live process of the tree."""
        return self._tree.alive()

    def graceful_step(self) -> None:
        """The platform's graceful step, to the whole tree."""
        self._tree.terminate()

    async def hard_step(self) -> None:
        """The platform's hard step, to the whole tree (it does not block;
        the sequence's wait that follows checkpoints)."""
        self._tree.kill()

    def stuck_member(self) -> int:
        """The child's pid: the group it led is still alive."""
        return self._process.pid

    def tree_ended(self) -> None:
        """Nothing to remove: the platform's tree is released at the end."""

    def release_tree(self) -> None:
        """Release what the platform's `adopt` holds."""
        self._tree.close()

    def reap_in_background(self) -> None:
        """Leave reaping to a thread: for a child stuck in the kernel, which
        no task may wait for, but which must not stay a zombie once it dies."""
        process = self._process
        # trio.Process offers no blocking wait; its Popen does (and the task
        # that waited on it is cancelled first: two would race).
        popen = process._proc
        self._given_up = True
        self._waiting.cancel()
        token = trio.lowlevel.current_trio_token()

        def reaped_late() -> None:
            returncode = process.returncode  # closes Trio's pidfd, if any
            assert returncode is not None
            self.returncode, self.status = returncode, wait_status(returncode)
            self.pid = None
            self._tree.reaped()
            self.reaped.set()

        def reap() -> None:
            popen.wait()
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(reaped_late)

        threading.Thread(
            target=reap, name=f"trioproc reaper {self.pid}", daemon=True
        ).start()
