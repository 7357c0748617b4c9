"""Flow control both ways (issue #3): producers, watermarks, paused reading,
and the child closing its stdin."""

from __future__ import annotations

import hashlib
import itertools
import mmap
import os
import signal
from typing import Any

import pytest
import trio
import trio.lowlevel

import trioproc
from trioproc._os._writer import _write_pages

from .helpers import CAT, Recorder, python

#: Sleeps (argv[1] s, so the parent's queue fills), then reads stdin to the
#: end -- pausing argv[2] s after each 64 KiB -- and prints how many bytes it
#: read and their SHA-256.
SLOW_HASHER = python(
    "import hashlib, os, sys, time\n"
    "time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0.3)\n"
    "pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0\n"
    "digest, total = hashlib.sha256(), 0\n"
    "while data := os.read(0, 1 << 16):\n"
    "    digest.update(data)\n"
    "    total += len(data)\n"
    "    time.sleep(pause)\n"
    "print(total, digest.hexdigest(), flush=True)\n"
)


def expected_report(data: bytes) -> bytes:
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}\n".encode()


class PushProducer:
    """A streaming producer: a task writes chunks while it is not paused, and
    records every call it gets with the queue's size at that moment."""

    def __init__(self, transport: Any, chunks: list[bytes]) -> None:
        self.transport = transport
        self.chunks = list(chunks)
        self.calls: list[tuple[str, int]] = []
        self.paused = False
        self.resumed = trio.Event()
        self.stopped = False

    def _buffered(self) -> int:
        return int(self.transport.statistics().fds[0].buffered)

    def pauseProducing(self) -> None:
        self.calls.append(("pause", self._buffered()))
        self.paused = True
        self.resumed = trio.Event()

    def resumeProducing(self) -> None:
        self.calls.append(("resume", self._buffered()))
        self.paused = False
        self.resumed.set()

    def stopProducing(self) -> None:
        self.calls.append(("stop", 0))
        self.stopped = True
        self.resumed.set()

    async def run(self) -> None:
        while self.chunks and not self.stopped:
            if self.paused:
                await self.resumed.wait()
                continue
            self.transport.write(self.chunks.pop(0))
            await trio.lowlevel.checkpoint()


async def test_streaming_producer_is_paused_and_resumed_at_the_watermarks() -> None:
    """pauseProducing() once the queue passes the high mark, resumeProducing()
    once it falls below the low mark: alternating, once per crossing; and
    every byte arrives (the child prints a hash)."""
    data = bytes(range(256)) * 16 * 1024  # 4 MiB
    chunks = [data[i : i + 50_000] for i in range(0, len(data), 50_000)]
    protocol = Recorder()
    async with trioproc.spawn(
        [*SLOW_HASHER, "0.2", "0.002"], protocol, high_water=100_000, low_water=20_000
    ) as transport:
        producer = PushProducer(transport, chunks)
        transport.registerProducer(producer, True)
        assert transport.statistics().producer == "streaming"
        await producer.run()
        transport.unregisterProducer()
        transport.closeStdin()
    assert protocol.out(1) == expected_report(data)
    kinds = [kind for kind, _ in producer.calls]
    assert kinds[0] == "pause"
    assert kinds.count("pause") >= 2
    assert all(a != b for a, b in itertools.pairwise(kinds)), kinds
    for kind, buffered in producer.calls:
        if kind == "pause":
            assert buffered > 100_000
        else:
            assert buffered < 20_000


async def test_pull_producer_is_asked_for_more_each_time_there_is_room() -> None:
    """A pull producer gets resumeProducing() at registration and each time
    the writer wants more; everything it writes arrives."""
    data = bytes(range(256)) * 8 * 1024  # 2 MiB
    protocol = Recorder()

    class Pull:
        def __init__(self, transport: Any) -> None:
            self.transport = transport
            self.offset = 0
            self.resumes = 0
            self.stopped = False

        def resumeProducing(self) -> None:
            self.resumes += 1
            if self.offset < len(data):
                self.transport.write(data[self.offset : self.offset + 32_768])
                self.offset += 32_768
            else:
                self.transport.unregisterProducer()
                self.transport.closeStdin()

        def stopProducing(self) -> None:
            self.stopped = True

    async with trioproc.spawn(SLOW_HASHER, protocol) as transport:
        producer = Pull(transport)
        transport.registerProducer(producer, False)
        assert producer.resumes == 1  # asked at registration
        assert transport.statistics().producer == "pull"
        await protocol.wait_for_output(b"\n")
    assert protocol.out(1) == expected_report(data)
    assert producer.resumes == len(data) // 32_768 + 1
    assert not producer.stopped  # it unregistered itself first


async def test_send_all_delivers_every_byte_in_order() -> None:
    """stdin.send_all() of 8 MB waits for room and every byte arrives."""
    data = bytes(range(256)) * 32 * 1024
    protocol = Recorder()
    async with trioproc.spawn(SLOW_HASHER, protocol) as transport:
        assert transport.stdin is not None
        await transport.stdin.send_all(data)
        # send_all() queues no more than the high-water mark (64 KiB).
        assert transport.statistics().fds[0].buffered <= 64 * 1024
        await transport.stdin.aclose()
    assert protocol.out(1) == expected_report(data)


