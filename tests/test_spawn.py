"""The ``async with spawn(...)`` block: how it ends, and what it leaves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

import trioproc

from .helpers import (
    CAT,
    IGNORES_TERM,
    SLEEP,
    Recorder,
    alive,
    open_fds,
    python,
    wait_gone,
)

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup


async def test_leaving_normally_drains_output_and_reaps_first() -> None:
    """After the body: stdin is flushed and closed, output is delivered until
    end of file, the child is reaped and processEnded has run."""
    protocol = Recorder()
    child = python(
        "import sys, time\ndata = sys.stdin.read()\ntime.sleep(0.2)\nprint(len(data))\n"
    )
    async with trioproc.spawn(child, protocol) as transport:
        transport.write(b"a" * 100_000)
    assert protocol.out(1) == b"100000\n"
    assert protocol.ended.is_set()
    assert transport.returncode == 0
    assert transport.pid is None


async def test_a_body_exception_stops_the_child_and_leaves_as_itself() -> None:
    """An error in the body: the child gets SIGTERM and is reaped, then the
    error leaves the block unwrapped, so `except` works."""
    protocol = Recorder()
    with pytest.raises(ZeroDivisionError):
        async with trioproc.spawn(SLEEP(30), protocol) as transport:
            pid = transport.pid
            1 / 0  # noqa: B018
    assert pid is not None
    assert not alive(pid)
    assert transport.returncode == -signal.SIGTERM
    assert protocol.events[-1][:2] == ("ended", "ProcessTerminated")


async def test_a_callback_exception_stops_the_child_and_leaves_as_itself() -> None:
    """An exception raised by a callback is not swallowed: the child is
    stopped and the exception leaves the block as itself; the protocol hears
    nothing more."""

    class Boom(Recorder):
        def outReceived(self, data: bytes) -> None:
            raise LookupError("bad line")

    protocol = Boom()
    with pytest.raises(LookupError, match="bad line"):
        async with trioproc.spawn(
            ["sh", "-c", "echo hello; exec sleep 30"], protocol
        ) as transport:
            await trio.sleep_forever()
    assert transport.returncode == -signal.SIGTERM
    assert "ended" not in protocol.kinds()


async def test_make_connection_failing_stops_the_child() -> None:
    """A protocol that fails in connectionMade never leaves a child behind."""

    class FailsEarly(Recorder):
        def connectionMade(self) -> None:
            raise RuntimeError("not today")

    with pytest.raises(RuntimeError, match="not today"):
        async with trioproc.spawn(SLEEP(30), FailsEarly()):
            pytest.fail("the body must not run")


async def test_several_errors_at_once_leave_as_a_group() -> None:
    """Body and callback failing together: both are reported, in a group."""

    class Boom(Recorder):
        def errReceived(self, data: bytes) -> None:
            raise LookupError("from the callback")

    with pytest.raises(ExceptionGroup) as info:
        async with trioproc.spawn(["sh", "-c", "echo x >&2; exec sleep 30"], Boom()):
            try:
                await trio.sleep_forever()
            finally:
                raise KeyError("from the body")
    kinds = {type(e) for e in info.value.exceptions}
    assert kinds == {KeyError, LookupError}


async def test_cancelling_a_long_child_stops_it_promptly() -> None:
    """Cancellation of `sleep 100`: the block leaves quickly and the child is
    reaped (SIGTERM), with nothing left."""
    protocol = Recorder()
    start = trio.current_time()
    with trio.move_on_after(0.2) as scope:
        async with trioproc.spawn(["sleep", "100"], protocol) as transport:
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert trio.current_time() - start < 2
    assert transport.returncode == -signal.SIGTERM
    assert protocol.events[-1][:2] == ("ended", "ProcessTerminated")


async def test_a_child_that_ignores_sigterm_is_killed_after_kill_after() -> None:
    """SIGTERM ignored: SIGKILL follows after kill_after seconds."""
    protocol = Recorder()
    with trio.move_on_after(5) as scope:
        async with trioproc.spawn(IGNORES_TERM, protocol, kill_after=0.3) as transport:
            await protocol.wait_for_output(b"ready")
            start = trio.current_time()
            scope.cancel()
            await trio.sleep_forever()
    elapsed = trio.current_time() - start
    assert transport.returncode == -signal.SIGKILL
    assert 0.3 <= elapsed < 3


async def test_cancellation_reaches_the_grandchildren_of_a_new_session() -> None:
    """new_session=True: stopping signals the whole process group, so a
    grandchild in the child's session is gone too."""
    protocol = Recorder()
    with pytest.raises(_Stop):
        async with trioproc.spawn(
            ["sh", "-c", "sleep 100 & echo $!; wait"], protocol, new_session=True
        ):
            await protocol.wait_for_output(b"\n")
            grandchild = int(protocol.out(1))
            assert alive(grandchild)
            raise _Stop
    assert wait_gone(grandchild)


