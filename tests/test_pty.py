"""Pseudo-terminals (SPEC section 6): children that see a real terminal."""

from __future__ import annotations

import hashlib
import json
import signal

import pytest
import trio

import trioproc

from .helpers import Recorder, open_fds, python

#: Reports what the child sees of its terminal, as JSON, then exits.
TERMINAL_FACTS = python(
    "import json, os\n"
    "print(json.dumps({'isatty': [os.isatty(0), os.isatty(1), os.isatty(2)],\n"
    "    'leads_session': os.getsid(0) == os.getpid(),\n"
    "    'foreground': os.tcgetpgrp(0) == os.getpgrp(),\n"
    "    'tty': os.ttyname(0) == os.ttyname(1) == os.ttyname(2),\n"
    "    'size': list(os.get_terminal_size(0))}))\n"
)


def facts(protocol: Recorder) -> dict[str, object]:
    text = protocol.out(1).decode()
    result: dict[str, object] = json.loads(text[text.index("{") :])
    return result


async def test_the_child_has_a_controlling_terminal() -> None:
    """fds 0, 1 and 2 are one terminal; the child leads a session with it as
    its controlling terminal, and its group is the foreground group."""
    protocol = Recorder()
    async with trioproc.spawn(TERMINAL_FACTS, protocol, pty=True) as transport:
        pass
    assert facts(protocol) == {
        "isatty": [True, True, True],
        "leads_session": True,
        "foreground": True,
        "tty": True,
        "size": [80, 24],
    }
    assert transport.returncode == 0


async def test_dev_tty_opens_in_the_child() -> None:
    """/dev/tty works: programs that insist on the terminal (ssh, sudo) run."""
    result = await trioproc.run(
        python("open('/dev/tty', 'w').write('via /dev/tty\\n')"), pty=True
    )
    assert result.stdout == b"via /dev/tty\r\n"


async def test_pty_size_sets_the_window() -> None:
    """pty=(30, 100) gives the child a 100-column, 30-row window."""
    protocol = Recorder()
    async with trioproc.spawn(TERMINAL_FACTS, protocol, pty=(30, 100)):
        pass
    assert facts(protocol)["size"] == [100, 30]


async def test_resize_sends_sigwinch_with_the_new_size() -> None:
    """resize(40, 120): the child gets SIGWINCH and reads the new size."""
    child = python(
        "import os, signal, sys\n"
        "def changed(*args):\n"
        "    size = os.get_terminal_size(0)\n"
        "    os.write(1, b'winch %d %d\\n' % (size.columns, size.lines))\n"
        "    os._exit(0)\n"
        "signal.signal(signal.SIGWINCH, changed)\n"
        "os.write(1, b'ready\\n')\n"
        "signal.pause()\n"
    )
    protocol = Recorder()
    async with trioproc.spawn(child, protocol, pty=True) as transport:
        await protocol.wait_for_output(b"ready")
        transport.resize(40, 120)
        await protocol.wait_for_output(b"winch")
    assert protocol.out(1).endswith(b"winch 120 40\r\n")
    with pytest.raises(trio.ClosedResourceError):
        transport.resize(10, 10)
    with pytest.raises(ValueError, match="from 1 to 65535"):
        transport.resize(0, 10)


async def test_control_c_interrupts_a_child_with_a_sigint_handler() -> None:
    """Writing ^C to the terminal makes the line discipline send SIGINT."""
    child = python(
        "import os, time\n"
        "try:\n"
        "    os.write(1, b'ready\\n')\n"  # inside: a ^C right after it counts
        "    time.sleep(30)\n"
        "except KeyboardInterrupt:\n"
        "    os.write(1, b'interrupted\\n')\n"
    )
    protocol = Recorder()
    async with trioproc.spawn(child, protocol, pty=True) as transport:
        await protocol.wait_for_output(b"ready")
        transport.write(b"\x03")
    assert b"interrupted" in protocol.out(1)
    assert transport.returncode == 0


