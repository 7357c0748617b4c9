"""The process transport contract as checks that run against any transport.

Each check is an async function of a `ContractHarness` -- which starts a
child and plays it -- and fails with an `AssertionError` (or the error the
transport raised) when the transport does not keep the contract. The project
runs every check against the real transport (`RealProcessHarness`) and the
fake (`FakeTransportHarness`), so the two cannot drift apart; a user who
writes a fake of their own runs them against it::

    async def test_my_fake_keeps_the_contract():
        await trioproc.testing.check_transport_contract(MyFakeHarness)
"""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, TypeVar, final

import attrs
import trio

if sys.version_info < (3, 11):  # pragma: no cover - trio requires it there
    from exceptiongroup import (  # type: ignore[import-not-found,unused-ignore]
        ExceptionGroup,
    )

from .._contract import ProcessAddress
from .._errors import ProcessDone, ProcessEnded, ProcessExitedAlready
from .._protocol import ProcessProtocol
from .._statistics import TransportStatistics
from ._harness import ContractHarness
from ._recorder import RecordingProtocol

__all__ = ["CONTRACT_CHECKS", "ContractCheck", "check_transport_contract"]

_Check = TypeVar("_Check", bound=Callable[..., Any])
_NEEDS_KERNEL: Final = "_trioproc_needs_kernel"


def _needs_kernel(reason: str) -> Callable[[_Check], _Check]:
    """Mark a check that only a harness with a real kernel can pass."""

    def mark(check: _Check) -> _Check:
        setattr(check, _NEEDS_KERNEL, reason)
        return check

    return mark


@contextmanager
def _raises(kind: type[BaseException], match: str | None = None) -> Iterator[None]:
    """Like ``pytest.raises``, without needing pytest."""
    try:
        yield
    except kind as exc:
        if match is not None and not re.search(match, str(exc)):
            raise AssertionError(f"{exc!r} does not match {match!r}") from exc
    else:
        raise AssertionError(f"{kind.__name__} was not raised")


async def check_make_connection_comes_first_with_a_pid(
    harness: ContractHarness,
) -> None:
    """makeConnection is the first callback, with pid already set."""
    protocol = RecordingProtocol()
    async with harness.start(protocol) as transport:
        assert protocol.events == [("connectionMade",)]
        assert isinstance(protocol.pids_at["makeConnection"], int)
        assert transport.pid == protocol.pids_at["makeConnection"]


async def check_writes_reach_the_child_in_order(harness: ContractHarness) -> None:
    """write, writeSequence and writeToChild(0) arrive in call order."""
    async with harness.start(RecordingProtocol()) as transport:
        transport.write(b"one ")
        transport.writeSequence([b"two", b" "])
        transport.writeToChild(0, bytearray(b"three"))
        assert await harness.child_reads(0, 13) == b"one two three"


async def check_extra_write_fds_and_their_errors(harness: ContractHarness) -> None:
    """A "w" fd 3 takes writeToChild; other fds are KeyError; non-bytes TypeError."""
    async with harness.start(
        RecordingProtocol(), {0: "w", 1: "r", 3: "w"}
    ) as transport:
        transport.writeToChild(3, b"to three")
        assert await harness.child_reads(3, 8) == b"to three"
        with _raises(KeyError, match="child fd 1 is not one the parent writes to"):
            transport.writeToChild(1, b"x")
        with _raises(TypeError, match="data must be bytes"):
            transport.write("text")
        with _raises(TypeError, match="iterable of bytes"):
            transport.writeSequence(b"bytes")
        with _raises(KeyError, match="not one of this child's"):
            transport.closeChildFD(7)


async def check_output_is_delivered_per_fd_in_order(harness: ContractHarness) -> None:
    """Data on fd 1 reaches outReceived, on fd 2 errReceived, in order."""
    protocol = RecordingProtocol()
    async with harness.start(protocol) as transport:
        await harness.child_writes(1, b"out-1 ")
        await harness.child_writes(2, b"err")
        await harness.child_writes(1, b"out-2")
        await harness.settle(lambda: protocol.out(1) == b"out-1 out-2")
        await harness.settle(lambda: protocol.out(2) == b"err")
        assert transport.returncode is None


