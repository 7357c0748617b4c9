"""trioproc.testing.FakeProcessTransport: every attribute and driver.

(What it shares with the real transport is held by test_contract.py; these
are the fake's own promises.)
"""

from __future__ import annotations

import signal
from typing import Any

import pytest
import trio
import trio.testing

import trioproc
from trioproc.testing import FakeProcessTransport

from .helpers import Recorder


def test_it_connects_the_protocol_and_records_writes() -> None:
    """A protocol given is connected at once; value()/clear() show what the
    child read on fd 0 (or any "w" fd)."""
    protocol = Recorder()
    fake = FakeProcessTransport(protocol, child_fds={0: "w", 1: "r", 4: "w"})
    assert protocol.events == [("connectionMade",)]
    assert protocol.pids_at["makeConnection"] == 4242
    fake.write(b"abc")
    fake.writeSequence([b"d", b"e"])
    fake.writeToChild(4, b"four")
    assert fake.value() == b"abcde"
    assert fake.value(4) == b"four"
    fake.clear()
    assert fake.value() == b""
    with pytest.raises(KeyError):
        fake.value(1)


def test_pid_is_settable_and_none_after_exit() -> None:
    """pid is a plain attribute a test may set; exit() sets it to None."""
    fake = FakeProcessTransport(Recorder(), pid=77)
    assert fake.pid == 77
    fake.pid = 1001
    assert fake.pid == 1001
    fake.exit(0)
    assert fake.pid is None


def test_drivers_run_callbacks_in_the_contracts_order() -> None:
    """deliver, lose and exit: data, lost once per fd, exited, ended last."""
    protocol = Recorder()
    fake = FakeProcessTransport(protocol)
    fake.deliver(1, b"out")
    fake.deliver(2, b"err")
    fake.lose(1)
    fake.exit(signal=signal.SIGTERM)
    assert protocol.events == [
        ("connectionMade",),
        ("data", 1),
        ("data", 2),
        ("lost", 1),
        ("lost", 0),
        ("lost", 2),
        ("exited", "ProcessTerminated", None, signal.SIGTERM),
        ("ended", "ProcessTerminated", None, signal.SIGTERM),
    ]
    assert fake.returncode == -signal.SIGTERM
    assert protocol.pids_at["processExited"] is None


def test_exit_can_leave_fds_to_a_grandchild() -> None:
    """exit(lose_fds=False): processEnded waits for the last lose()."""
    protocol = Recorder()
    fake = FakeProcessTransport(protocol)
    fake.exit(0, lose_fds=False)
    assert protocol.kinds() == ["connectionMade", "exited"]
    fake.lose(0)
    fake.lose(1)
    assert "ended" not in protocol.kinds()
    fake.lose(2)
    assert protocol.kinds()[-1] == "ended"


def test_driver_misuse_is_reported() -> None:
    """A test that plays the child wrongly gets a clear error."""
    fake = FakeProcessTransport(Recorder())
    with pytest.raises(KeyError, match="not one the child writes to"):
        fake.deliver(0, b"stdin is the parent's to write")
    fake.lose(1)
    with pytest.raises(ValueError, match="child fd 1 is closed"):
        fake.deliver(1, b"too late")
    with pytest.raises(ValueError, match="closed already"):
        fake.lose(1)
    with pytest.raises(KeyError, match="not one of this child's"):
        fake.lose(9)
    fake.exit(0)
    with pytest.raises(trioproc.ProcessExitedAlready):
        fake.exit(0)


