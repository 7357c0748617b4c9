"""`ProcessTransport`: the parent's side of one running child.

The transport delivers data one way only: pumps call the protocol. Stream mode
is a protocol too (`trioproc._streams.StreamProtocol`). Callbacks always come
from the transport's own tasks, never from inside a method the protocol
called, so a protocol never sees itself re-entered. What the contract asks
and does not depend on a real process is `trioproc._contract.TransportBase`,
shared with the fake; this module adds the child, its backend and its tasks.
"""

from __future__ import annotations

import contextvars
import os
import signal
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Final, final

import attrs
import trio

from ._contract import ProcessAddress, TransportBase, parse_signal
from ._errors import ProcessEnded
from ._options import check_kill_after
from ._output import OUTPUT_BUFFER
from ._util import NoPublicConstructor, raise_in_task

if TYPE_CHECKING:
    from ._interfaces import IProcessProtocol
    from ._os._reader import Hold
    from ._os._seam import (
        Backend,
        ChildProcess,
        ChildReader,
        ChildWriter,
        Launched,
    )
    from ._output import Puller
    from ._statistics import TransportStatistics
    from ._streams import OutputStream, StdinStream

__all__ = ["ProcessAddress", "ProcessTransport"]

# What a terminal's keyboard sends to its foreground process group.
# Looked up by name: Windows has only SIGINT of these.
_KEYBOARD_SIGNALS: Final = frozenset(
    getattr(signal, name)
    for name in ("SIGINT", "SIGQUIT", "SIGTSTP", "SIGWINCH")
    if hasattr(signal, name)
)


#: The open fds of every child that has none (`ProcessTransport._open_fds`).
_NO_FDS: Final[set[int]] = set()


