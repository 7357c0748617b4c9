"""OutputStream.lines() and OutputStream.expect(): reading output by lines and
by prompts (SPEC section 9), on one buffer shared with receive_some()."""

from __future__ import annotations

import io
import random
import re

import pytest
import trio
import trio.lowlevel

import trioproc
from trioproc._streams import MAX_LINE, OUTPUT_BUFFER
from trioproc.testing import FakeProcessTransport

from .helpers import CAT, python


async def collect(stream: trioproc.OutputStream, **kwargs: int) -> list[bytes]:
    return [line async for line in stream.lines(**kwargs)]


async def send_and_close(stream: trio.abc.SendStream, data: bytes) -> None:
    await stream.send_all(data)
    await stream.aclose()


async def buffered(transport: trioproc.ProcessTransport, size: int) -> None:
    """Return once fd 1 of *transport* has at least *size* bytes buffered."""
    # A bounded poll: no event tells the parent what a pump has read.
    while transport.statistics().fds[1].buffered < size:  # noqa: ASYNC110
        await trio.sleep(0.01)


async def test_lines_are_what_file_iteration_gives() -> None:
    """Every line ends in b"\\n" but the last, as ``for line in file`` gives
    them, whatever the pipe's chunks were: lines spanning chunks, empty
    lines, and a final line without its newline."""
    rng = random.Random(17)
    words = [b"x" * rng.choice([0, 1, 5, 40, 300, 5000]) for _ in range(20_000)]
    data = b"\n".join(words) + b"tail without newline"
    async with trioproc.spawn(CAT) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_and_close, child.stdin, data)
            got = await collect(child.stdout)
    assert got == list(io.BytesIO(data))
    assert got[-1] == b"tail without newline"


async def test_lines_split_at_any_chunk_boundary() -> None:
    """The same lines whatever the chunks (played with the fake transport,
    which delivers exactly the chunks it is given)."""
    fake = FakeProcessTransport()
    assert fake.stdout is not None
    pieces = [b"a", b"b\nc", b"\n", b"\n\nd", b"ef", b"g\nh"]
    for piece in pieces:
        fake.deliver(1, piece)
    fake.lose(1)
    assert await collect(fake.stdout) == [
        b"ab\n",
        b"c\n",
        b"\n",
        b"\n",
        b"defg\n",
        b"h",
    ]


async def test_receive_some_gets_what_lines_left_buffered() -> None:
    """Bytes that lines() buffered but did not return are not lost: after a
    ``break``, receive_some() returns them, and lines() can take over again."""
    async with trioproc.spawn(CAT) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        await child.stdin.send_all(b"one\ntwo\nthree\nfour\nfive")
        await child.stdin.aclose()
        await buffered(child, 23)
        async for line in child.stdout.lines():
            assert line == b"one\n"
            break
        assert await child.stdout.receive_some(3) == b"two"
        assert await anext(child.stdout.lines()) == b"\n"
        assert await anext(child.stdout.lines()) == b"three\n"
        assert await child.stdout.receive_some() == b"four\nfive"
        assert await collect(child.stdout) == []


async def test_stderr_has_lines_too() -> None:
    """stderr is an OutputStream as well: lines() works there."""
    child_argv = python("import sys; sys.stderr.write('e1\\ne2\\n')")
    async with trioproc.spawn(child_argv) as child:
        assert child.stderr is not None
        assert await collect(child.stderr) == [b"e1\n", b"e2\n"]


async def test_a_line_longer_than_max_line_raises_and_loses_nothing() -> None:
    """A line over max_line is a LineTooLong (a ValueError), not a growing
    buffer; a line of exactly max_line bytes passes; the long line's bytes
    stay readable with receive_some()."""
    async with trioproc.spawn(CAT) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        await child.stdin.send_all(b"x" * 9 + b"\n" + b"y" * 20 + b"\nz\n")
        await child.stdin.aclose()
        await buffered(child, 33)
        lines = child.stdout.lines(max_line=10)
        assert await anext(lines) == b"x" * 9 + b"\n"
        with pytest.raises(trioproc.LineTooLong, match="max_line=10") as info:
            await anext(lines)
        assert isinstance(info.value, ValueError)
        assert await child.stdout.receive_some(21) == b"y" * 20 + b"\n"
        assert await anext(lines) == b"z\n"


@pytest.mark.deadline(20)
async def test_default_max_line_reads_past_the_stream_buffer_and_stays_bounded() -> (
    None
):
    """A line longer than the stream's pause threshold (256 KiB) but within
    max_line (1 MiB) is read: the pump does not stay paused while a line
    waits for its end. A line without end stops at max_line, with the
    buffer bounded near it, while the child is blocked, not buffered."""
    long_line = b"L" * (OUTPUT_BUFFER * 2) + b"\n"
    endless = python("import os\nwhile True:\n    os.write(1, b'E' * 65536)\n")
    async with trioproc.spawn(CAT) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(child.stdin.send_all, long_line + b"short\n")
            assert await anext(child.stdout.lines()) == long_line
            assert await anext(child.stdout.lines()) == b"short\n"
    async with trioproc.spawn(endless) as child:
        assert child.stdout is not None
        with pytest.raises(trioproc.LineTooLong):
            await anext(child.stdout.lines())
        size = child.statistics().fds[1].buffered
        assert MAX_LINE < size <= MAX_LINE + (1 << 17)
        await trio.sleep(0.2)  # the child would fill memory if it were read
        assert child.statistics().fds[1].buffered == size
        assert child.statistics().fds[1].paused