async def check_each_fd_is_lost_once_and_ended_comes_last(
    harness: ContractHarness,
) -> None:
    """The child exits: every fd lost once, processExited with pid None,
    processEnded exactly once, last, with the exit code."""
    protocol = RecordingProtocol()
    async with harness.start(protocol) as transport:
        await harness.child_exits(3)
        await harness.settle(lambda: "ended" in protocol.kinds())
        assert transport.pid is None
        assert transport.returncode == 3
    lost = sorted(e for e in protocol.events if e[0] == "lost")
    assert lost == [("lost", 0), ("lost", 1), ("lost", 2)]
    assert protocol.pids_at["processExited"] is None
    assert protocol.kinds().count("ended") == 1
    assert protocol.events[-1] == ("ended", "ProcessTerminated", 3, None)


async def check_exited_comes_before_the_fds_a_grandchild_holds(
    harness: ContractHarness,
) -> None:
    """processExited at reaping; processEnded waits for the held fds."""
    protocol = RecordingProtocol()
    async with harness.start(protocol) as transport:
        release = await harness.grandchild_holds_fds()
        await harness.child_exits(0)
        await harness.settle(lambda: "exited" in protocol.kinds())
        assert "ended" not in protocol.kinds()
        assert ("lost", 1) not in protocol.events
        release()
        await harness.settle(lambda: "ended" in protocol.kinds())
        assert transport.returncode == 0
    assert protocol.events[-1] == ("ended", "ProcessDone", 0, None)


async def check_the_child_closing_its_stdin_is_seen(harness: ContractHarness) -> None:
    """childConnectionLost(0) when the child closes fd 0; later writes drop."""
    protocol = RecordingProtocol()
    async with harness.start(protocol) as transport:
        await harness.child_closes(0)
        await harness.settle(lambda: ("lost", 0) in protocol.events)
        assert transport.returncode is None
        transport.write(b"dropped quietly")
        assert transport.stdin is not None
        with _raises(trio.BrokenResourceError):
            await transport.stdin.send_all(b"x")


async def check_close_stdin_ends_input_after_pending_data(
    harness: ContractHarness,
) -> None:
    """closeStdin(): the child reads what was written, then end of file; the
    fd is lost; writes after it are dropped; send_all raises Closed."""
    protocol = RecordingProtocol()
    async with harness.start(protocol) as transport:
        transport.write(b"last words")
        transport.closeStdin()
        transport.write(b"dropped")
        assert await harness.child_reads(0) == b"last words"
        await harness.settle(lambda: ("lost", 0) in protocol.events)
        assert transport.stdin is not None
        with _raises(trio.ClosedResourceError):
            await transport.stdin.send_all(b"x")


async def check_close_stdout_and_lose_connection(harness: ContractHarness) -> None:
    """closeStdout() loses fd 1 once; loseConnection() loses the rest."""
    protocol = RecordingProtocol()
    async with harness.start(protocol) as transport:
        transport.closeStdout()
        transport.closeStdout()
        await harness.settle(lambda: ("lost", 1) in protocol.events)
        transport.loseConnection()
        await harness.settle(lambda: protocol.kinds().count("lost") == 3)
    assert protocol.events.count(("lost", 1)) == 1


async def check_paused_reading_holds_output_until_resumed(
    harness: ContractHarness,
) -> None:
    """pauseProducing(): no data callbacks; resumeProducing(): all of it."""
    protocol = RecordingProtocol()
    async with harness.start(protocol) as transport:
        transport.pauseProducing()
        await harness.child_writes(1, b"held back")
        await trio.sleep(0.05)
        assert protocol.out(1) == b""
        transport.resumeProducing()
        await harness.settle(lambda: protocol.out(1) == b"held back")


