"""Stream mode (SPEC section 5) and transport.stdin as a Trio SendStream."""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
from collections.abc import Awaitable, Callable

import pytest
import trio

import trioproc

from .helpers import CAT, Recorder, python


async def read_all(stream: trio.abc.ReceiveStream) -> bytes:
    chunks = []
    while chunk := await stream.receive_some():
        chunks.append(chunk)
    return b"".join(chunks)


async def test_stream_mode_exposes_stdin_stdout_stderr() -> None:
    """protocol=None: fds are Trio streams, and end of file is b""."""
    child = python(
        "import sys\n"
        "data = sys.stdin.read()\n"
        "sys.stdout.write(data[::-1]); sys.stderr.write('len=%d' % len(data))\n"
    )
    async with trioproc.spawn(child) as transport:
        assert transport.stdin
        assert transport.stdout
        assert transport.stderr
        await transport.stdin.send_all(b"stressed")
        await transport.stdin.aclose()
        assert await read_all(transport.stdout) == b"desserts"
        assert await read_all(transport.stderr) == b"len=8"
        assert await transport.wait() == 0


async def test_send_all_and_write_share_one_queue_in_order() -> None:
    """stdin.send_all() and write() interleave in call order."""
    async with trioproc.spawn(CAT) as transport:
        assert transport.stdin
        assert transport.stdout
        transport.write(b"1-")
        await transport.stdin.send_all(b"2-")
        transport.write(b"3-")
        await transport.stdin.send_all(bytearray(b"4-"))
        await transport.stdin.send_all(memoryview(b"5"))
        transport.closeStdin()
        assert await read_all(transport.stdout) == b"1-2-3-4-5"


async def test_large_send_all_waits_for_room_and_arrives_whole() -> None:
    """send_all() of 5 MB waits while the child reads slowly; all of it arrives."""
    child = python(
        "import hashlib, os, sys, time\n"
        "digest, total = hashlib.sha256(), 0\n"
        "time.sleep(0.1)\n"
        "while data := os.read(0, 65536):\n"
        "    digest.update(data); total += len(data)\n"
        "print(total, digest.hexdigest())\n"
    )
    payload = bytes(range(256)) * 20_000
    async with trioproc.spawn(child) as transport:
        assert transport.stdin
        assert transport.stdout
        await transport.stdin.send_all(payload)
        assert transport.stdin.committed == len(payload)
        await transport.stdin.aclose()
        expected = f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n".encode()
        assert await read_all(transport.stdout) == expected


async def test_send_all_concurrently_is_busy() -> None:
    """Two tasks in send_all() at once is a BusyResourceError, as Trio streams do."""
    child = python("import time; time.sleep(30)")  # never reads
    async with trioproc.spawn(child) as transport:
        stdin = transport.stdin
        assert stdin is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stdin.send_all, b"x" * 2_000_000)
            await trio.sleep(0.1)
            with pytest.raises(trio.BusyResourceError):
                await stdin.send_all(b"y")
            with pytest.raises(trio.BusyResourceError):
                await stdin.wait_send_all_might_not_block()
            nursery.cancel_scope.cancel()
        assert 0 < stdin.committed < 2_000_000
        await transport.stop()


async def test_an_unread_stream_blocks_the_child_not_memory() -> None:
    """Nobody reads: the pump pauses at the buffer's bound and the child
    blocks on a full pipe, instead of the parent buffering everything."""
    child = python(
        "import sys\n"
        "sys.stdout.buffer.write(b'q' * 20_000_000)\n"
        "print('done', file=sys.stderr)\n"
    )
    async with trioproc.spawn(child) as transport:
        assert transport.stdout
        assert transport.stderr
        await trio.sleep(0.5)
        assert transport.returncode is None  # blocked writing
        assert transport._readers[1].paused
        total = len(await read_all(transport.stdout))
        assert total == 20_000_000
        assert await read_all(transport.stderr) == b"done\n"


async def test_leaving_stream_mode_discards_unread_output() -> None:
    """Unread output is discarded on leaving, and the read ends closed, as
    trio.Process does: a child still writing gets SIGPIPE."""
    async with trioproc.spawn(["yes"]) as transport:
        assert transport.stdout is not None
        assert (await transport.stdout.receive_some(10)) == b"y\ny\ny\ny\ny\n"
    assert transport.returncode == -signal.SIGPIPE