@final
@attrs.define(eq=False)
class ProcessTransport(TransportBase["ChildWriter"], metaclass=NoPublicConstructor):
    """The parent's side of one child: Twisted's process transport contract.

    Handed out by ``async with trioproc.spawn(...) as transport``; it has no
    public constructor. Methods named in camelCase are the contract's and keep
    its meaning exactly; the snake_case ones are Trio-native additions.
    """

    _backend: Backend
    _child: ChildProcess
    _protocol: IProcessProtocol | None
    _readers: Mapping[int, ChildReader]
    _writers: Mapping[int, ChildWriter]
    _passed_fds: frozenset[int]
    _pty_master: int | None
    _terminal: bool
    _kill_after: float
    _discard_output_on_exit: bool
    _open_fds: set[int] = attrs.field(init=False)
    _failed: bool = attrs.field(init=False, default=False)
    _ended: bool = attrs.field(init=False, default=False)
    _hang_up: bool = attrs.field(init=False, default=False)
    _reason: ProcessEnded | None = attrs.field(init=False, default=None)
    _streams: dict[int, OutputStream] = attrs.field(init=False, factory=dict)
    _stdin: StdinStream | None = attrs.field(init=False, default=None)
    #: The block is ending (it has called `_finish` or `_abandon`).
    _block_ending: bool = attrs.field(init=False, default=False)
    _tree_gone_told: bool = attrs.field(init=False, default=False)
    #: The block's nursery, where what the watcher's callbacks raise goes;
    #: without one (no fd to serve), the scope of the block's body, which
    #: that cancels, and what they raised, for the block to raise.
    _nursery: trio.Nursery | None = attrs.field(init=False, default=None)
    _scope: trio.CancelScope | None = attrs.field(init=False, default=None)
    _watch_errors: list[BaseException] | None = attrs.field(init=False, default=None)
    #: The block's context, which those callbacks run in, as its tasks do.
    _context: contextvars.Context = attrs.field(
        init=False, factory=contextvars.copy_context
    )

    @classmethod
    def _create(
        cls,
        backend: Backend,
        launched: Launched,
        protocol: IProcessProtocol,
        *,
        kill_after: float,
        stream_mode: bool,
    ) -> ProcessTransport:
        """The transport of a child *backend* started (``spawn()``'s job)."""
        self = NoPublicConstructor._create(
            cls,
            backend,
            launched.process,
            protocol,
            launched.readers,
            launched.writers,
            launched.passed,
            launched.terminal,
            launched.terminal is not None,
            kill_after,
            stream_mode,
        )
        # Only ever emptied, so a child with no fd shares one empty set.
        self._open_fds = {*self._readers, *self._writers} or _NO_FDS
        return self

    def __repr__(self) -> str:
        return (
            f"<trioproc.ProcessTransport pid={self.pid} "
            f"returncode={self.returncode} backend={self._backend.name}>"
        )

    # --- the contract ------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The child's pid until it is reaped, then ``None``.

        For a remote child (``host=``) it is the program's pid on that host;
        the local ``ssh`` is not exposed.
        """
        remote = self._child.remote
        if remote is not None and self._child.pid is not None:
            return remote.pid
        return self._child.pid

    def signalProcess(self, signalID: str | int | signal.Signals) -> None:
        """Send the child a signal: ``"KILL"``, ``"TERM"``, ``"INT"``, ``"HUP"``,
        ``"STOP"``, ``"CONT"``, any `signal.Signals` name, or a number.

        With a pseudo-terminal, the signals a keyboard sends -- INT (^C),
        QUIT (^\\), TSTP (^Z) -- and WINCH go to the terminal's foreground
        process group, as a terminal user's would: ^C reaches the command a
        shell is running, not the shell. Every other signal goes to the child.

        While the block is ending the child (it was cancelled, or failed),
        a signal to the child it has already reaped is dropped quietly.

        Raises:
          ValueError: no such signal.
          ProcessExitedAlready: the child has exited and been reaped.
        """
        signum = parse_signal(signalID)
        if self._child.stopping and self._child.pid is None:
            return  # the block has ended the child itself, as it is leaving
        if self._pty_master is not None and signum in _KEYBOARD_SIGNALS:
            self._child.send_signal(signum, foreground_of=self._pty_master)
        else:
            self._child.send_signal(signum)

    # --- Trio-native additions ---------------------------------------------

    @property
    def returncode(self) -> int | None:
        """``None`` while running; the exit code, or ``-signum`` after a signal."""
        return self._child.returncode

    async def wait(self) -> int:
        """Wait for the child to exit and be reaped; return `returncode`.

        Cancellation: safe at any point; the child keeps running, and any
        number of tasks may wait at once.
        """
        await self._child.reaped.wait()
        returncode = self._child.returncode
        assert returncode is not None
        return returncode

    async def stop(self, kill_after: float | None = None) -> int:
        """Stop the child and its process group: SIGTERM and SIGCONT, then
        SIGKILL after *kill_after* seconds.

        The signals go to the child's process group when it leads one (the
        default), so what it started ends too. *kill_after* defaults to the
        one given to ``spawn()``. Output is delivered as usual meanwhile.

        Returns:
          `returncode`, once the child has been reaped and no live process is
          left in its group.

        Raises:
          ChildUnkillable: a process outlived SIGKILL by ``KILL_GRACE``.

        Cancellation: the child may be left running (leaving the ``async
        with`` block still stops it).
        """
        grace = self._kill_after if kill_after is None else check_kill_after(kill_after)
        await self._child.stop(grace)
        return await self.wait()

    # --- internals ---------------------------------------------------------

    def _set_window_size(self, rows: int, cols: int) -> None:
        if self._pty_master is None:
            raise trio.ClosedResourceError("the pseudo-terminal is closed")
        self._backend.set_window_size(self._pty_master, rows, cols)

    def _close_fd(self, fd: int) -> bool:
        if self._terminal and fd == 2:
            return True  # the terminal's stderr is its output, fd 1
        if self._terminal and fd == 1:
            # Closing a terminal's output closes the terminal: hang up now.
            self._hang_up = True
            self._writers[0].abort()
        writer = self._writers.get(fd)
        if writer is not None:
            writer.close()
            return True
        reader = self._readers.get(fd)
        if reader is not None:
            reader.close()
            return True
        return False

    def _output_fds(self) -> list[int]:
        return list(self._readers)

    def _pause_reading(self, fd: int, hold: Hold = "buffer") -> None:
        self._readers[fd].pause(hold)

    def _resume_reading(self, fd: int, hold: Hold = "buffer") -> None:
        self._readers[fd].resume(hold)

    def _puller(self, fd: int) -> Puller | None:
        reader = self._readers[fd]
        if self._discard_output_on_exit and reader.pull():
            return reader
        return None

    def statistics(self) -> TransportStatistics:
        """The flow state now: per fd, bytes buffered and whether it is paused
        or closed, and the producer's state.

        In stream mode the reader reads the fd itself, when it receives; what
        the child wrote before is counted as buffered all the same (it is
        taken from the pipe now, up to the stream's bound).
        """
        for fd, stream in self._streams.items():
            if stream._size < OUTPUT_BUFFER:
                self._readers[fd].fill()
        return super().statistics()

    def _reader_state(self, fd: int) -> tuple[bool, bool]:
        reader = self._readers[fd]
        return reader.paused, reader.closed

    def _start_tasks(self, nursery: trio.Nursery) -> None:
        """Have the child watched for its exit (no task waits for it), and
        start a pump per read end and a writer per write end."""
        self._nursery = nursery
        self._child.watch(self)
        for fd, reader in self._readers.items():
            nursery.start_soon(
                reader.pump,
                self._deliverer(fd),
                partial(self._on_fd_lost, fd),
                name=f"trioproc pump fd {fd}",
            )
        for fd, writer in self._writers.items():
            nursery.start_soon(
                writer.run,
                partial(self._on_fd_lost, fd),
                name=f"trioproc writer fd {fd}",
            )

    @property
    def _has_tasks(self) -> bool:
        """Whether the child has an fd for a pump or a writer to serve."""
        return bool(self._readers or self._writers)

    def _start_alone(self, scope: trio.CancelScope | None) -> None:
        """A child with no fd to serve (`_has_tasks` false): only have it
        watched, and let a failing callback cancel *scope*, the block's
        (stream mode needs none: its protocol is the library's own)."""
        self._scope = scope
        self._child.watch(self)

    # The child's `ExitListener` (called from its watcher's task).

    def _child_reaped(self) -> None:
        self._from_watcher(self._on_reaped)

    def _child_tree_gone(self) -> None:
        self._from_watcher(self._on_tree_gone)

    def _from_watcher(self, callback: Callable[[], None]) -> None:
        """Run *callback* for the child's watcher, in the block's context;
        what it raises (a protocol's callback failed) leaves through the
        block's nursery, as a task's exception would."""
        try:
            self._context.run(callback)
        except BaseException as exc:  # handed on, not swallowed
            if self._nursery is not None:
                self._nursery.start_soon(raise_in_task, exc, name="trioproc callback")
                return
            if self._watch_errors is None:
                self._watch_errors = []
            self._watch_errors.append(exc)
            if self._scope is not None:
                self._scope.cancel()

    async def _end(self, in_order: bool) -> BaseException | None:
        """The block's end of the child (`_finish` or `_abandon` first):
        *in_order*, wait for its exit; end what is left of its tree; then
        let the pumps drain. Returns what that raised, for the block to
        leave with (`ChildUnkillable`, or a cancellation of the wait)."""
        try:
            await self._child.finish(self._kill_after, in_order=in_order)
        except BaseException as exc:  # the block raises it
            return exc
        finally:
            self._on_tree_gone()
        return None

    def _connect(self) -> None:
        assert self._protocol is not None
        self._call(self._protocol.makeConnection, self)

    def _release(self) -> None:
        """The block is over and its tasks are done: let go of what is left.

        That is the protocol -- a protocol and its transport refer to each
        other; breaking that cycle here lets both be freed at once rather than
        by the cyclic collector, which otherwise costs a spawn-heavy program a
        noticeable share of its time -- and a terminal's master, if a failing
        callback kept it from being closed in the ordinary way.
        """
        self._protocol = None
        master, self._pty_master = self._pty_master, None
        if master is not None:
            os.close(master)

    def _finish(self) -> None:
        """The block is done with the child: close write ends after their data;
        keep delivering output until end of file (stream mode: discard it);
        once the child has exited, end what it left in its process group."""
        for writer in self._writers.values():
            writer.close()
        self._abandon()
        if self._discard_output_on_exit and not self._terminal:
            # The read ends close now, as trio.Process does. (A terminal is
            # read on, discarding, until the child's tree is gone: closing
            # the master would hang the child up.)
            for reader in self._readers.values():
                reader.close()

    def _abandon(self) -> None:
        """The block is ending: lift every hold on output, so that nothing the
        child writes meanwhile is left in the pipe; in stream mode, drop what
        nobody will read now."""
        self._block_ending = True
        for fd, reader in self._readers.items():
            if self._discard_output_on_exit:
                self._streams[fd]._discard()
                reader.push()
            reader.resume(None)

    def _on_tree_gone(self) -> None:
        # Nobody in the child's tree is left to read input or write output
        # (a process that escaped it may still hold the pipes).
        if self._tree_gone_told:
            return
        self._tree_gone_told = True
        for writer in self._writers.values():
            writer.abort()
        for reader in self._readers.values():
            reader.finish()

    def _deliverer(self, fd: int) -> Any:
        assert self._protocol is not None
        received = self._protocol.childDataReceived

        def deliver(data: bytes) -> None:
            if self._failed:
                return
            try:
                received(fd, data)
            except BaseException:
                self._failed = True
                raise

        return deliver

    def _on_fd_lost(self, fd: int) -> None:
        self._open_fds.discard(fd)
        if self._terminal and fd == 1:
            # The terminal's end of output: its input is gone too.
            self._writers[0].abort()
        self._maybe_close_terminal()
        self._report_lost(fd)

    def _on_reaped(self) -> None:
        status = self._child.status
        assert status is not None
        self._maybe_close_terminal()
        self._report_exited(ProcessEnded.from_wait_status(status))

    def _maybe_close_terminal(self) -> None:
        """Close the master once its tasks are done, and the child is reaped
        (or a hang-up was asked for).

        Closing a master hangs its terminal up, and SIGHUP kills by default.
        End of output comes as soon as the child closes its last terminal fd,
        which many programs do just before they exit (GNU tools close their
        standard streams to report write errors): closing the master then
        would kill a child that was about to exit cleanly.
        """
        master = self._pty_master
        if master is None or self._open_fds & {0, 1}:
            return
        if self._hang_up or self._child.status is not None:
            # No notify_closing: the tasks that waited on it have finished.
            self._pty_master = None
            os.close(master)