async def test_lines_rejects_a_bad_max_line() -> None:
    """max_line is an int >= 1, checked when lines() is called."""
    fake = FakeProcessTransport()
    assert fake.stdout is not None
    with pytest.raises(ValueError, match="max_line"):
        fake.stdout.lines(max_line=0)
    for bad in ("10", True, 1.5):
        with pytest.raises(TypeError, match="max_line"):
            fake.stdout.lines(max_line=bad)  # type: ignore[arg-type]


async def test_a_cancelled_line_takes_nothing() -> None:
    """A step of lines() cancelled while waiting for the rest of a line
    leaves the part it saw buffered: the next step returns the whole line."""
    async with trioproc.spawn(CAT) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        lines = child.stdout.lines()
        await child.stdin.send_all(b"par")
        await buffered(child, 3)
        with trio.move_on_after(0.1) as scope:
            await anext(lines)
        assert scope.cancelled_caught
        with trio.CancelScope() as scope:
            scope.cancel()
            await anext(lines)  # cancelled at its first checkpoint
        await child.stdin.send_all(b"tial\n")
        assert await anext(lines) == b"partial\n"


async def test_lines_and_receive_some_at_once_are_busy() -> None:
    """A task waiting in lines() (or expect()) holds the stream: another
    receive is a BusyResourceError, as for two receive_some() calls."""
    async with trioproc.spawn(CAT) as child:
        assert child.stdout is not None
        stdout = child.stdout
        async with trio.open_nursery() as nursery:
            nursery.start_soon(anext, stdout.lines())
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await stdout.receive_some()
            with pytest.raises(trio.BusyResourceError):
                await stdout.expect(b"x")
            nursery.cancel_scope.cancel()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stdout.expect, b"x")
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await anext(stdout.lines())
            nursery.cancel_scope.cancel()


async def test_closing_the_stream_ends_lines_and_expect_with_closed() -> None:
    """aclose() wakes a waiting lines() with ClosedResourceError; a closed
    stream refuses lines() and expect() at once."""
    async with trioproc.spawn(CAT) as child:
        assert child.stdout is not None
        stdout = child.stdout

        async def close_soon() -> None:
            await trio.testing.wait_all_tasks_blocked()
            await stdout.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(close_soon)
            with pytest.raises(trio.ClosedResourceError):
                await anext(stdout.lines())
        with pytest.raises(trio.ClosedResourceError):
            await anext(stdout.lines())
        with pytest.raises(trio.ClosedResourceError):
            await stdout.expect(b"x")


async def test_expect_returns_the_match_and_keeps_what_follows() -> None:
    """expect() matches output since the previous match: m.string[:m.start()]
    is what came before; what came after the match is the next read's."""
    async with trioproc.spawn(CAT) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        await child.stdin.send_all(b"hello> world> abc\nrest")
        first = await child.stdout.expect(b"> ")
        assert first.string[: first.start()] == b"hello"
        second = await child.stdout.expect(re.compile(rb">\s"))
        assert second.string[: second.start()] == b"world"
        third = await child.stdout.expect(rb"(b)")
        assert third.string[: third.start()] == b"a"
        assert third.group(1) == b"b"
        assert await anext(child.stdout.lines()) == b"c\n"
        await child.stdin.aclose()
        assert await child.stdout.receive_some() == b"rest"


async def test_expect_waits_for_output_that_comes_in_pieces() -> None:
    """A pattern split across chunks is found once its last piece arrives."""
    fake = FakeProcessTransport()
    assert fake.stdout is not None
    stdout = fake.stdout
    async with trio.open_nursery() as nursery:
        found: list[re.Match[bytes]] = []

        async def expect() -> None:
            found.append(await stdout.expect(rb"\(Pdb\) "))

        nursery.start_soon(expect)
        for piece in (b"> frame\n(P", b"db", b") ", b"after"):
            await trio.testing.wait_all_tasks_blocked()
            fake.deliver(1, piece)
    assert found[0].string[: found[0].start()] == b"> frame\n"
    assert await stdout.receive_some() == b"after"


async def test_expect_with_a_list_says_which_pattern_matched() -> None:
    """With a list, the earliest match wins (the earlier pattern on a tie),
    and m.re is that pattern: the compiled one given, or one whose
    .pattern is the bytes given."""
    prompt = re.compile(rb"\.\.\. ")
    fake = FakeProcessTransport()
    assert fake.stdout is not None
    fake.deliver(1, b"x ... y >>> ab")
    m = await fake.stdout.expect([b">>> ", prompt])
    assert m.re is prompt
    m = await fake.stdout.expect([b">>> ", prompt])
    assert m.re.pattern == b">>> "
    m = await fake.stdout.expect([b"ab", b"a"])
    assert m.re.pattern == b"ab"


