"""`FakeProcessTransport`: the process contract in memory, for unit tests.

It accepts and refuses exactly what the real transport does (both are a
`trioproc._contract.TransportBase`, and their writers share the queue rules of
`trioproc._flow`), runs the same stream-mode protocol and the same ``stdin``
stream, and calls the protocol's callbacks in the contract's order. A test
plays the child with the drivers `deliver`, `lose`, `exit`, `stall` and
`drain`; a script that plays it from a task (the fake spawn) also uses a
`ScriptDriver`. What the real transport does later, from its tasks, the
fake defers too (`trioproc.testing._later.Later`).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Literal, final

import attrs
import trio

from .._contract import (
    TransportBase,
    as_bytes,
    not_a_child_fd,
    not_a_write_fd,
    parse_signal,
)
from .._errors import ProcessEnded, ProcessExitedAlready
from .._options import (
    DEFAULT_CHILD_FDS,
    DEFAULT_HIGH_WATER,
    DEFAULT_KILL_AFTER,
    DEFAULT_LOW_WATER,
    check_kill_after,
    check_protocol,
)
from .._streams import StdinStream, StreamProtocol
from ._fake_reader import FakeReader
from ._fake_writer import FakeWriter
from ._later import Later

if TYPE_CHECKING:
    from .._interfaces import IProcessProtocol, IProducer
    from .._os._holds import Hold
    from .._streams import OutputStream

__all__ = ["FakeProcessTransport", "ScriptDriver"]


@final
class FakeProcessTransport(TransportBase[FakeWriter]):
    """A process transport with no process: the whole contract, in memory.

    ``FakeProcessTransport(protocol)`` connects *protocol* at once
    (``makeConnection``); with ``protocol=None`` it runs in stream mode, as
    ``spawn(argv)`` does, with ``stdout``/``stderr`` streams. A test plays the
    child:

    * `deliver` ``(fd, data)``: the child writes;
    * `lose` ``(fd)``: the child closes an fd (end of file on its output, or
      it closed its stdin);
    * `exit` ``(code=0, signal=None)``: the child exits (its open fds are
      lost first, unless ``lose_fds=False``: a grandchild holds them);
    * `stall` / `drain`: the child stops reading an input fd / reads what
      waits, which is how a streaming producer gets paused and resumed;
    * `flush`: deliver what transport calls set off (see the module doc).

    It records what the parent did: `value` / `clear` (bytes the child read
    on an fd), `signals`, `closedChildFDs`, `producer`, `streaming`,
    `disconnecting`, `hung_up` (a pty closed by ``closeStdout`` or
    ``loseConnection``: the kernel would send the child SIGHUP); `pid` is
    settable. SIGKILL ends the fake child, as the kernel would; other signals
    (and a hang-up) are only recorded unless a test or a script reacts to them.
    """

    def __init__(
        self,
        protocol: IProcessProtocol | None = None,
        *,
        pid: int | None = 4242,
        child_fds: Mapping[int, Literal["r", "w"] | int] | None = None,
        pty: bool = False,
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int = DEFAULT_LOW_WATER,
        kill_after: float = DEFAULT_KILL_AFTER,
    ) -> None:
        layout = dict(DEFAULT_CHILD_FDS if child_fds is None else child_fds)
        if pty:
            layout = {0: "w", 1: "r"}
        self.pid = pid
        self.signals: list[str | int | signal.Signals] = []
        self.closedChildFDs: set[int] = set()
        self.disconnecting = False
        self.hung_up = False
        self.window_size: tuple[int, int] | None = (24, 80) if pty else None
        self._terminal = pty
        self._kill_after = check_kill_after(kill_after)
        self._later = Later()
        self._writers = {
            fd: FakeWriter(
                high_water,
                low_water,
                terminal=pty,
                defer=self._later.defer,
                lost=partial(self._lose, fd),
            )
            for fd, how in layout.items()
            if how == "w"
        }
        self._readable = {fd for fd, how in layout.items() if how == "r"}
        self._passed_fds = frozenset(
            fd for fd, how in layout.items() if isinstance(how, int)
        )
        self._open_fds = {*self._writers, *self._readable}
        self._reading = FakeReader(self._received)
        self._status: int | None = None
        self._reason: ProcessEnded | None = None
        self._ended = False
        self._failed = False
        self._exited = trio.Event()
        self._fd_lost = {fd: trio.Event() for fd in self._open_fds}
        self._signal_handler: Callable[[int], bool] | None = None
        self._streams: dict[int, OutputStream] = {}
        self._stdin: StdinStream | None = None
        checked = check_protocol(protocol)
        self._protocol: IProcessProtocol = (
            StreamProtocol() if checked is None else checked
        )
        self._call(self._protocol.makeConnection, self)

    # --- drivers: the test plays the child ----------------------------------

    def deliver(self, childFD: int, data: bytes) -> None:
        """The child writes *data* on *childFD*.

        While reading is paused (``pauseProducing``, or a full stream buffer)
        the data is held and delivered on resume, as a pipe would hold it.

        Raises:
          KeyError: *childFD* is not an fd the child writes to.
          ValueError: the fd is closed already (`lose` was called for it).
        """
        self.flush()
        if childFD not in self._readable:
            raise KeyError(f"child fd {childFD!r} is not one the child writes to")
        if childFD not in self._open_fds:
            raise ValueError(f"child fd {childFD} is closed: the child cannot write")
        data = as_bytes(data)
        if childFD in self.closedChildFDs or not data:
            return  # the parent closed it: discarded, as a closed pipe would
        self._reading.receive(childFD, data)
        self.flush()

    def lose(self, childFD: int) -> None:
        """The child closes *childFD*: end of its output, or it closed its stdin.

        Raises:
          KeyError: not an fd of this child.
          ValueError: lost already.
        """
        self.flush()
        if childFD not in {*self._writers, *self._readable}:
            raise not_a_child_fd(childFD, {*self._writers, *self._readable})
        if childFD not in self._open_fds:
            raise ValueError(f"child fd {childFD} is closed already")
        self._lose(childFD, broken=True)
        self.flush()

    def exit(
        self, code: int = 0, signal: int | None = None, *, lose_fds: bool = True
    ) -> None:
        """The child exits with *code*, or is ended by *signal*.

        Open fds are lost first, as a dying process's are; with
        ``lose_fds=False`` they stay open (a grandchild holds them) and
        ``processEnded`` waits for the last `lose`. Then ``pid`` becomes
        ``None`` and ``processExited`` runs.

        Raises:
          ProcessExitedAlready: the child has exited already.
        """
        self.flush()
        if self._status is not None:
            raise ProcessExitedAlready("the fake child has exited already")
        if lose_fds:
            for fd in sorted(self._open_fds):
                self._lose(fd, broken=True)
        self._status = (signal & 0x7F) if signal is not None else (code & 0xFF) << 8
        self.pid = None
        self._exited.set()
        self._later.wake()  # a kernel task waits for the end too
        self._report_exited(ProcessEnded.from_wait_status(self._status))
        self.flush()

    def stall(self, childFD: int = 0) -> None:
        """The child stops reading *childFD*: writes queue up from now on."""
        self._writer(childFD).stalled = True

    def drain(self, childFD: int = 0, nbytes: int | None = None) -> None:
        """The child reads *nbytes* (all, by default) of what waits on
        *childFD*, and goes on reading everything afterwards."""
        self.flush()
        writer = self._writer(childFD)
        writer.stalled = nbytes is not None and nbytes < writer.queue.buffered
        writer.drain(nbytes)
        self.flush()

    def flush(self) -> None:
        """Deliver what transport calls set off and the real transport would
        deliver from its tasks: lost fds, held output, a pull producer's turn,
        a SIGKILLed child's end."""
        self._later.run()

    # --- what a test inspects ------------------------------------------------

    def value(self, childFD: int = 0) -> bytes:
        """The bytes the child has read on *childFD* (fd 0 by default)."""
        return bytes(self._writer(childFD).received)

    def clear(self, childFD: int = 0) -> None:
        """Forget the bytes the child has read on *childFD*."""
        self._writer(childFD).received.clear()

    @property
    def producer(self) -> IProducer | None:
        """The registered producer, or ``None``."""
        stdin = self._writers.get(0)
        return stdin.queue.producer if stdin is not None else None

    @property
    def streaming(self) -> bool | None:
        """Whether the registered producer is streaming; ``None`` without one."""
        stdin = self._writers.get(0)
        if stdin is None or stdin.queue.producer is None:
            return None
        return stdin.queue.streaming

    # --- the contract ------------------------------------------------------

    def loseConnection(self) -> None:
        """Close stdin, stdout and stderr (and record `disconnecting`)."""
        self.disconnecting = True
        super().loseConnection()

    def signalProcess(self, signalID: str | int | signal.Signals) -> None:
        """Record the signal; SIGKILL also ends the fake child (later)."""
        signum = parse_signal(signalID)
        if self._status is not None:
            raise ProcessExitedAlready("the fake child has exited already")
        self.signals.append(signalID)
        handler = self._signal_handler
        if handler is not None and handler(signum):
            return
        if signum == signal.SIGKILL:
            self._later.defer(self._killed)

    # --- Trio-native additions ---------------------------------------------

    @property
    def returncode(self) -> int | None:
        """``None`` until `exit`; then the code, or ``-signum``."""
        return None if self._status is None else os.waitstatus_to_exitcode(self._status)

    async def wait(self) -> int:
        """Wait until the fake child exits; return `returncode`."""
        self.flush()
        await self._exited.wait()
        returncode = self.returncode
        assert returncode is not None
        return returncode

    async def stop(self, kill_after: float | None = None) -> int:
        """SIGTERM, then SIGKILL after *kill_after* seconds (Trio's clock, so
        ``autojump_clock`` skips the wait); return `returncode`."""
        grace = self._kill_after if kill_after is None else check_kill_after(kill_after)
        if self._status is None:
            self.signalProcess("TERM")
            self.flush()
            with trio.move_on_after(grace):
                await self._exited.wait()
            if self._status is None:
                self.signalProcess("KILL")
        return await self.wait()

    # --- what the contract base needs (see trioproc._contract.TransportBase) -

    def _output_fds(self) -> list[int]:
        return sorted(self._readable)

    def _pause_reading(self, fd: int, hold: Hold = "buffer") -> None:
        self._reading.hold(fd, hold)

    def _resume_reading(self, fd: int, hold: Hold = "buffer") -> None:
        if self._reading.lift(fd, hold):
            self._later.defer(self._reading.release)

    def _reader_state(self, fd: int) -> tuple[bool, bool]:
        closed = fd in self.closedChildFDs or fd not in self._open_fds
        return self._reading.paused(fd), closed

    def _set_window_size(self, rows: int, cols: int) -> None:
        if 1 not in self._open_fds:
            raise trio.ClosedResourceError("the pseudo-terminal is closed")
        self.window_size = (rows, cols)

    # --- internals ---------------------------------------------------------

    def _writer(self, fd: int) -> FakeWriter:
        writer = self._writers.get(fd)
        if writer is None:
            raise not_a_write_fd(fd, self._writers)
        return writer

    def _close_fd(self, fd: int) -> bool:
        if self._terminal and fd == 2:
            return True  # the terminal's stderr is its output, fd 1
        if self._terminal and fd == 1 and not self.hung_up:
            # Closing a terminal's output closes the terminal: pending input
            # is dropped, and the child is hung up.
            self.hung_up = True
            stdin = self._writers[0]
            if not stdin.queue.done:
                self.closedChildFDs.add(0)
                stdin.end(broken=False)
                self._later.defer(lambda: self._lose(0))
            handler = self._signal_handler
            if handler is not None:
                self._later.defer(partial(handler, signal.SIGHUP))
        writer = self._writers.get(fd)
        if writer is not None:
            if not writer.queue.done:
                self.closedChildFDs.add(fd)
                writer.close()
            return True
        if fd not in self._readable:
            return False
        if fd not in self.closedChildFDs:
            self.closedChildFDs.add(fd)
            self._reading.drop(fd)
            if fd in self._open_fds:
                self._later.defer(lambda: self._lose(fd))
        return True

    def _lose(self, fd: int, *, broken: bool = False) -> None:
        if fd not in self._open_fds:
            return
        self._open_fds.discard(fd)
        self._fd_lost[fd].set()
        writer = self._writers.get(fd)
        if writer is not None:
            writer.end(broken)
        self._report_lost(fd)

    def _received(self, fd: int, data: bytes) -> None:
        """Give the protocol one chunk the child wrote (see `FakeReader`)."""
        self._call(self._protocol.childDataReceived, fd, data)

    def _killed(self) -> None:
        if self._status is None:
            self.exit(signal=signal.SIGKILL)


