"""What every provider of the process contract shares: argument checks and
error messages, so that the real transport and the fake in `trioproc.testing`
accept and refuse exactly the same things, and `TransportBase`, the contract
methods whose logic does not depend on there being a real process."""

from __future__ import annotations

import io
import signal
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, final

import attrs

from ._statistics import FDStatistics, TransportStatistics, snapshot

if TYPE_CHECKING:
    from ._errors import ProcessEnded
    from ._flow import InputEnd
    from ._interfaces import IProcessProtocol, IProducer
    from ._os._holds import Hold
    from ._streams import OutputStream, Puller, StdinStream, StreamHost

__all__ = [
    "ProcessAddress",
    "TransportBase",
    "as_bytes",
    "join_sequence",
    "not_a_child_fd",
    "not_a_write_fd",
    "parse_signal",
    "producer_registered",
]


@final
@attrs.frozen
class ProcessAddress:
    """The address of a process transport: it has none beyond being a process."""


def parse_signal(signal_id: object) -> int:
    """The signal number *signal_id* names: ``"TERM"``, ``"SIGTERM"``, 15 ...

    Raises:
      ValueError: no such signal.
      TypeError: neither a name nor a number.
    """
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return _parse_windows_signal(signal_id)
    if isinstance(signal_id, str):
        name = signal_id.upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        try:
            return int(signal.Signals[name])
        except KeyError:
            raise ValueError(f"unknown signal name {signal_id!r}") from None
    if isinstance(signal_id, int) and not isinstance(signal_id, bool):
        if signal_id in signal.valid_signals():
            return int(signal_id)
        raise ValueError(f"{signal_id} is not a valid signal number")
    raise TypeError(f"a signal is a name or a number, not {signal_id!r}")


#: What a Windows child can be sent: the POSIX numbers of the signals that
#: have a Windows counterpart (`trioproc._os._windows`).
_WINDOWS_SIGNALS: Final = {"SIGINT": 2, "SIGKILL": 9, "SIGTERM": 15}
#: Signal names of POSIX and Windows (``BREAK``), which name a real signal
#: even where Python's ``signal`` module (Windows) does not know them.
_SIGNAL_NAMES: Final = frozenset(
    f"SIG{name}"
    for name in (
        *("HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL"),
        *("USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD"),
        *("CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ"),
        *("VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS", "BREAK"),
    )
)


def _parse_windows_signal(signal_id: object) -> int:  # pragma: no cover - Windows
    """`parse_signal` on Windows: INT, TERM and KILL, by name or POSIX number."""
    if isinstance(signal_id, str):
        name = signal_id.upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        number = _WINDOWS_SIGNALS.get(name)
    elif isinstance(signal_id, int) and not isinstance(signal_id, bool):
        number = int(signal_id) if signal_id in _WINDOWS_SIGNALS.values() else None
    else:
        raise TypeError(f"a signal is a name or a number, not {signal_id!r}")
    if number is None:
        if isinstance(signal_id, str) and name not in _SIGNAL_NAMES:
            raise ValueError(f"unknown signal name {signal_id!r}")
        raise ValueError(
            f"signal {signal_id!r} has no counterpart on Windows: a child there "
            "can be sent INT (2, CTRL_BREAK_EVENT), TERM (15) or KILL (9)"
        )
    return number


def as_bytes(data: object) -> bytes:
    """*data* as bytes for ``write``; a mutable buffer is copied, since the
    caller may reuse it once the call returns.

    Raises:
      TypeError: *data* is not bytes-like (a str, say).
    """
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"data must be bytes, not {type(data).__name__}")


def join_sequence(seq: object) -> bytes:
    """The bytes ``writeSequence(seq)`` writes, checked item by item.

    Raises:
      TypeError: *seq* is a single bytes or str, or holds a non-bytes item.
    """
    if isinstance(seq, (bytes, bytearray, memoryview, str)):
        raise TypeError(
            f"writeSequence takes an iterable of bytes, not {type(seq).__name__}"
        )
    if not isinstance(seq, Iterable):
        raise TypeError(f"writeSequence takes an iterable of bytes, not {seq!r}")
    return b"".join([as_bytes(item) for item in seq])


def not_a_write_fd(fd: object, writable: Iterable[int]) -> KeyError:
    """The error for writing to an fd the parent does not write to."""
    those = sorted(writable)
    return KeyError(
        f"child fd {fd!r} is not one the parent writes to (those are {those})"
    )


def not_a_child_fd(fd: object, known: Iterable[int]) -> KeyError:
    """The error for naming an fd the child does not have."""
    return KeyError(f"child fd {fd!r} is not one of this child's {sorted(known)}")


def producer_registered(producer: object) -> RuntimeError:
    """The error for registering a second producer."""
    return RuntimeError(
        f"a producer is registered already ({producer!r}); unregisterProducer() first"
    )


_W = TypeVar("_W", bound="InputEnd")