def test_transport_calls_never_call_back_from_inside() -> None:
    """As with the real transport, closeStdin() inside a callback does not
    run inConnectionLost before it returns; the next driver call (or
    flush()) delivers it."""
    order: list[str] = []

    class Closer(trioproc.ProcessProtocol):
        def outReceived(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.closeStdin()
            order.append("closeStdin returned")

        def inConnectionLost(self) -> None:
            order.append("inConnectionLost")

    fake = FakeProcessTransport(Closer())
    fake.deliver(1, b"bye")
    assert order == ["closeStdin returned", "inConnectionLost"]
    assert fake.closedChildFDs == {0}
    fake.write(b"after close: dropped")
    assert fake.value() == b""


def test_flush_delivers_what_transport_calls_set_off() -> None:
    """A test calling transport methods directly uses flush()."""
    protocol = Recorder()
    fake = FakeProcessTransport(protocol)
    fake.loseConnection()
    assert fake.disconnecting
    assert fake.closedChildFDs == {0, 1, 2}
    assert "lost" not in protocol.kinds()
    fake.flush()
    assert protocol.kinds().count("lost") == 3


def test_paused_reading_holds_deliveries_per_fd() -> None:
    """pauseProducing() holds data; resumeProducing() releases it in order."""
    protocol = Recorder()
    fake = FakeProcessTransport(protocol)
    fake.pauseProducing()
    fake.deliver(1, b"a")
    fake.deliver(1, b"b")
    assert protocol.out(1) == b""
    assert fake.statistics().fds[1].paused
    fake.resumeProducing()
    fake.flush()
    assert protocol.out(1) == b"ab"


def test_signals_are_recorded_and_sigkill_ends_the_child() -> None:
    """signals lists what signalProcess got; SIGKILL ends the fake child."""
    protocol = Recorder()
    fake = FakeProcessTransport(protocol)
    fake.signalProcess("TERM")
    fake.signalProcess(signal.SIGUSR1)
    assert fake.signals == ["TERM", signal.SIGUSR1]
    assert fake.returncode is None  # only recorded
    fake.signalProcess("KILL")
    fake.flush()
    assert fake.returncode == -signal.SIGKILL
    assert protocol.events[-1] == ("ended", "ProcessTerminated", None, signal.SIGKILL)
    with pytest.raises(trioproc.ProcessExitedAlready):
        fake.signalProcess("HUP")


def test_producer_state_is_visible_and_scriptable() -> None:
    """producer/streaming show the registration; stall() makes the fake
    full so a streaming producer is paused, drain() resumes it."""
    calls: list[str] = []

    class Producer:
        def pauseProducing(self) -> None:
            calls.append("pause")

        def resumeProducing(self) -> None:
            calls.append("resume")

        def stopProducing(self) -> None:
            calls.append("stop")

    fake = FakeProcessTransport(Recorder(), high_water=10, low_water=4)
    assert fake.producer is None
    assert fake.streaming is None
    producer = Producer()
    fake.registerProducer(producer, True)
    assert fake.producer is producer
    assert fake.streaming is True
    fake.stall()
    fake.write(b"0123456789ABC")
    assert calls == ["pause"]
    assert fake.statistics().fds[0].buffered == 13
    assert fake.value() == b""
    fake.drain(nbytes=5)
    assert calls == ["pause"]  # 8 bytes still wait: above low water
    fake.drain()
    assert calls == ["pause", "resume"]
    assert fake.value() == b"0123456789ABC"
    fake.unregisterProducer()
    assert fake.producer is None


def test_a_pull_producer_is_asked_for_more() -> None:
    """Pull: resumeProducing at registration and after each write, on flush."""
    fake = FakeProcessTransport(Recorder())
    chunks = [b"one ", b"two ", b"three"]

    class Pull:
        def resumeProducing(self) -> None:
            if chunks:
                fake.write(chunks.pop(0))

        def stopProducing(self) -> None:
            pass

    fake.registerProducer(Pull(), False)
    assert fake.value() == b"one "
    fake.flush()
    assert fake.value() == b"one two three"


def test_stall_and_drain_work_with_close() -> None:
    """closeStdin() with data still waiting: fd 0 is lost once drained."""
    protocol = Recorder()
    fake = FakeProcessTransport(protocol)
    fake.stall()
    fake.write(b"pending")
    fake.closeStdin()
    fake.flush()
    assert ("lost", 0) not in protocol.events
    fake.drain()
    assert fake.value() == b"pending"
    assert ("lost", 0) in protocol.events


def test_stream_mode_on_the_fake() -> None:
    """protocol=None: stdout/stderr are the same streams stream mode uses."""

    async def main() -> None:
        fake = FakeProcessTransport()
        assert fake.stdout is not None
        assert fake.stderr is not None
        fake.deliver(1, b"streamed")
        fake.lose(1)
        assert await fake.stdout.receive_some() == b"streamed"
        assert await fake.stdout.receive_some() == b""
        assert fake.stdin is not None
        await fake.stdin.send_all(b"in")
        assert fake.value() == b"in"

    trio.run(main)


async def test_wait_and_stop_run_on_trios_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """stop(): SIGTERM, then SIGKILL after kill_after of Trio's time."""
    fake = FakeProcessTransport(Recorder(), kill_after=20)
    start = trio.current_time()
    assert await fake.stop() == -signal.SIGKILL
    assert trio.current_time() - start == pytest.approx(20)
    assert fake.signals == ["TERM", "KILL"]
    assert await fake.wait() == -signal.SIGKILL


async def test_send_all_waits_while_the_fake_child_stalls() -> None:
    """stdin.send_all() waits for room, as with a real child that does not read."""
    fake = FakeProcessTransport(Recorder(), high_water=100, low_water=10)
    fake.stall()
    stdin = fake.stdin
    assert stdin is not None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stdin.send_all, b"x" * 1000)
        await trio.testing.wait_all_tasks_blocked()
        assert 0 < stdin.committed < 1000
        fake.drain()
        await trio.testing.wait_all_tasks_blocked()
        fake.drain()
    assert fake.value() == b"x" * 1000


