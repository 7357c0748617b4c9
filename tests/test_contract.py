"""The contract suite: one set of tests, run against the real transport (a
real child) and against trioproc.testing.FakeProcessTransport, so the fake
cannot drift from the real thing."""

from __future__ import annotations

import signal

import pytest
import trio

import trioproc

from .contract import FakeHarness, Harness, RealHarness
from .helpers import Recorder


@pytest.fixture(params=["real", "fake"])
def harness(request: pytest.FixtureRequest) -> Harness:
    marker = request.node.get_closest_marker("real_only")
    if request.param == "fake" and marker is not None:
        pytest.skip(f"the fake cannot mirror this: {marker.args[0]}")
    return RealHarness() if request.param == "real" else FakeHarness()


async def test_make_connection_comes_first_with_a_pid(harness: Harness) -> None:
    """makeConnection is the first callback, with pid already set."""
    protocol = Recorder()
    async with harness.start(protocol) as transport:
        assert protocol.events == [("connectionMade",)]
        assert isinstance(protocol.pids_at["makeConnection"], int)
        assert transport.pid == protocol.pids_at["makeConnection"]


async def test_writes_reach_the_child_in_order(harness: Harness) -> None:
    """write, writeSequence and writeToChild(0) arrive in call order."""
    async with harness.start(Recorder()) as transport:
        transport.write(b"one ")
        transport.writeSequence([b"two", b" "])
        transport.writeToChild(0, bytearray(b"three"))
        assert await harness.child_reads(0, 13) == b"one two three"


async def test_extra_write_fds_and_their_errors(harness: Harness) -> None:
    """A "w" fd 3 takes writeToChild; other fds are KeyError; non-bytes TypeError."""
    async with harness.start(Recorder(), {0: "w", 1: "r", 3: "w"}) as transport:
        transport.writeToChild(3, b"to three")
        assert await harness.child_reads(3, 8) == b"to three"
        with pytest.raises(
            KeyError, match="child fd 1 is not one the parent writes to"
        ):
            transport.writeToChild(1, b"x")
        with pytest.raises(TypeError, match="data must be bytes"):
            transport.write("text")
        with pytest.raises(TypeError, match="iterable of bytes"):
            transport.writeSequence(b"bytes")
        with pytest.raises(KeyError, match="not one of this child's"):
            transport.closeChildFD(7)


async def test_output_is_delivered_per_fd_in_order(harness: Harness) -> None:
    """Data on fd 1 reaches outReceived, on fd 2 errReceived, in order."""
    protocol = Recorder()
    async with harness.start(protocol) as transport:
        await harness.child_writes(1, b"out-1 ")
        await harness.child_writes(2, b"err")
        await harness.child_writes(1, b"out-2")
        await harness.settle(lambda: protocol.out(1) == b"out-1 out-2")
        await harness.settle(lambda: protocol.out(2) == b"err")
        assert transport.returncode is None


async def test_each_fd_is_lost_once_and_ended_comes_last(harness: Harness) -> None:
    """The child exits: every fd lost once, processExited with pid None,
    processEnded exactly once, last, with the exit code."""
    protocol = Recorder()
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


async def test_exited_comes_before_the_fds_a_grandchild_holds(harness: Harness) -> None:
    """processExited at reaping; processEnded waits for the held fds."""
    protocol = Recorder()
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


async def test_the_child_closing_its_stdin_is_seen(harness: Harness) -> None:
    """childConnectionLost(0) when the child closes fd 0; later writes drop."""
    protocol = Recorder()
    async with harness.start(protocol) as transport:
        await harness.child_closes(0)
        await harness.settle(lambda: ("lost", 0) in protocol.events)
        assert transport.returncode is None
        transport.write(b"dropped quietly")
        assert transport.stdin is not None
        with pytest.raises(trio.BrokenResourceError):
            await transport.stdin.send_all(b"x")


async def test_close_stdin_ends_input_after_pending_data(harness: Harness) -> None:
    """closeStdin(): the child reads what was written, then end of file; the
    fd is lost; writes after it are dropped; send_all raises Closed."""
    protocol = Recorder()
    async with harness.start(protocol) as transport:
        transport.write(b"last words")
        transport.closeStdin()
        transport.write(b"dropped")
        assert await harness.child_reads(0) == b"last words"
        await harness.settle(lambda: ("lost", 0) in protocol.events)
        assert transport.stdin is not None
        with pytest.raises(trio.ClosedResourceError):
            await transport.stdin.send_all(b"x")


async def test_close_stdout_and_lose_connection(harness: Harness) -> None:
    """closeStdout() loses fd 1 once; loseConnection() loses the rest."""
    protocol = Recorder()
    async with harness.start(protocol) as transport:
        transport.closeStdout()
        transport.closeStdout()
        await harness.settle(lambda: ("lost", 1) in protocol.events)
        transport.loseConnection()
        await harness.settle(lambda: protocol.kinds().count("lost") == 3)
    assert protocol.events.count(("lost", 1)) == 1