async def test_close_stdin_ends_cat_even_after_a_partial_line() -> None:
    """closeStdin() sends the terminal's EOF after pending data; after a
    partial line it takes two, and trioproc sends two."""
    protocol = Recorder()
    async with trioproc.spawn(["cat"], protocol, pty=True) as transport:
        transport.write(b"one line\nand a partial")
        transport.closeStdin()
    assert transport.returncode == 0
    echoed_and_copied = protocol.out(1)
    assert echoed_and_copied.count(b"one line") == 2
    assert echoed_and_copied.endswith(b"and a partial")
    assert ("lost", 0) in protocol.events


async def test_one_eof_after_a_whole_line_sent_in_any_format() -> None:
    """After a line ending in a newline, closing sends one EOF, also when the
    line came to send_all() as a memoryview of another byte format."""
    child = python(
        "import os, select\n"
        "got = b''\n"
        "while data := os.read(0, 100):\n"
        "    got += data\n"
        "ready, _, _ = select.select([0], [], [], 0.3)\n"
        "print(repr(got), 'second EOF' if ready else 'one EOF')\n"
    )
    for line in (b"hello\n", memoryview(b"hello\n").cast("c")):
        protocol = Recorder()
        async with trioproc.spawn(child, protocol, pty=True) as transport:
            assert transport.stdin is not None
            await transport.stdin.send_all(line)
            await transport.stdin.aclose()
        assert protocol.out(1).splitlines()[-1] == b"b'hello\\n' one EOF"


async def test_all_output_written_before_exit_arrives() -> None:
    """A child that writes 1 MB and exits at once: every byte is read before
    the terminal's end of output (EIO) is taken as fd 1's end."""
    child = python(
        "import hashlib, os, sys, termios\n"
        "attrs = termios.tcgetattr(1)\n"
        "attrs[1] &= ~termios.OPOST  # no \\r added: bytes arrive as written\n"
        "termios.tcsetattr(1, termios.TCSANOW, attrs)\n"
        "data = os.urandom(1 << 20).hex().encode()[: 1 << 20]\n"
        "os.write(1, hashlib.sha256(data).hexdigest().encode() + b'\\n')\n"
        "view = memoryview(data)\n"
        "while view:\n"
        "    view = view[os.write(1, view):]\n"
        "os._exit(0)\n"
    )
    protocol = Recorder()
    async with trioproc.spawn(child, protocol, pty=True):
        pass
    digest, _, data = protocol.out(1).partition(b"\n")
    assert len(data) == 1 << 20
    assert hashlib.sha256(data).hexdigest().encode() == digest


async def test_a_hundred_pty_children_leave_no_fd() -> None:
    """100 pty children in sequence: no master, slave or pipe left open."""
    before = open_fds()
    for _ in range(100):
        result = await trioproc.run(["true"], pty=True)
        assert result.returncode == 0
    assert open_fds() == before


async def test_keyboard_signals_go_to_the_foreground_job() -> None:
    """signalProcess("INT") reaches the command a shell runs in the
    foreground, as ^C would, and the shell itself carries on."""
    protocol = Recorder()
    shell = ["sh", "-i"]
    async with trioproc.spawn(
        shell, protocol, pty=True, env={"PS1": "$ "}
    ) as transport:
        await protocol.wait_for_output(b"$ ")
        transport.write(b"sleep 30; echo after-sleep $?\n")
        await protocol.wait_for(lambda: protocol.out(1).count(b"sleep 30") >= 1)
        await trio.sleep(0.2)  # let the shell start sleep in the foreground
        transport.signalProcess("INT")
        await protocol.wait_for_output(b"$ ", fd=1)
        transport.write(b"echo still-here\n")
        await protocol.wait_for_output(b"still-here\r\n")
        transport.closeStdin()
    assert transport.returncode == 0
    # ^C ended the whole command line: its echo never ran.
    assert b"\nafter-sleep" not in protocol.out(1)


async def test_other_signals_go_to_the_child_itself() -> None:
    """TERM is not a keyboard signal: it goes to the child, as with pipes."""
    protocol = Recorder()
    async with trioproc.spawn(["sleep", "30"], protocol, pty=True) as transport:
        transport.signalProcess("TERM")
    assert transport.returncode == -signal.SIGTERM