class TransportBase(Generic[_W]):
    """The process contract's methods that the real transport and the fake
    share word for word: writing, closing, producers, streams, statistics,
    the callback latch and the end order.

    A subclass holds the state named below and supplies what differs: how an
    fd is closed (`_close_fd`), how reading is held (`_pause_reading`,
    `_resume_reading`, `_reader_state`), which fds it reads (`_output_fds`)
    and how a terminal is resized (`_set_window_size`). The protocol hears
    ``processEnded`` once, last, after the child was reaped and every fd was
    lost (`_maybe_end`).
    """

    if not TYPE_CHECKING:
        # The subclasses define the slots; mypy would refuse the base's
        # assignments to the attributes declared below.
        __slots__ = ()

    _protocol: IProcessProtocol | None
    _writers: Mapping[int, _W]
    _passed_fds: frozenset[int]
    _terminal: bool
    _open_fds: set[int]
    _failed: bool
    _ended: bool
    #: The reason processExited was given, until processEnded has run.
    _reason: ProcessEnded | None
    _streams: dict[int, OutputStream]
    _stdin: StdinStream | None

    # --- what a subclass supplies -------------------------------------------

    def _close_fd(self, fd: int) -> bool:
        """Close the parent's end of *fd*; whether the child has such an fd
        (a terminal's fd 2 is its fd 1)."""
        raise NotImplementedError

    def _output_fds(self) -> list[int]:
        """The child fds the parent reads, in the order they are reported."""
        raise NotImplementedError

    def _pause_reading(self, fd: int, hold: Hold = "buffer") -> None:
        """Stop reading *fd* until *hold* (``"protocol"``: every fd's
        ``pauseProducing``; ``"buffer"``: a full stream buffer) is released."""
        raise NotImplementedError

    def _resume_reading(self, fd: int, hold: Hold = "buffer") -> None:
        """Release *hold* on *fd*."""
        raise NotImplementedError

    def _puller(self, fd: int) -> Puller | None:
        """*fd* as its stream's reader reads it in its own task, if it can
        (`trioproc._os._seam.ChildReader.read_now` and ``read_some``);
        ``None`` when the transport delivers instead. The fake always
        delivers."""
        return None

    def _reader_state(self, fd: int) -> tuple[bool, bool]:
        """Whether reading *fd* is paused now, and whether it is closed."""
        raise NotImplementedError

    def _set_window_size(self, rows: int, cols: int) -> None:
        """Resize the terminal (the size was checked)."""
        raise NotImplementedError

    # --- the contract ---------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write *data* to the child's fd 0 without blocking.

        Once fd 0 is closed (by the parent, or by the child) the data is
        dropped quietly, as the contract says.

        Raises:
          TypeError: *data* is not bytes.
          KeyError: fd 0 is not a ``"w"`` fd of this child.
        """
        self.writeToChild(0, data)

    def writeSequence(self, seq: Iterable[bytes]) -> None:
        """Write each bytes object of *seq* to fd 0, in order, without blocking."""
        self.writeToChild(0, join_sequence(seq))

    def writeToChild(self, childFD: int, data: bytes) -> None:
        """Write *data* to the child's *childFD*, a ``"w"`` fd, without blocking.

        Raises:
          TypeError: *data* is not bytes.
          KeyError: *childFD* is not a ``"w"`` fd of this child.
        """
        checked = as_bytes(data)
        writer = self._writers.get(childFD)
        if writer is None:
            raise not_a_write_fd(childFD, self._writers)
        writer.write(checked)

    def closeChildFD(self, childFD: int) -> None:
        """Close the parent's end of *childFD*.

        A write end is closed once its pending data is written (a terminal gets
        its end-of-file character instead); a read end is closed at once and
        unread output is discarded. An fd handed over as a parent fd number has
        no end here to close. Closing twice is harmless.

        Raises:
          KeyError: *childFD* is not an fd of this child.
        """
        if not self._close_fd(childFD) and childFD not in self._passed_fds:
            raise not_a_child_fd(
                childFD, {*self._output_fds(), *self._writers, *self._passed_fds}
            )

    def closeStdin(self) -> None:
        """Close fd 0 after pending data (a terminal: send end-of-file)."""
        self._close_fd(0)

    def closeStdout(self) -> None:
        """Close the parent's end of fd 1, discarding unread output."""
        self._close_fd(1)

    def closeStderr(self) -> None:
        """Close the parent's end of fd 2, discarding unread output."""
        self._close_fd(2)

    def loseConnection(self) -> None:
        """Close stdin, stdout and stderr.

        A pseudo-terminal is closed at once, pending input dropped: the child
        is hung up (SIGHUP), as when a terminal window closes.
        """
        for fd in (0, 1, 2):
            self._close_fd(fd)

    def getHost(self) -> ProcessAddress:
        """A `ProcessAddress`."""
        return ProcessAddress()

    def getPeer(self) -> ProcessAddress:
        """A `ProcessAddress`."""
        return ProcessAddress()

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """Let *producer* feed the child's stdin, with flow control.

        A streaming (push) producer gets ``pauseProducing()`` when the bytes
        queued for fd 0 pass the high-water mark and ``resumeProducing()``
        when they fall below the low-water mark -- once per crossing, never
        resumed unless paused. A pull producer gets ``resumeProducing()`` now
        and each time the queue has room again after it wrote. When fd 0 is
        lost (closed, or the child closed it) the producer gets
        ``stopProducing()``; with no fd 0, or one already lost, it gets that
        at once.

        Raises:
          RuntimeError: a producer is registered already.
        """
        writer = self._writers.get(0)
        if writer is not None and writer.queue.producer is not None:
            raise producer_registered(writer.queue.producer)
        if writer is None:
            producer.stopProducing()
        else:
            writer.register_producer(producer, bool(streaming))

    def unregisterProducer(self) -> None:
        """Forget the registered producer, if any (always safe)."""
        writer = self._writers.get(0)
        if writer is not None:
            writer.unregister_producer()

    def pauseProducing(self) -> None:
        """Stop reading the child's output; the child blocks on a full pipe."""
        for fd in self._output_fds():
            self._pause_reading(fd, "protocol")

    def resumeProducing(self) -> None:
        """Read the child's output again after `pauseProducing`."""
        for fd in self._output_fds():
            self._resume_reading(fd, "protocol")

    def stopProducing(self) -> None:
        """Close everything, as `loseConnection`; the child is left to exit."""
        self.loseConnection()

    # --- Trio-native additions ---------------------------------------------

    def statistics(self) -> TransportStatistics:
        """The flow state now: per fd, bytes buffered and whether it is paused
        or closed, and the producer's state."""
        readers = (
            FDStatistics(
                fd,
                "r",
                self._streams[fd]._size if fd in self._streams else 0,
                *self._reader_state(fd),
            )
            for fd in self._output_fds()
        )
        return snapshot({fd: w.queue for fd, w in self._writers.items()}, readers)

    @property
    def stdin(self) -> StdinStream | None:
        """fd 0 as a `trio.abc.SendStream`, when fd 0 is ``"w"`` (or a pty).

        ``send_all`` waits for room in the same queue `write` uses, so the two
        keep their order; ``aclose`` is `closeStdin`.
        """
        if self._stdin is None and 0 in self._writers:
            from ._streams import StdinStream

            self._stdin = StdinStream._create(self._writers[0])
        return self._stdin

    @property
    def stdout(self) -> OutputStream | None:
        """fd 1 as an `OutputStream` (a `trio.abc.ReceiveStream`) in stream
        mode, else ``None``."""
        return self._streams.get(1)

    @property
    def stderr(self) -> OutputStream | None:
        """fd 2 as an `OutputStream` (a `trio.abc.ReceiveStream`) in stream
        mode, else ``None``."""
        return self._streams.get(2)

    def resize(self, rows: int, cols: int) -> None:
        """Set the pseudo-terminal's window size; the child gets SIGWINCH.

        Raises:
          io.UnsupportedOperation: the child has no pseudo-terminal.
          trio.ClosedResourceError: the terminal is closed already.
          ValueError: a size outside 1..65535.
        """
        if not self._terminal:
            raise io.UnsupportedOperation(
                "resize() needs a pseudo-terminal: spawn(..., pty=True)"
            )
        for n in (rows, cols):
            if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= 0xFFFF:
                raise ValueError(f"rows and cols must be from 1 to 65535, not {n!r}")
        self._set_window_size(rows, cols)

    # --- what stream mode needs (see trioproc._streams.StreamHost) ---------

    def _attach_streams(self, streams: dict[int, OutputStream]) -> None:
        """Stream mode's output streams, for `stdout` and `stderr`."""
        self._streams = streams

    # --- the callbacks, and their order ---------------------------------------

    def _call(self, callback: Any, *args: Any) -> None:
        # After one callback has raised, the protocol hears nothing more: its
        # state is unknown, and the exception is already on its way out.
        if self._failed:
            return
        try:
            callback(*args)
        except BaseException:
            self._failed = True
            raise

    def _report_lost(self, fd: int) -> None:
        """*fd* is lost: tell the protocol, and end if it was the last."""
        self._open_fds.discard(fd)
        assert self._protocol is not None
        self._call(self._protocol.childConnectionLost, fd)
        self._maybe_end()

    def _report_exited(self, reason: ProcessEnded) -> None:
        """The child is reaped: tell the protocol, and end if no fd is open."""
        self._reason = reason
        assert self._protocol is not None
        self._call(self._protocol.processExited, reason)
        self._maybe_end()

    def _maybe_end(self) -> None:
        if self._reason is None or self._open_fds or self._ended:
            return
        self._ended = True
        # Let the reason go with the protocol's last call: a block held past
        # its child's end (an exit stack of idle children) keeps no exception.
        reason, self._reason = self._reason, None
        assert self._protocol is not None
        self._call(self._protocol.processEnded, reason)


if TYPE_CHECKING:

    def _hosts_stream_mode(transport: TransportBase[Any]) -> StreamHost:
        # Checked by mypy only: every transport on this base hosts stream mode.
        return transport