async def test_expect_at_end_of_output_raises_eof_with_the_unread_output() -> None:
    """The output ending before a match is an EOFError (UnexpectedEOF) that
    carries what was received since the previous match."""
    async with trioproc.spawn(CAT) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        await child.stdin.send_all(b"$ partial")
        await child.stdout.expect(rb"\$ ")
        await child.stdin.aclose()
        with pytest.raises(EOFError) as info:
            await child.stdout.expect(b"never")
        assert isinstance(info.value, trioproc.UnexpectedEOF)
        assert info.value.output == b"partial"
        assert "b'never'" in str(info.value)
        assert await child.stdout.receive_some() == b""
        with pytest.raises(trioproc.UnexpectedEOF) as info:
            await child.stdout.expect(b"never")
        assert info.value.output == b""


async def test_expect_times_out_with_trio_and_keeps_the_output() -> None:
    """No timeout argument: trio.move_on_after() bounds expect(), and the
    output it saw is still there to read."""
    async with trioproc.spawn(CAT) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        await child.stdin.send_all(b"no prompt here")
        with trio.move_on_after(0.2) as scope:
            await child.stdout.expect(b"\\$ ")
        assert scope.cancelled_caught
        assert await child.stdout.receive_some() == b"no prompt here"


@pytest.mark.deadline(20)
async def test_expect_searches_a_bounded_window() -> None:
    """Output older than the window is dropped unmatched, so a chatty child
    cannot fill memory before its prompt; a window larger than the stream's
    pause threshold still lets a large match through."""
    chatty = python(
        "import os\n"
        "for _ in range(64):\n"
        "    os.write(1, b'.' * 65536)\n"
        "os.write(1, b'BEGIN' + b'x' * 600000 + b'END>')\n"
    )
    async with trioproc.spawn(chatty) as child:
        assert child.stdout is not None
        m = await child.stdout.expect(b">", window=1 << 20)
        assert len(m.string) <= (1 << 20) + (1 << 17)  # not the whole 4 MiB
        m = re.search(rb"BEGIN(x*)END>", m.string)
        assert m is not None
        assert len(m.group(1)) == 600000
    async with trioproc.spawn(chatty) as child:
        assert child.stdout is not None
        m = await child.stdout.expect(b"END>", window=4096)
        assert len(m.string) <= 4096 + (1 << 17)


async def test_expect_rejects_bad_patterns_and_windows() -> None:
    """Patterns are bytes (or compiled from bytes); the window an int >= 1."""
    fake = FakeProcessTransport()
    assert fake.stdout is not None
    for bad in ("text", re.compile("text"), [b"ok", "text"], 3):
        with pytest.raises(TypeError, match="bytes"):
            await fake.stdout.expect(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        await fake.stdout.expect([])
    with pytest.raises(ValueError, match="window"):
        await fake.stdout.expect(b"x", window=0)
    with pytest.raises(TypeError, match="window"):
        await fake.stdout.expect(b"x", window=1.5)  # type: ignore[arg-type]


async def test_expect_drives_a_repl_on_a_pty() -> None:
    """The use expect() is for: a Python REPL on a pseudo-terminal."""
    async with trioproc.spawn(
        python("import code; code.interact(banner='', exitmsg='bye')"), pty=True
    ) as repl:
        assert repl.stdin is not None
        assert repl.stdout is not None
        await repl.stdout.expect(b">>> ")
        await repl.stdin.send_all(b"6 * 7\n")
        m = await repl.stdout.expect([b">>> ", b"\\.\\.\\. "])
        assert m.re.pattern == b">>> "
        assert m.string[: m.start()].split() == [b"6", b"*", b"7", b"42"]
        await repl.stdin.aclose()
        with pytest.raises(trioproc.UnexpectedEOF) as info:
            await repl.stdout.expect(b">>> ")
        assert b"bye" in info.value.output
        assert await repl.wait() == 0


async def test_lines_lets_other_tasks_run_while_it_reads_a_fast_child() -> None:
    """lines() yields to the scheduler at least once per 64 KiB of lines, so
    a reader of a child that prints as fast as it can does not starve the
    program's other tasks."""
    import trioproc

    ticks = 0
    total = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await trio.lowlevel.checkpoint()
            ticks += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        async with trioproc.spawn(
            ["sh", "-c", "yes 0123456789abcdef0123456789abcdef | head -c 8000000"]
        ) as child:
            assert child.stdout is not None
            async for line in child.stdout.lines():
                total += len(line)
        nursery.cancel_scope.cancel()
    assert total == 8_000_000
    assert ticks >= 8_000_000 // (1 << 16) // 2