async def test_receive_some_respects_max_bytes_and_validates_it() -> None:
    """max_bytes bounds a chunk; bad values are rejected like Trio's."""
    async with trioproc.spawn(["printf", "abcdef"]) as transport:
        stdout = transport.stdout
        assert stdout is not None
        with pytest.raises(ValueError, match="max_bytes"):
            await stdout.receive_some(0)
        with pytest.raises(TypeError, match="max_bytes"):
            await stdout.receive_some(1.5)  # type: ignore[arg-type]
        assert await stdout.receive_some(2) == b"ab"
        assert await read_all(stdout) == b"cdef"
        assert await stdout.receive_some() == b""


async def test_closing_an_output_stream_discards_and_rejects_reads() -> None:
    """aclose() on stdout closes the fd; further receives raise Closed."""
    async with trioproc.spawn(["yes"]) as transport:
        stdout = transport.stdout
        assert stdout is not None
        await stdout.receive_some(1)
        await stdout.aclose()
        await stdout.aclose()  # idempotent
        with pytest.raises(trio.ClosedResourceError):
            await stdout.receive_some()


async def test_closing_a_stream_wakes_its_reader() -> None:
    """A task waiting in receive_some() is woken by aclose() with Closed."""
    async with trioproc.spawn(["sleep", "30"]) as transport:
        stdout = transport.stdout
        assert stdout is not None

        async def reader() -> None:
            with pytest.raises(trio.ClosedResourceError):
                await stdout.receive_some()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.sleep(0.05)
            await stdout.aclose()
        await transport.stop()


async def test_concurrent_receives_are_busy() -> None:
    """Two readers of one stream at once is a BusyResourceError."""
    async with trioproc.spawn(["sleep", "30"]) as transport:
        stdout = transport.stdout
        assert stdout is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stdout.receive_some)
            await trio.sleep(0.05)
            with pytest.raises(trio.BusyResourceError):
                await stdout.receive_some()
            nursery.cancel_scope.cancel()
        await transport.stop()


async def test_wait_send_all_might_not_block_waits_for_room() -> None:
    """wait_send_all_might_not_block() returns once the queue has room."""
    async with trioproc.spawn(CAT) as transport:
        stdin, stdout = transport.stdin, transport.stdout
        assert stdin
        assert stdout
        await stdin.wait_send_all_might_not_block()
        transport.write(b"x" * 10_000_000)  # far past what the pipes hold
        with trio.move_on_after(0.1) as scope:
            await stdin.wait_send_all_might_not_block()
        assert scope.cancelled_caught  # nobody reads stdout: no room
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all, stdout)
            await stdin.wait_send_all_might_not_block()
            await stdin.aclose()


async def test_protocol_mode_stdin_stream_works_too() -> None:
    """transport.stdin exists in protocol mode and feeds the same writer."""
    protocol = Recorder()
    async with trioproc.spawn(CAT, protocol) as transport:
        assert transport.stdin is not None
        await transport.stdin.send_all(b"via the stream")
        await transport.stdin.aclose()
    assert protocol.out(1) == b"via the stream"


async def test_send_all_to_a_child_that_is_gone_raises_broken() -> None:
    """The child exited and nobody has noticed yet: send_all's own write
    meets the closed pipe and raises, rather than reporting success."""
    async with trioproc.spawn(["true"]) as transport:
        assert transport.stdin is not None
        assert transport.pid is not None
        # Wait for the exit without a checkpoint, so the writer task has not
        # seen the pipe close yet: blocking on purpose.
        os.waitid(os.P_PID, transport.pid, os.WEXITED | os.WNOWAIT)  # noqa: ASYNC222
        with pytest.raises(trio.BrokenResourceError):
            await transport.stdin.send_all(bytearray(300_000))
        assert transport.stdin.committed == 0
        with pytest.raises(trio.BrokenResourceError):
            await transport.stdin.send_all(b"small")


