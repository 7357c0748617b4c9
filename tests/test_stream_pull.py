"""Stream mode reads the fd in the reader's task (`trioproc._os._reader.Reader.
read_some`): the edges of that path. Each pins behaviour the pump-fed stream
had too, so that the pulled one keeps it."""

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