def test_a_pty_fake_records_resizes_and_sends_eof() -> None:
    """pty=True: resize() sets window_size; closeStdin() sends ^D."""
    fake = FakeProcessTransport(Recorder(), pty=True)
    assert fake.window_size == (24, 80)
    fake.resize(40, 120)
    assert fake.window_size == (40, 120)
    fake.write(b"partial")
    fake.closeStdin()
    assert fake.value() == b"partial\x04\x04"
    plain = FakeProcessTransport(Recorder())
    with pytest.raises(ValueError, match="needs a pseudo-terminal"):
        plain.resize(1, 1)


def test_a_callback_error_reaches_the_driver_and_mutes_the_protocol() -> None:
    """An exception from a callback comes out of the driver that caused it;
    the protocol hears nothing more, as with the real transport."""
    heard: list[str] = []

    class Fragile(trioproc.ProcessProtocol):
        def outReceived(self, data: bytes) -> None:
            raise LookupError("bad output")

        def processEnded(self, reason: Any) -> None:
            heard.append("ended")

    fake = FakeProcessTransport(Fragile())
    with pytest.raises(LookupError):
        fake.deliver(1, b"x")
    fake.exit(0)
    assert heard == []


def test_bad_protocols_and_arguments_are_refused_as_by_spawn() -> None:
    """The fake checks its protocol and kill_after as spawn() does."""
    with pytest.raises(TypeError, match="has no makeConnection"):
        FakeProcessTransport(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kill_after"):
        FakeProcessTransport(kill_after=-1)


def test_a_pull_producer_waits_for_an_empty_queue_as_with_a_real_writer() -> None:
    """The real writer asks a pull producer for more only once everything
    queued is written; the fake does the same, not at the low-water mark."""
    fake = FakeProcessTransport(Recorder(), high_water=100, low_water=50)
    asked = 0

    class Pull:
        def resumeProducing(self) -> None:
            nonlocal asked
            asked += 1
            if asked <= 2:
                fake.write(b"x" * 80)

        def stopProducing(self) -> None:
            pass

    fake.stall()
    fake.registerProducer(Pull(), False)
    fake.flush()
    assert asked == 1
    fake.drain(0, 40)  # 40 left queued: below the low-water mark, not empty
    fake.flush()
    assert asked == 1
    fake.drain(0, 40)
    fake.flush()
    assert asked == 3  # the second write was read at once: asked again
    assert fake.value() == b"x" * 160


def test_closing_a_fake_terminal_hangs_it_up() -> None:
    """pty: closeStdout() (and loseConnection()) close the terminal, as the
    real transport does: pending input dropped, fd 0 lost too, the child
    hung up; closeChildFD(2) is a no-op."""
    protocol = Recorder()
    fake = FakeProcessTransport(protocol, pty=True)
    fake.closeChildFD(2)
    assert not fake.hung_up
    fake.stall()
    fake.write(b"never read")
    fake.closeStdout()
    fake.flush()
    assert fake.hung_up
    assert {("lost", 0), ("lost", 1)} <= set(protocol.events)
    fake.drain()
    assert fake.value() == b""


def test_the_fakes_stream_buffer_and_pause_producing_are_separate_holds() -> None:
    """Stream mode: resumeProducing() does not lift a full buffer's hold, and
    reading the buffer does not lift pauseProducing()'s."""

    async def main() -> None:
        fake = FakeProcessTransport()
        assert fake.stdout is not None
        bound = trioproc._streams.OUTPUT_BUFFER
        fake.deliver(1, b"a" * bound)  # the buffer is full: reading pauses
        fake.deliver(1, b"b" * 10)  # held
        fake.resumeProducing()
        fake.flush()
        assert fake.statistics().fds[1].buffered == bound
        fake.pauseProducing()
        assert await fake.stdout.receive_some() == b"a" * bound
        fake.flush()
        assert fake.statistics().fds[1].buffered == 0  # still held
        fake.resumeProducing()
        fake.flush()
        assert await fake.stdout.receive_some() == b"b" * 10

    trio.run(main)