class _Stop(Exception):
    pass


async def test_output_written_before_a_cancellation_is_still_delivered() -> None:
    """Cancelling does not drop what the child wrote before it was stopped."""
    protocol = Recorder()
    child = python(
        "import os, signal, time\n"
        "def bye(*args):\n"  # os.write: a print() may be under way
        "    os.write(1, b'bye\\n')\n"
        "    os._exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "os.write(1, b'hello\\n')\n"
        "time.sleep(30)\n"
    )
    with trio.move_on_after(5) as scope:
        async with trioproc.spawn(child, protocol):
            await protocol.wait_for_output(b"hello")
            scope.cancel()
            await trio.sleep_forever()
    assert protocol.out(1) == b"hello\nbye\n"
    assert protocol.events[-1] == ("ended", "ProcessDone", 0, None)


async def test_two_hundred_children_at_once_leave_nothing() -> None:
    """200 concurrent children: all reaped, no zombie, no fd (the guard also
    checks), and each one's output reached its own protocol."""
    fds_before = open_fds()
    outputs: dict[int, bytes] = {}

    async def one(n: int) -> None:
        protocol = Recorder()
        async with trioproc.spawn(["sh", "-c", f"echo {n}"], protocol):
            pass
        outputs[n] = protocol.out(1)

    async with trio.open_nursery() as nursery:
        for n in range(200):
            nursery.start_soon(one, n)
    assert outputs == {n: f"{n}\n".encode() for n in range(200)}
    assert open_fds() == fds_before


async def test_many_children_cancelled_together_leave_nothing() -> None:
    """Cancelling a nursery full of children stops and reaps every one."""
    pids: list[int] = []

    async def one() -> None:
        async with trioproc.spawn(SLEEP(30), Recorder()) as transport:
            assert transport.pid is not None
            pids.append(transport.pid)
            await trio.sleep_forever()

    with trio.move_on_after(0.5):
        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(one)
    assert len(pids) == 50
    assert not [pid for pid in pids if alive(pid)]


async def test_a_cancelled_scope_never_starts_a_child() -> None:
    """Entering under an already-cancelled scope raises before spawning."""
    with trio.CancelScope() as scope:
        scope.cancel()
        async with trioproc.spawn(SLEEP(30), Recorder()):
            pytest.fail("the body must not run")


async def test_stop_from_the_body_ends_the_block_cleanly() -> None:
    """transport.stop() inside the block: the block then leaves normally."""
    protocol = Recorder()
    async with trioproc.spawn(CAT, protocol) as transport:
        assert await transport.stop() == -signal.SIGTERM
    assert protocol.events[-1][:2] == ("ended", "ProcessTerminated")