@final
@attrs.define(eq=False)
class ScriptDriver:
    """The child's side of a `FakeProcessTransport` for code that plays the
    child from a task of its own (the scripted children of ``fake_spawn``)
    or checks the contract on it.

    The fake's public drivers (`FakeProcessTransport.deliver`, ``lose``,
    ``exit``, ``stall``, ``drain``) serve a test that plays the child step by
    step. A script that plays it concurrently with the code under test also
    waits -- for the parent to read, for an fd to be lost --, runs the work
    the fake defers as a task (`run`, what the real transport's tasks do),
    and ends the block as the real block ends (`leave`).
    """

    fake: FakeProcessTransport

    @property
    def input_fds(self) -> list[int]:
        """The child fds the parent writes to (``"w"``), in order."""
        return sorted(self.fake._writers)

    @property
    def open_fds(self) -> frozenset[int]:
        """The child fds not lost yet."""
        return frozenset(self.fake._open_fds)

    @property
    def kill_after(self) -> float:
        """The grace the fake's ``stop()`` gives, as ``spawn(kill_after=)``."""
        return self.fake._kill_after

    def written(self, fd: int) -> bytes:
        """What the parent wrote to *fd*: read by the child or waiting
        (``b""`` for an fd the parent does not write to)."""
        writer = self.fake._writers.get(fd)
        if writer is None:
            return b""
        return bytes(writer.received + writer.pending)

    def on_signal(self, handler: Callable[[int], bool] | None) -> None:
        """Let *handler* react to each signal the parent sends (and to a
        hang-up); it returns ``True`` when it dealt with it, else SIGKILL
        ends the fake child as usual."""
        self.fake._signal_handler = handler

    async def run(self) -> None:
        """Deliver deferred work as it comes, until the child has ended."""
        fake = self.fake
        while fake._status is None or fake._open_fds:
            fake.flush()
            if fake._status is not None and not fake._open_fds:
                break
            await fake._later.wait()
        await trio.lowlevel.checkpoint()

    async def until_reading(self, fd: int) -> None:
        """Return once the parent reads *fd* (a child blocks on a full pipe)."""
        fake = self.fake
        while fake._reading.paused(fd) and fd not in fake.closedChildFDs:
            await fake._reading.changed.wait()
        await trio.lowlevel.checkpoint()

    async def until_lost(self, fd: int) -> None:
        """Return once *fd* is lost (for fd 0: the child read end of file)."""
        self.fake.flush()
        await self.fake._fd_lost[fd].wait()

    def leave(self) -> None:
        """End the block as the real one ends without an error: close the
        write ends after their data, discard stream mode's unread output, and
        lift every hold on reading, so that the child can run to its end."""
        fake = self.fake
        for fd in self.input_fds:
            fake.closeChildFD(fd)
        for stream in fake._streams.values():
            stream._discard()
        fake._reading.lift_all()
        fake._later.defer(fake._reading.release)
