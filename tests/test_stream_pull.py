"""Stream mode reads the fd in the reader's task (`trioproc._os._reader.Reader.
read_now` and ``read_some``): the edges of that path. Each pins behaviour the
pump-fed stream had too, so that the pulled one keeps it."""

from __future__ import annotations

import hashlib

import pytest
import trio

import trioproc

from .helpers import CAT, python


async def test_a_reader_cancelled_mid_read_loses_no_byte() -> None:
    """Reads cancelled while they wait on the fd (and between) take nothing:
    every byte the child wrote arrives, in order."""
    child = python(
        "import os, sys, time\n"
        "for i in range(200):\n"
        "    os.write(1, bytes([i]) * 1000)\n"
        "    time.sleep(0.002)\n"
    )
    expected = b"".join(bytes([i]) * 1000 for i in range(200))
    got = bytearray()
    cancelled = 0
    async with trioproc.spawn(child) as transport:
        stdout = transport.stdout
        assert stdout is not None
        while True:
            with trio.move_on_after(0.001) as scope:
                data = await stdout.receive_some(700)
                if not data:
                    break
                got += data
            cancelled += scope.cancelled_caught
    assert hashlib.sha256(got).digest() == hashlib.sha256(expected).digest()
    assert cancelled > 0  # some reads were cancelled while they waited


async def test_a_cancelled_read_of_output_waiting_in_the_pipe_takes_nothing() -> None:
    """A read that would find output at once (in the pipe, not yet in the
    stream's buffer) is still a cancel point: cancelled, it takes nothing,
    and the next read returns those bytes; so does one of a larger chunk."""
    child = python(
        "import os, sys\n"
        "os.write(1, b'first chunk')\n"
        "os.write(2, b'1')\n"
        "sys.stdin.readline()\n"
        "os.write(1, b'x' * 50000)\n"
        "os.write(2, b'2')\n"
        "sys.stdin.read()\n"
    )
    async with trioproc.spawn(child) as transport:
        stdout, stderr, stdin = transport.stdout, transport.stderr, transport.stdin
        assert stdout is not None
        assert stderr is not None
        assert stdin is not None
        for expected in (b"first chunk", b"x" * 50000):
            assert len(await stderr.receive_some(1)) == 1  # written to the pipe
            with trio.CancelScope() as scope:
                scope.cancel()
                await stdout.receive_some()
            assert scope.cancelled_caught
            got = b""
            while len(got) < len(expected):
                got += await stdout.receive_some()
            assert got == expected
            await stdin.send_all(b"next\n")
        await stdin.aclose()


async def test_two_readers_at_once_raise_busy() -> None:
    """A second task receiving while the first waits on the fd gets
    BusyResourceError; the first still gets the data."""
    async with trioproc.spawn(CAT) as transport:
        stdout, stdin = transport.stdout, transport.stdin
        assert stdout is not None
        assert stdin is not None
        first: list[bytes] = []
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                first.append(await stdout.receive_some())

            nursery.start_soon(read)
            await trio.sleep(0.1)
            with pytest.raises(trio.BusyResourceError):
                await stdout.receive_some()
            with pytest.raises(trio.BusyResourceError):
                await anext(stdout.lines())
            await stdin.send_all(b"hello\n")
        assert first == [b"hello\n"]
        await stdin.aclose()


async def test_end_of_file_after_a_partial_read() -> None:
    """A read smaller than what the child wrote leaves the rest for the
    next; end of file comes after the last byte, then stays."""
    async with trioproc.spawn(["printf", "abcdef"]) as transport:
        stdout = transport.stdout
        assert stdout is not None
        assert await stdout.receive_some(2) == b"ab"
        await transport.wait()
        assert await stdout.receive_some(3) == b"cde"
        assert await stdout.receive_some() == b"f"
        assert await stdout.receive_some() == b""
        assert await stdout.receive_some() == b""
        assert transport.statistics().fds[1].closed


async def test_a_read_while_pause_producing_holds_waits_until_resumed() -> None:
    """pauseProducing(): a stream read finds nothing written after the pause
    and waits; resumeProducing() lets it read."""
    async with trioproc.spawn(CAT) as transport:
        stdout, stdin = transport.stdout, transport.stdin
        assert stdout is not None
        assert stdin is not None
        transport.pauseProducing()
        await stdin.send_all(b"after the pause\n")
        await trio.sleep(0.2)  # cat has written it back by now
        with trio.move_on_after(0.3) as scope:
            await stdout.receive_some()
        assert scope.cancelled_caught
        assert transport.statistics().fds[1].paused
        transport.resumeProducing()
        assert await stdout.receive_some() == b"after the pause\n"
        await stdin.aclose()


async def test_a_waiting_read_sees_the_end_when_the_fd_is_closed() -> None:
    """closeChildFD(1) while a read waits, on the fd or on pauseProducing:
    the pump closes the fd and reports the end of file, and the read returns
    it rather than wait for ever.

    The read and the pump are woken by the same change, in an order the
    scheduler picks, so this runs a few times each way."""
    for paused in [False, True] * 6:
        with trio.fail_after(5):
            async with trioproc.spawn(CAT) as transport:
                stdout = transport.stdout
                assert stdout is not None
                if paused:
                    transport.pauseProducing()
                got: list[bytes] = []
                async with trio.open_nursery() as nursery:

                    async def read() -> None:
                        got.append(await stdout.receive_some())  # noqa: B023

                    nursery.start_soon(read)
                    await trio.sleep(0.01)
                    transport.closeChildFD(1)
                assert got == [b""]
                transport.closeStdin()


async def test_a_read_held_by_pause_producing_returns_what_was_taken_meanwhile() -> (
    None
):
    """A read waiting out pauseProducing while statistics() takes what the
    child wrote into the stream's buffer: once resumed, the read returns
    that, rather than wait on the fd for more."""
    with trio.fail_after(5):
        async with trioproc.spawn(CAT) as transport:
            stdout, stdin = transport.stdout, transport.stdin
            assert stdout is not None
            assert stdin is not None
            got: list[bytes] = []
            async with trio.open_nursery() as nursery:

                async def read() -> None:
                    got.append(await stdout.receive_some())

                transport.pauseProducing()
                nursery.start_soon(read)
                await stdin.send_all(b"during the pause\n")
                await trio.sleep(0.2)  # cat has written it back by now
                transport.statistics()  # takes it from the pipe (pulled fd)
                assert not got
                transport.resumeProducing()
            assert got == [b"during the pause\n"]
            await stdin.aclose()