async def test_lose_connection_hangs_the_child_up() -> None:
    """loseConnection() closes the terminal: the child gets SIGHUP."""
    protocol = Recorder()
    async with trioproc.spawn(["sleep", "30"], protocol, pty=True) as transport:
        transport.loseConnection()
    assert transport.returncode == -signal.SIGHUP
    assert protocol.events[-1] == ("ended", "ProcessTerminated", None, signal.SIGHUP)


async def test_cancellation_and_stop_work_as_for_pipes() -> None:
    """stop() and a cancelled block end a pty child and reap it."""
    async with trioproc.spawn(["sleep", "30"], Recorder(), pty=True) as transport:
        assert await transport.stop() == -signal.SIGTERM
    with trio.move_on_after(0.2):
        async with trioproc.spawn(["sleep", "30"], Recorder(), pty=True) as transport:
            await trio.sleep_forever()
    assert transport.returncode == -signal.SIGTERM


async def test_the_end_of_output_ends_stdin_too() -> None:
    """When the child exits, fd 0 is lost too, so processEnded arrives while
    the block is still running (a protocol may wait for it there)."""
    protocol = Recorder()
    async with trioproc.spawn(["true"], protocol, pty=True):
        await protocol.ended.wait()
    assert ("lost", 0) in protocol.events


async def test_stream_mode_with_a_pty() -> None:
    """protocol=None: stdin and stdout are streams over the terminal, with
    backpressure on send_all; stderr is merged into stdout, as a terminal
    merges them."""
    async with trioproc.spawn(["cat"], pty=True) as transport:
        assert transport.stdin is not None
        assert transport.stdout is not None
        assert transport.stderr is None
        await transport.stdin.send_all(b"streamed\n")
        received = b""
        while received.count(b"streamed") < 2:
            received += await transport.stdout.receive_some()
        await transport.stdin.aclose()
    assert transport.returncode == 0  # not hung up on leaving


async def test_leaving_stream_mode_does_not_hang_up_a_finishing_child() -> None:
    """Unread output is discarded on leaving; the terminal is not closed under
    a child that still writes, so it exits by itself."""
    child = python("import sys\nfor i in range(2000): print('line', i)\n")
    async with trioproc.spawn(child, pty=True) as transport:
        pass
    assert transport.returncode == 0


async def test_a_child_closing_its_terminal_before_exit_is_not_hung_up() -> None:
    """Regression: GNU tools close their standard streams just before they
    exit. That ends the terminal's output (EIO) while the child still runs;
    closing the master then would SIGHUP a child about to exit 0."""
    child = python(
        "import os, time\nfor fd in (0, 1, 2): os.close(fd)\ntime.sleep(0.3)"
    )
    protocol = Recorder()
    async with trioproc.spawn(child, protocol, pty=True) as transport:
        await protocol.wait_for(lambda: ("lost", 1) in protocol.events)
        assert transport.returncode is None  # output ended, child still running
    assert transport.returncode == 0
    assert protocol.events[-1] == ("ended", "ProcessDone", 0, None)


async def test_a_producer_failing_to_stop_still_closes_the_terminal() -> None:
    """stopProducing() raising as the writer ends: its error leaves the
    block, and fd 0 is still lost, the protocol ended and the terminal's
    master closed."""

    class BadStop:
        def pauseProducing(self) -> None:
            pass

        def resumeProducing(self) -> None:
            pass

        def stopProducing(self) -> None:
            raise LookupError("cannot stop")

    before = open_fds()
    protocol = Recorder()
    with pytest.raises(LookupError, match="cannot stop"):
        async with trioproc.spawn(["cat"], protocol, pty=True) as transport:
            transport.registerProducer(BadStop(), True)
            transport.closeStdin()
            await transport.wait()
    assert open_fds() == before
    assert ("lost", 0) in protocol.events  # the writer's end is still reported
    assert protocol.kinds()[-1] == "ended"


async def test_closing_fd_2_of_a_terminal_is_harmless() -> None:
    """fds 0, 1 and 2 are the terminal: closeChildFD(2) is a no-op, as
    closeStderr() is, not a KeyError."""
    protocol = Recorder()
    async with trioproc.spawn(["echo", "still here"], protocol, pty=True) as transport:
        transport.closeChildFD(2)
        transport.closeStderr()
    assert protocol.out(1) == b"still here\r\n"