async def check_a_streaming_producer_follows_the_child_reading(
    harness: ContractHarness,
) -> None:
    """Paused when the child stops reading and the queue passes high water;
    resumed once the child reads it below low water."""
    calls: list[str] = []

    class Producer:
        def pauseProducing(self) -> None:
            calls.append("pause")

        def resumeProducing(self) -> None:
            calls.append("resume")

        def stopProducing(self) -> None:
            calls.append("stop")

    async with harness.start(RecordingProtocol()) as transport:
        transport.registerProducer(Producer(), True)
        with _raises(RuntimeError, match="a producer is registered already"):
            transport.registerProducer(Producer(), True)
        data = b"p" * 3_000_000  # past a pipe (even a grown one) and high water
        transport.write(data)
        await harness.settle(lambda: calls == ["pause"])
        assert transport.statistics().producer_paused
        assert await harness.child_reads(0, len(data)) == data
        await harness.settle(lambda: calls == ["pause", "resume"])
        transport.unregisterProducer()
        assert transport.statistics().producer is None


async def check_a_pull_producer_is_asked_at_once_and_stopped_with_stdin(
    harness: ContractHarness,
) -> None:
    """A pull producer gets resumeProducing() at registration, and
    stopProducing() when fd 0 is lost."""
    calls: list[str] = []

    class Producer:
        def resumeProducing(self) -> None:
            calls.append("resume")

        def stopProducing(self) -> None:
            calls.append("stop")

    async with harness.start(RecordingProtocol()) as transport:
        transport.registerProducer(Producer(), False)
        assert calls == ["resume"]
        await harness.child_closes(0)
        await harness.settle(lambda: calls[-1:] == ["stop"])


async def check_a_producer_without_stdin_is_stopped(harness: ContractHarness) -> None:
    """No fd 0: registerProducer() stops the producer at once."""
    calls: list[str] = []

    class Producer:
        def resumeProducing(self) -> None:
            calls.append("resume")

        def stopProducing(self) -> None:
            calls.append("stop")

    async with harness.start(RecordingProtocol(), {1: "r"}) as transport:
        transport.registerProducer(Producer(), False)
        assert calls == ["stop"]
        assert transport.stdin is None


async def check_signals_are_checked_and_refused_after_exit(
    harness: ContractHarness,
) -> None:
    """Unknown signals are ValueError; after exit, ProcessExitedAlready."""
    async with harness.start(RecordingProtocol()) as transport:
        with _raises(ValueError, match="unknown signal name"):
            transport.signalProcess("NOPE")
        await harness.child_exits(0)
        with _raises(ProcessExitedAlready):
            transport.signalProcess("TERM")


@_needs_kernel("SIGTERM is recorded, not delivered")
async def check_sigterm_ends_a_child_that_does_not_handle_it(
    harness: ContractHarness,
) -> None:
    """signalProcess("TERM") ends the child with that signal."""
    protocol = RecordingProtocol()
    async with harness.start(protocol) as transport:
        transport.signalProcess("TERM")
        await harness.settle(lambda: "ended" in protocol.kinds())
    assert protocol.events[-1] == ("ended", "ProcessTerminated", None, signal.SIGTERM)


async def check_sigkill_always_ends_the_child(harness: ContractHarness) -> None:
    """SIGKILL cannot be ignored: the fake mirrors the kernel here."""
    protocol = RecordingProtocol()
    async with harness.start(protocol) as transport:
        transport.signalProcess("KILL")
        await harness.settle(lambda: "ended" in protocol.kinds())
        assert await transport.wait() == -signal.SIGKILL
    assert protocol.events[-1] == ("ended", "ProcessTerminated", None, signal.SIGKILL)


async def check_addresses_and_statistics_have_the_contracts_shape(
    harness: ContractHarness,
) -> None:
    """getHost/getPeer are ProcessAddress; statistics() covers every fd."""
    async with harness.start(RecordingProtocol()) as transport:
        assert transport.getHost() == transport.getPeer() == ProcessAddress()
        stats = transport.statistics()
        assert isinstance(stats, TransportStatistics)
        assert set(stats.fds) == {0, 1, 2}
        assert stats.fds[0].direction == "w"
        assert stats.fds[1].direction == "r"
        transport.write(b"q" * 2_000_000)
        assert transport.statistics().fds[0].buffered > 0