async def test_paused_reading_holds_output_until_resumed(harness: Harness) -> None:
    """pauseProducing(): no data callbacks; resumeProducing(): all of it."""
    protocol = Recorder()
    async with harness.start(protocol) as transport:
        transport.pauseProducing()
        await harness.child_writes(1, b"held back")
        await trio.sleep(0.05)
        assert protocol.out(1) == b""
        transport.resumeProducing()
        await harness.settle(lambda: protocol.out(1) == b"held back")


async def test_a_streaming_producer_follows_the_child_reading(harness: Harness) -> None:
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

    async with harness.start(Recorder()) as transport:
        transport.registerProducer(Producer(), True)
        with pytest.raises(RuntimeError, match="a producer is registered already"):
            transport.registerProducer(Producer(), True)
        data = b"p" * 3_000_000  # past a pipe (even a grown one) and high water
        transport.write(data)
        await harness.settle(lambda: calls == ["pause"])
        assert transport.statistics().producer_paused
        assert await harness.child_reads(0, len(data)) == data
        await harness.settle(lambda: calls == ["pause", "resume"])
        transport.unregisterProducer()
        assert transport.statistics().producer is None


async def test_a_pull_producer_is_asked_at_once_and_stopped_with_stdin(
    harness: Harness,
) -> None:
    """A pull producer gets resumeProducing() at registration, and
    stopProducing() when fd 0 is lost."""
    calls: list[str] = []

    class Producer:
        def resumeProducing(self) -> None:
            calls.append("resume")

        def stopProducing(self) -> None:
            calls.append("stop")

    async with harness.start(Recorder()) as transport:
        transport.registerProducer(Producer(), False)
        assert calls == ["resume"]
        await harness.child_closes(0)
        await harness.settle(lambda: calls[-1:] == ["stop"])


async def test_a_producer_without_stdin_is_stopped(harness: Harness) -> None:
    """No fd 0: registerProducer() stops the producer at once."""
    calls: list[str] = []

    class Producer:
        def resumeProducing(self) -> None:
            calls.append("resume")

        def stopProducing(self) -> None:
            calls.append("stop")

    async with harness.start(Recorder(), {1: "r"}) as transport:
        transport.registerProducer(Producer(), False)
        assert calls == ["stop"]
        assert transport.stdin is None


async def test_signals_are_checked_and_refused_after_exit(harness: Harness) -> None:
    """Unknown signals are ValueError; after exit, ProcessExitedAlready."""
    async with harness.start(Recorder()) as transport:
        with pytest.raises(ValueError, match="unknown signal name"):
            transport.signalProcess("NOPE")
        await harness.child_exits(0)
        with pytest.raises(trioproc.ProcessExitedAlready):
            transport.signalProcess("TERM")


@pytest.mark.real_only("it has no kernel: SIGTERM is recorded, not delivered")
async def test_sigterm_ends_a_child_that_does_not_handle_it(harness: Harness) -> None:
    """signalProcess("TERM") ends the child with that signal."""
    protocol = Recorder()
    async with harness.start(protocol) as transport:
        transport.signalProcess("TERM")
        await harness.settle(lambda: "ended" in protocol.kinds())
    assert protocol.events[-1] == ("ended", "ProcessTerminated", None, signal.SIGTERM)


async def test_sigkill_always_ends_the_child(harness: Harness) -> None:
    """SIGKILL cannot be ignored: the fake mirrors the kernel here."""
    protocol = Recorder()
    async with harness.start(protocol) as transport:
        transport.signalProcess("KILL")
        await harness.settle(lambda: "ended" in protocol.kinds())
        assert await transport.wait() == -signal.SIGKILL
    assert protocol.events[-1] == ("ended", "ProcessTerminated", None, signal.SIGKILL)


async def test_addresses_and_statistics_have_the_contracts_shape(
    harness: Harness,
) -> None:
    """getHost/getPeer are ProcessAddress; statistics() covers every fd."""
    async with harness.start(Recorder()) as transport:
        assert transport.getHost() == transport.getPeer() == trioproc.ProcessAddress()
        stats = transport.statistics()
        assert isinstance(stats, trioproc.TransportStatistics)
        assert set(stats.fds) == {0, 1, 2}
        assert stats.fds[0].direction == "w"
        assert stats.fds[1].direction == "r"
        transport.write(b"q" * 2_000_000)
        assert transport.statistics().fds[0].buffered > 0


async def test_stop_producing_closes_every_fd(harness: Harness) -> None:
    """stopProducing() is loseConnection()."""
    protocol = Recorder()
    async with harness.start(protocol) as transport:
        transport.stopProducing()
        await harness.settle(lambda: protocol.kinds().count("lost") == 3)
        assert transport.returncode is None


class KeyValueClient(trioproc.ProcessProtocol):
    """A small realistic protocol: sends a request line, reads a line-based
    reply (possibly split across reads), then closes stdin."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.buffer = b""
        self.value: str | None = None
        self.reason: trioproc.ProcessEnded | None = None

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

    def processEnded(self, reason: trioproc.ProcessEnded) -> None:
        self.reason = reason


async def test_a_realistic_protocol_behaves_the_same_on_both(harness: Harness) -> None:
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
    assert isinstance(client.reason, trioproc.ProcessDone)