async def test_send_all_copies_what_it_queues_from_a_mutable_buffer() -> None:
    """A bytearray reused once send_all() returns: the child still reads what
    it held at the call, including the part that waited in the queue."""
    # More than a new pipe holds (16 pages), so part of it waits in the queue.
    data = bytes(range(256)) * ((16 * mmap.PAGESIZE + 36 * 1024) // 256)
    buffer = bytearray(data)
    protocol = Recorder()
    async with trioproc.spawn(SLOW_HASHER, protocol) as transport:
        assert transport.stdin is not None
        await transport.stdin.send_all(buffer)
        assert transport.statistics().fds[0].buffered > 0  # some of it queued
        buffer[:] = bytes(len(buffer))
        await transport.stdin.aclose()
    assert protocol.out(1) == expected_report(data)


def test_a_pipe_broken_between_pieces_reports_what_was_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The child's end goes away after the first piece of a write: the count
    says what the pipe took, and the next write meets EPIPE."""
    read_end, write_end = os.pipe()
    real_write = os.write
    writes: list[int] = []

    def write_then_lose_the_reader(fd: int, data: bytes) -> int:
        writes.append(real_write(fd, data))
        if len(writes) == 1:
            os.close(read_end)
        return writes[-1]

    try:
        monkeypatch.setattr(os, "write", write_then_lose_the_reader)
        piece = 2 * mmap.PAGESIZE
        assert _write_pages(write_end, memoryview(bytes(3 * piece))) == piece
        assert writes == [piece]
        monkeypatch.undo()
        with pytest.raises(BrokenPipeError):
            _write_pages(write_end, memoryview(b"more"))
    finally:
        os.close(write_end)


async def test_a_second_producer_is_refused_and_unregister_is_always_safe() -> None:
    """registerProducer() with one registered is a RuntimeError."""

    class Quiet:
        def resumeProducing(self) -> None:
            pass

        def stopProducing(self) -> None:
            pass

        def pauseProducing(self) -> None:
            pass

    transport_after: Any = None
    async with trioproc.spawn(CAT, Recorder()) as transport:
        transport.unregisterProducer()  # none registered: fine
        transport.registerProducer(Quiet(), True)
        with pytest.raises(RuntimeError, match="a producer is registered already"):
            transport.registerProducer(Quiet(), True)
        transport.unregisterProducer()
        transport.registerProducer(Quiet(), False)
        transport.unregisterProducer()
        transport_after = transport
    transport_after.unregisterProducer()  # after the block: still fine


class Stoppable:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def stopProducing(self) -> None:
        self.calls.append("stop")


async def test_a_producer_without_stdin_is_stopped_at_once() -> None:
    """With no fd 0 to write to, the producer gets stopProducing()."""
    async with trioproc.spawn(["true"], Recorder(), child_fds={1: "r"}) as transport:
        producer = Stoppable()
        transport.registerProducer(producer, True)
        assert producer.calls == ["stop"]
        assert transport.statistics().producer is None


async def test_a_producer_is_stopped_when_the_child_closes_its_stdin() -> None:
    """The child closing its stdin: childConnectionLost(0) fires, pending data
    is dropped, and the producer gets stopProducing()."""
    protocol = Recorder()
    child = python("import os, time\nos.read(0, 10)\nos.close(0)\ntime.sleep(0.5)\n")
    producer = Stoppable()
    async with trioproc.spawn(child, protocol, high_water=1000, low_water=100) as t:
        t.registerProducer(producer, True)
        t.write(b"x" * 3_000_000)  # past even a grown pipe: queued, then dropped
        await protocol.wait_for(lambda: ("lost", 0) in protocol.events)
        assert t.returncode is None
        assert t.statistics().fds[0].buffered == 0
        t.write(b"dropped quietly")
    assert producer.calls == ["pause", "stop"]
    assert protocol.events.index(("lost", 0)) < protocol.kinds().index("exited")


async def test_a_producer_is_stopped_when_stdin_is_closed() -> None:
    """closeStdin(): once the queue is flushed and fd 0 closed, the producer
    still registered gets stopProducing()."""
    producer = Stoppable()
    protocol = Recorder()
    async with trioproc.spawn(CAT, protocol) as transport:
        transport.registerProducer(producer, True)
        transport.write(b"last words")
        transport.closeStdin()
        await protocol.wait_for(lambda: ("lost", 0) in protocol.events)
        assert producer.calls == ["stop"]
        # fd 0 is gone: a new producer is stopped at once.
        late = Stoppable()
        transport.registerProducer(late, False)
        assert late.calls == ["stop"]
    assert protocol.out(1) == b"last words"


async def test_paused_reading_holds_ten_megabytes_then_delivers_them() -> None:
    """pauseProducing(): no outReceived while the child writes 10 MB (it
    blocks on the full pipe); after resumeProducing() everything arrives."""
    protocol = Recorder()
    child = python(
        "import sys, hashlib\n"
        "data = bytes(range(256)) * 40960\n"
        "sys.stdout.buffer.write(data); sys.stdout.flush()\n"
        "sys.stderr.write(hashlib.sha256(data).hexdigest())\n"
    )
    async with trioproc.spawn(child, protocol) as transport:
        transport.pauseProducing()
        assert transport.statistics().fds[1].paused
        await trio.sleep(0.5)
        assert protocol.out(1) == b""
        assert ("data", 1) not in protocol.events
        assert transport.returncode is None
        transport.resumeProducing()
    out = protocol.out(1)
    assert len(out) == 10 * 1024 * 1024
    assert hashlib.sha256(out).hexdigest().encode() == protocol.out(2)


async def test_a_child_exiting_with_ten_megabytes_queued_ends_cleanly() -> None:
    """The child exits while 10 MB wait for it: the data is dropped, nothing
    raises, nothing hangs."""
    protocol = Recorder()
    child = python("import os; os.read(0, 1000)")
    async with trioproc.spawn(child, protocol) as transport:
        transport.write(b"y" * 10_000_000)
        await protocol.exited.wait()
        transport.write(b"and more, dropped")
    assert transport.returncode == 0
    assert protocol.events[-1] == ("ended", "ProcessDone", 0, None)


async def test_cancelled_send_all_leaves_a_usable_transport() -> None:
    """send_all() cancelled mid-way: `committed` bytes still arrive, in order,
    followed by what is written later; the block closes cleanly."""
    data = bytes(range(256)) * 40 * 1024  # 10 MiB
    protocol = Recorder()
    async with trioproc.spawn([*SLOW_HASHER, "0.5"], protocol) as transport:
        stdin = transport.stdin
        assert stdin is not None
        with trio.move_on_after(0.2) as scope:
            await stdin.send_all(data)
        assert scope.cancelled_caught
        assert 0 < stdin.committed < len(data)
        sent = data[: stdin.committed]
        await stdin.send_all(b"tail")
        await stdin.aclose()
    assert protocol.out(1) == expected_report(sent + b"tail")


async def test_stop_producing_on_the_transport_closes_everything() -> None:
    """transport.stopProducing() (the transport as a producer of output)
    closes every fd; the child is left to exit by itself."""
    protocol = Recorder()
    async with trioproc.spawn(["sleep", "0.2"], protocol) as transport:
        transport.stopProducing()
        await protocol.wait_for(lambda: protocol.kinds().count("lost") == 3)
        assert transport.returncode is None
    assert transport.returncode == 0


async def test_statistics_report_each_fd_and_the_producer() -> None:
    """statistics() is a frozen snapshot of buffers, pauses and closes."""
    async with trioproc.spawn(["sleep", "30"]) as transport:
        stats = transport.statistics()
        assert set(stats.fds) == {0, 1, 2}
        assert stats.fds[0] == trioproc.FDStatistics(0, "w", 0, False, False)
        assert (stats.high_water, stats.low_water) == (64 * 1024, 16 * 1024)
        transport.write(b"z" * 500_000)  # sleep never reads
        transport.closeStderr()
        stats = transport.statistics()
        assert stats.fds[0].buffered > 64 * 1024
        assert stats.fds[0].paused
        assert stats.fds[2].closed or stats.fds[2].direction == "r"
        with pytest.raises(AttributeError):
            stats.producer = "pull"  # type: ignore[misc]
        transport.signalProcess(signal.SIGKILL)
    final = transport.statistics()
    assert all(fd.closed for fd in final.fds.values())


def test_bad_water_marks_are_refused() -> None:
    """Water marks must be byte counts with low <= high."""
    with pytest.raises(ValueError, match="low_water <= high_water"):
        trioproc.spawn(CAT, high_water=100, low_water=200)
    with pytest.raises(TypeError, match="high_water must be a number of bytes"):
        trioproc.spawn(CAT, high_water=1.5)  # type: ignore[arg-type]


async def test_a_paused_protocol_hears_the_rest_when_cancelled() -> None:
    """A cancelled block delivers what the child had written, even to a
    protocol that paused: pauseProducing() is flow control while the block
    runs, and the block's end lifts it, as a normal end does, so no byte the
    child wrote is lost."""

    class Paused(Recorder):
        def connectionMade(self) -> None:
            super().connectionMade()
            assert self.transport is not None
            self.transport.pauseProducing()

    protocol = Paused()
    with trio.move_on_after(0.5):
        async with trioproc.spawn(
            ["sh", "-c", "head -c 1000 /dev/zero; exec sleep 30"], protocol
        ):
            await trio.sleep_forever()
    assert protocol.out(1) == b"\0" * 1000
    assert protocol.kinds()[-1] == "ended"