async def test_resume_producing_does_not_lift_a_full_buffer() -> None:
    """Stream mode: the protocol's pause and the buffer's bound are separate
    holds. resumeProducing() does not let the buffer grow past its bound,
    and draining the buffer does not resume what pauseProducing() held."""
    async with trioproc.spawn(["head", "-c", "20000000", "/dev/zero"]) as transport:
        assert transport.stdout is not None
        bound = trioproc._streams.OUTPUT_BUFFER + (1 << 20)
        await trio.sleep(0.3)
        assert transport.statistics().fds[1].paused
        transport.resumeProducing()
        await trio.sleep(0.3)
        assert transport.statistics().fds[1].buffered <= bound
        transport.pauseProducing()
        got = len(await transport.stdout.receive_some())
        with trio.move_on_after(0.3):
            while True:
                got += len(await transport.stdout.receive_some())
        assert got <= bound  # what was buffered, and no more
        assert transport.statistics().fds[1].paused
        transport.resumeProducing()
        got += len(await read_all(transport.stdout))
        assert got == 20_000_000


async def test_unread_output_is_gone_after_the_block() -> None:
    """Leaving the block discards what was buffered and not read: the
    stream is closed, as SPEC section 5 says."""
    async with trioproc.spawn(["printf", "unread"]) as transport:
        await transport.wait()
        await trio.sleep(0.1)  # the output is buffered by now
    assert transport.stdout is not None
    with pytest.raises(trio.ClosedResourceError):
        await transport.stdout.receive_some()


async def _calls_per_step(call: Callable[[], Awaitable[object]], calls: int) -> int:
    """Await *call* *calls* times; return the most calls that ran in one step
    of this task (between two of its trips through the scheduler)."""
    this = trio.lowlevel.current_task()
    done = 0
    steps = [0]

    class Steps(trio.abc.Instrument):
        def before_task_step(self, task: trio.lowlevel.Task) -> None:
            if task is this:
                steps.append(done)

    instrument = Steps()
    trio.lowlevel.add_instrument(instrument)
    try:
        for _ in range(calls):
            await call()
            done += 1
    finally:
        trio.lowlevel.remove_instrument(instrument)
    steps.append(done)
    return max(b - a for a, b in itertools.pairwise(steps))


async def test_calls_that_need_no_wait_let_other_tasks_run_every_16_calls() -> None:
    """A reader of a child that writes faster than it is read, and a writer
    to one that reads faster than it is written, seldom wait. Every call is
    a cancel point, and at least every 16th a schedule point, so the other
    tasks of the program run meanwhile (their deadlines too); not every
    call, which would make each round trip through a child pay three trips
    through the scheduler rather than one."""
    async with trioproc.spawn(["head", "-c", str(1 << 26), "/dev/zero"]) as child:
        assert child.stdout is not None
        stdout = child.stdout
        most = await _calls_per_step(lambda: stdout.receive_some(4096), 4000)
    assert 1 < most <= 16  # most reads found data without waiting
    async with trioproc.spawn(python("import sys; sys.stdin.buffer.read()")) as child:
        assert child.stdin is not None
        stdin = child.stdin
        most = await _calls_per_step(lambda: stdin.send_all(b"x" * 100), 4000)
        assert 1 < most <= 16
        assert 1 < await _calls_per_step(lambda: stdin.send_all(b""), 4000) <= 16


async def test_a_cancelled_receive_that_needs_no_wait_takes_nothing() -> None:
    """The call that would return at once without a schedule point is still
    a cancel point: cancelled, it raises and leaves the bytes for the next."""
    async with trioproc.spawn(python("print('hello')")) as child:
        assert child.stdout is not None
        assert child.stdin is not None
        first = await child.stdout.receive_some(2)
        await child.wait()
        child.statistics()  # the rest is taken into the stream's buffer now
        with trio.CancelScope() as scope:
            scope.cancel()
            await child.stdout.receive_some()
        assert scope.cancelled_caught
        with trio.CancelScope() as scope:
            scope.cancel()
            await child.stdin.send_all(b"never sent")
        assert scope.cancelled_caught
        assert child.stdin.committed == 0
        assert first + await read_all(child.stdout) == b"hello\n"