async def check_stop_producing_closes_every_fd(harness: ContractHarness) -> None:
    """stopProducing() is loseConnection()."""
    protocol = RecordingProtocol()
    async with harness.start(protocol) as transport:
        transport.stopProducing()
        await harness.settle(lambda: protocol.kinds().count("lost") == 3)
        assert transport.returncode is None


class KeyValueClient(ProcessProtocol):
    """A small realistic protocol: sends a request line, reads a line-based
    reply (possibly split across reads), then closes stdin."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.buffer = b""
        self.value: str | None = None
        self.reason: ProcessEnded | None = None

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(f"GET {self.key}\n".encode())

    def outReceived(self, data: bytes) -> None:
        self.buffer += data
        if b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.value = line.decode().removeprefix("VALUE ")
            assert self.transport is not None
            self.transport.closeStdin()

    def processEnded(self, reason: ProcessEnded) -> None:
        self.reason = reason


async def check_a_realistic_protocol_behaves_the_same_on_both(
    harness: ContractHarness,
) -> None:
    """The same protocol, the same assertions, a real child or the fake."""
    client = KeyValueClient("colour")
    async with harness.start(client):
        assert await harness.child_reads(0, 11) == b"GET colour\n"
        await harness.child_writes(1, b"VALUE bl")
        assert client.value is None  # half a line: nothing yet
        await harness.child_writes(1, b"ue\n")
        await harness.settle(lambda: client.value == "blue")
        assert await harness.child_reads(0) == b""  # stdin closed after the reply
        await harness.child_exits(0)
        await harness.settle(lambda: client.reason is not None)
    assert isinstance(client.reason, ProcessDone)


@final
@attrs.frozen
class ContractCheck:
    """One check of the contract.

    Attributes:
      name: what it checks, as a name (``writes_reach_the_child_in_order``).
      run: the check: ``await run(harness)``.
      needs_kernel: why a harness without a real kernel cannot pass it, or
        ``None``.
    """

    name: str
    run: Callable[[ContractHarness], Any]
    needs_kernel: str | None = None

    @property
    def doc(self) -> str:
        """What a transport must do to pass."""
        return " ".join((self.run.__doc__ or "").split())


def _collect() -> tuple[ContractCheck, ...]:
    found = []
    for name, value in list(globals().items()):
        if name.startswith("check_") and name != "check_transport_contract":
            found.append(
                ContractCheck(
                    name.removeprefix("check_"),
                    value,
                    getattr(value, _NEEDS_KERNEL, None),
                )
            )
    return tuple(found)


#: Every check, in the order they are defined.
CONTRACT_CHECKS: Final = _collect()


async def check_transport_contract(
    harness_factory: Callable[[], ContractHarness],
    *,
    checks: Sequence[ContractCheck] = CONTRACT_CHECKS,
) -> None:
    """Run the contract *checks* against the transport *harness_factory*'s
    harnesses start, each with a harness of its own.

    Checks that need a real kernel are left out for a harness whose
    ``kernel`` is false.

    Raises:
      ExceptionGroup: an `AssertionError` for each failed check, naming it
        and what it expects, caused by the error the check met.

    Cancellation: the check running then is cancelled; its harness ends its
    child.
    """
    failures: list[Exception] = []
    for check in checks:
        harness = harness_factory()
        if check.needs_kernel is not None and not harness.kernel:
            continue
        try:
            await check.run(harness)
        except Exception as exc:  # every failure is reported, not the first
            failure = AssertionError(
                f"contract check {check.name!r} ({harness.kind}): {check.doc}"
            )
            failure.__cause__ = exc
            failures.append(failure)
    if failures:
        raise ExceptionGroup(
            f"{len(failures)} of the contract's checks failed", failures
        )