async def test_the_pidfd_fallback_reaps_and_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without pidfds (old kernels, other systems) a waitid thread reaps:
    exits, several waiters and cancellation behave the same."""
    from trioproc._os import _reaper

    monkeypatch.setattr(_reaper, "USE_PIDFD", False)
    protocol = Recorder()
    async with trioproc.spawn(["sh", "-c", "echo hi; exit 4"], protocol) as transport:
        assert await transport.wait() == 4
    assert protocol.events[-1] == ("ended", "ProcessTerminated", 4, None)
    with trio.move_on_after(0.2):
        async with trioproc.spawn(
            IGNORES_TERM, Recorder(), kill_after=0.2
        ) as transport:
            await trio.sleep_forever()
    assert transport.returncode == -signal.SIGKILL


#: Writes "o0;" to fd 1, "e1;" to fd 2, "o2;" to fd 1 ... each by one write(2).
INTERLEAVED = python(
    "import os\n"
    "for i in range(100):\n"
    "    os.write(1 + i % 2, b'%c%d;' % (111 if i % 2 == 0 else 101, i))\n"
)
INTERLEAVED_OUTPUT = b"".join(
    b"%c%d;" % (111 if i % 2 == 0 else 101, i) for i in range(100)
)


async def _read_all(stream: trio.abc.ReceiveStream | None) -> bytes:
    assert stream is not None
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data


async def test_stderr_stdout_merges_into_the_stdout_stream() -> None:
    """spawn(stderr=subprocess.STDOUT): one pipe for fds 1 and 2, read in the
    order written from transport.stdout; there is no stderr stream."""
    async with trioproc.spawn(INTERLEAVED, stderr=subprocess.STDOUT) as transport:
        assert transport.stderr is None
        assert await _read_all(transport.stdout) == INTERLEAVED_OUTPUT


async def test_stderr_stdout_through_the_uid_trampoline() -> None:
    """The merge holds on the uid/gid path too (the trampoline gets the fds
    already in place)."""
    protocol = Recorder()
    async with trioproc.spawn(
        INTERLEAVED, protocol, uid=os.getuid(), stderr=subprocess.STDOUT
    ):
        pass
    assert protocol.out(1) == INTERLEAVED_OUTPUT
    assert 2 not in protocol.data


async def test_stderr_stdout_shares_a_parent_fd_given_for_stdout(
    tmp_path: Path,
) -> None:
    """With fd 1 a parent fd from child_fds, stderr=STDOUT is that same open
    file: both land in it, in order."""
    fd = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        async with trioproc.spawn(
            INTERLEAVED, Recorder(), child_fds={1: fd}, stderr=subprocess.STDOUT
        ):
            pass
    finally:
        os.close(fd)
    assert (tmp_path / "log").read_bytes() == INTERLEAVED_OUTPUT


async def test_standard_fds_child_fds_leaves_out_are_dev_null() -> None:
    """child_fds={1: ...} alone: the child's fds 0 and 2 are /dev/null, not
    closed (a program would write its errors into the next file it opens),
    and no other parent fd is passed."""
    protocol = Recorder()
    child = python(
        "import os\n"
        "os.write(1, repr([os.readlink(f'/proc/self/fd/{fd}') for fd in (0, 2)])"
        ".encode())\n"
    )
    async with trioproc.spawn(child, protocol, child_fds={1: "r"}):
        pass
    assert protocol.out(1) == b"['/dev/null', '/dev/null']"


async def test_redirect_keywords_with_a_protocol(tmp_path: Path) -> None:
    """stdin= a file object and stdout=DEVNULL; stderr not given stays the
    default pipe."""
    (tmp_path / "in").write_bytes(b"read from the file")
    protocol = Recorder()
    child = python(
        "import os, sys\n"
        "sys.stderr.write(sys.stdin.read() + '|' + os.readlink('/proc/self/fd/1'))\n"
    )
    async with (
        await trio.open_file(tmp_path / "in", "rb") as source,
        trioproc.spawn(
            child, protocol, stdin=source, stdout=subprocess.DEVNULL
        ) as transport,
    ):
        assert transport.stdin is None
    assert protocol.out(2) == b"read from the file|/dev/null"
    assert 1 not in protocol.data


def test_redirect_keywords_clash_with_child_fds_and_pty() -> None:
    """The same fd named by both child_fds and stdin=/stdout=/stderr= is an
    error, as is a redirect beside a pty."""
    with pytest.raises(ValueError, match=r"stdin= and child_fds\[0\] both"):
        trioproc.spawn(CAT, child_fds={0: "w"}, stdin=subprocess.DEVNULL)
    with pytest.raises(ValueError, match="stderr= cannot be combined with pty"):
        trioproc.spawn(CAT, pty=True, stderr=subprocess.STDOUT)
    with pytest.raises(ValueError, match="stdin=, stdout= cannot be combined"):
        trioproc.spawn(CAT, pty=True, stdin=None, stdout=None)
