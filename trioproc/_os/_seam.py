"""The seam between the transport and an OS backend.

A backend starts a child (`Backend.launch`) and hands back the pieces the
transport drives: the process (`ChildProcess`: its exit, its signals, the end
of its tree), one `ChildReader` per fd the parent reads and one `ChildWriter`
per fd it writes. The transport knows these protocols only, and the backend
knows no protocol: it calls back with bytes (`deliver`) and with the loss of an
fd (`lost`). The Linux backend is `trioproc._os._linux`; the portable one
(macOS, Windows, and Linux with ``TRIOPROC_BACKEND=portable``) is
`trioproc._os._portable`; `trioproc._os._backends` picks one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Protocol

import attrs
import trio

from .._flow import InputEnd

if TYPE_CHECKING:
    from .._options import SpawnOptions
    from ._holds import Hold

__all__ = [
    "Backend",
    "ChildFds",
    "ChildProcess",
    "ChildReader",
    "ChildWriter",
    "ExitListener",
    "Launched",
    "RemoteHook",
]


class ExitListener(Protocol):
    """Who hears of a child's exit (the transport). Its methods are called
    from outside the block's tasks, and must not raise."""

    #: The block has begun to end (the child's tree is then its to end).
    _block_ending: bool

    def _child_reaped(self) -> None:
        """The child was reaped: its status is there."""

    def _child_tree_gone(self) -> None:
        """Nothing of the child's sealed tree is alive (`Stoppable.tree_sealed`)."""


class ChildProcess(Protocol):
    """A started child until it is reaped, and what it started."""

    @property
    def pid(self) -> int | None:
        """The child's pid until it is reaped, then ``None``."""

    @property
    def status(self) -> int | None:
        """The raw wait status once reaped."""

    @property
    def returncode(self) -> int | None:
        """The exit code, ``-signum`` after a signal, ``None`` before."""

    @property
    def reaped(self) -> trio.Event:
        """Set once the child has been reaped."""

    @property
    def stopping(self) -> bool:
        """The block has begun to end the child's tree."""

    @property
    def remote(self) -> RemoteHook | None:
        """For the local ``ssh`` of a remote child, its hook."""

    def send_signal(
        self, signum: int, *, group: bool = False, foreground_of: int | None = None
    ) -> None:
        """Signal the child (its group with *group*; a terminal's foreground
        group with *foreground_of*); `ProcessExitedAlready` once reaped."""

    def watch(self, listener: ExitListener) -> None:
        """Reap the child when it exits and tell *listener*, from a task that
        is not the block's (no task of the block waits for the exit); where
        nothing can leave the child's tree, tell it too once the tree is
        gone, unless the block is ending first."""

    async def finish(self, kill_after: float, *, in_order: bool) -> None:
        """The block's end: *in_order*, wait for the exit; then end what is
        left of the tree (see `trioproc._os._stop.finish`)."""

    async def stop(self, kill_after: float) -> None:
        """End the child and its tree: the graceful signal, the hard one after
        *kill_after*; return once they are gone."""


class ChildReader(Protocol):
    """The parent's read end of one child fd, and its pump."""

    @property
    def paused(self) -> bool:
        """Whether a hold keeps the pump from reading."""

    @property
    def closed(self) -> bool:
        """Whether the parent's end is closed."""

    def pause(self, hold: Hold = "protocol") -> None:
        """Stop reading until *hold* is released."""

    def resume(self, hold: Hold | None = "protocol") -> None:
        """Release *hold* (``None``: every hold)."""

    def close(self) -> None:
        """Close now, discarding unread output."""

    def pull(self) -> bool:
        """Stream mode: let the reader's task read through `read_some`
        rather than the pump deliver; whether this reader can (if not, the
        pump delivers as in protocol mode)."""

    def fill(self) -> None:
        """While `pull` holds: deliver what the fd holds now, bounded, with
        no wait (for ``statistics()``)."""

    def push(self) -> None:
        """The block is ending: the pump reads and delivers again."""

    def read_now(self, max_bytes: int) -> bytes | None:
        """While `pull` holds: a read that does not wait, of what the fd
        holds now; ``None`` if none, or for `read_some` to decide."""

    async def read_some(self, max_bytes: int, schedule: bool) -> bytes | None:
        """One read in the caller's task while `pull` holds, a cancel point;
        a schedule point if it waits, or if *schedule* asks for one.
        ``None`` when the pump delivers instead (the caller waits for its
        delivery)."""

    def finish(self) -> None:
        """The child's tree is gone: deliver what is left, then stop."""

    async def pump(
        self, deliver: Callable[[bytes], None], lost: Callable[[], None]
    ) -> None:
        """The pump task: *deliver* data until the end, then call *lost*."""


class ChildWriter(InputEnd, Protocol):
    """The parent's write end of one child fd, with its queue (`InputEnd`),
    and the task that writes it out."""

    def abort(self) -> None:
        """Drop the queue and end the fd now."""

    async def run(self, lost: Callable[[], None]) -> None:
        """The writer task: write the queue out until done, then call *lost*."""


@attrs.frozen
class Launched:
    """What a backend hands the transport for one started child.

    Attributes:
      process: the child.
      readers: child fd -> its read end (a terminal's output is fd 1).
      writers: child fd -> its write end (a terminal's input is fd 0).
      passed: child fds handed over as parent fds (nothing to close here).
      terminal: the pseudo-terminal's master, when the child has one; the
        transport closes it once the child is reaped (or hung up).
    """

    process: ChildProcess
    readers: Mapping[int, ChildReader]
    writers: Mapping[int, ChildWriter]
    passed: frozenset[int]
    terminal: int | None


class Backend(Protocol):
    """How one operating system starts a child and drives its fds."""

    @property
    def name(self) -> str:
        """The backend's name, shown in ``repr(transport)``."""

    def refuse(self, options: SpawnOptions) -> None:
        """Raise ``ValueError``, naming the option and the backend, for what
        *options* ask that this backend cannot honour (``spawn()`` calls it,
        so the error comes at the call)."""

    async def launch(self, options: SpawnOptions) -> Launched:
        """Start the child *options* describe.

        Raises:
          OSError: the program (or its cwd, or its cgroup) cannot be used;
            nothing is left behind.

        Cancellation: nothing is left running.
        """

    def set_window_size(self, terminal: int, rows: int, cols: int) -> None:
        """Set the size of the pseudo-terminal *terminal*."""


class ChildFds(Protocol):
    """What a `RemoteHook` is shown of a child it is started with: the
    parent's end of each fd the parent reads (a backend's launch plan, e.g.
    `trioproc._os._launch.Launch`, has more)."""

    @property
    def readers(self) -> Mapping[int, int]:
        """Child fd -> the parent's read end, for each fd the parent reads."""


class RemoteHook(Protocol):
    """What a local child that stands for a remote one (the ``ssh`` of
    ``spawn(host=...)``, `trioproc._ssh.RemoteSession`) changes in it."""

    @property
    def pid(self) -> int | None:
        """The remote program's pid, once started."""

    async def handshake(self, launch: ChildFds, pid: int) -> None:
        """Wait until the remote program has started (or raise why not)."""

    def signal(self, signum: int) -> None:
        """Send *signum* to the remote program's process group."""

    def translate(self, status: int) -> int:
        """The local wait status, as the remote program's."""

    async def end(
        self, kill_after: float, grace: float, wait: Callable[[], Awaitable[None]]
    ) -> bool:
        """Run the stop sequence on the remote host; whether that ended it."""
