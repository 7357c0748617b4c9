"""The process transport contract (SPEC sections 3 and 4), with real children."""

from __future__ import annotations

import copy
import gc
import hashlib
import os
import pickle
import signal
import types
import weakref
from typing import Any

import pytest
import trio

import trioproc

from .helpers import CAT, EXIT, SLEEP, Recorder, alive, python, wait_gone

#: Prints its pid, then waits for a signal (exit status tells which).
WAITS_FOR_SIGNAL = python(
    "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)\n"
)


async def test_callbacks_come_in_the_contracts_order() -> None:
    """makeConnection first (pid already set), data per fd in order, each fd
    lost once, processExited at reap with pid None, processEnded last."""
    protocol = Recorder()
    child = python(
        "import os, sys\n"
        "data = sys.stdin.buffer.read()\n"
        "sys.stdout.buffer.write(data.upper()); sys.stdout.flush()\n"
        "sys.stderr.write('warning\\n'); sys.stderr.flush()\n"
        "os._exit(0)\n"
    )
    async with trioproc.spawn(child, protocol) as transport:
        assert isinstance(protocol.pids_at["makeConnection"], int)
        assert transport.pid == protocol.pids_at["makeConnection"]
        assert protocol.events == [("connectionMade",)]
        transport.write(b"hello ")
        transport.writeSequence([b"wor", b"ld"])
    assert protocol.out(1) == b"HELLO WORLD"
    assert protocol.out(2) == b"warning\n"
    kinds = protocol.kinds()
    assert kinds[0] == "connectionMade"
    assert kinds[-1] == "ended"
    assert sorted(e for e in protocol.events if e[0] == "lost") == [
        ("lost", 0),
        ("lost", 1),
        ("lost", 2),
    ]
    assert kinds.count("exited") == kinds.count("ended") == 1
    assert protocol.pids_at["processExited"] is None
    assert transport.pid is None
    assert protocol.events[-1] == ("ended", "ProcessDone", 0, None)


class _LetsTheReasonGo(trioproc.ProcessProtocol):
    """Keeps only a weak reference to the reason processEnded is given."""

    def __init__(self) -> None:
        self.ended = trio.Event()
        self.reason: weakref.ref[trioproc.ProcessEnded] | None = None

    def processEnded(self, reason: trioproc.ProcessEnded) -> None:
        self.reason = weakref.ref(reason)
        self.ended.set()


@pytest.mark.parametrize("fds", ["pipes", "none"])
async def test_a_block_held_after_its_child_ended_keeps_no_reason(fds: str) -> None:
    """A program that holds many blocks whose children have ended (an exit
    stack of workers, torn down later) pays no exception object for each:
    once processEnded has run, the transport lets the reason go."""
    protocol = _LetsTheReasonGo()
    child_fds = {} if fds == "none" else None
    with trio.fail_after(10):
        async with trioproc.spawn(EXIT(3), protocol, child_fds=child_fds) as transport:
            await protocol.ended.wait()
            gc.collect()
            assert protocol.reason is not None
            assert protocol.reason() is None
            assert transport.returncode == 3


@pytest.mark.parametrize("code", [0, 1, 3, 127, 255])
async def test_exit_codes_reach_the_reason_and_returncode(code: int) -> None:
    """exitCode, status and returncode agree; 0 is ProcessDone."""
    protocol = Recorder()
    async with trioproc.spawn(EXIT(code), protocol) as transport:
        pass
    kind = "ProcessDone" if code == 0 else "ProcessTerminated"
    assert protocol.events[-1] == ("ended", kind, code, None)
    assert ("exited", kind, code, None) in protocol.events
    assert transport.returncode == code


@pytest.mark.parametrize("name", ["HUP", "INT", "KILL", "TERM", "SIGUSR1", "usr2"])
async def test_signal_process_by_name_ends_the_child_with_that_signal(
    name: str,
) -> None:
    """Each contract name (and any signal.Signals name) is delivered, and the
    reason carries the signal with exitCode None."""
    protocol = Recorder()
    async with trioproc.spawn(WAITS_FOR_SIGNAL, protocol) as transport:
        await protocol.wait_for_output(b"\n")
        transport.signalProcess(name)
    signum = signal.Signals["SIG" + name.upper().removeprefix("SIG")]
    assert protocol.events[-1] == ("ended", "ProcessTerminated", None, signum)
    assert transport.returncode == -signum


async def test_signal_process_by_number_and_stop_cont() -> None:
    """STOP and CONT work (the child pauses and resumes); numbers work."""
    protocol = Recorder()
    child = python(
        "import sys, time\n"
        "for line in sys.stdin:\n"
        "    print(line.strip(), time.monotonic(), flush=True)\n"
    )
    async with trioproc.spawn(child, protocol) as transport:
        transport.signalProcess("STOP")
        transport.write(b"while stopped\n")
        await trio.sleep(0.2)
        assert protocol.out(1) == b""
        transport.signalProcess(int(signal.SIGCONT))
        await protocol.wait_for_output(b"\n")
        assert protocol.out(1).startswith(b"while stopped ")
        transport.closeStdin()
    assert transport.returncode == 0


async def test_signal_after_exit_is_process_exited_already() -> None:
    """Once reaped, the pid may be someone else's: signalling it is refused."""
    async with trioproc.spawn(EXIT(0), Recorder()) as transport:
        await transport.wait()
        with pytest.raises(trioproc.ProcessExitedAlready):
            transport.signalProcess("TERM")
    with pytest.raises(trioproc.ProcessExitedAlready):
        transport.signalProcess("KILL")


async def test_twenty_megabytes_through_stdout_arrive_intact() -> None:
    """Every byte of a large output arrives, in order (checked by hash)."""
    child = python(
        "import hashlib, os, sys\n"
        "block = bytes(range(256)) * 4096\n"
        "digest = hashlib.sha256()\n"
        "for i in range(20):\n"
        "    chunk = bytes([i]) + block[1:]\n"
        "    digest.update(chunk)\n"
        "    sys.stdout.buffer.write(chunk)\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write(digest.hexdigest())\n"
    )
    protocol = Recorder()
    async with trioproc.spawn(child, protocol):
        pass
    assert len(protocol.out(1)) == 20 * 1024 * 1024
    assert hashlib.sha256(protocol.out(1)).hexdigest() == protocol.out(2).decode()


async def test_stderr_stays_separate_from_stdout() -> None:
    """fd 2 is delivered as fd 2 (errReceived), never mixed into fd 1."""

    class Split(trioproc.ProcessProtocol):
        out = b""
        err = b""

        def outReceived(self, data: bytes) -> None:
            self.out += data

        def errReceived(self, data: bytes) -> None:
            self.err += data

    protocol = Split()
    async with trioproc.spawn(
        ["sh", "-c", "for i in 1 2 3; do echo out$i; echo err$i >&2; done"], protocol
    ):
        pass
    assert protocol.out == b"out1\nout2\nout3\n"
    assert protocol.err == b"err1\nerr2\nerr3\n"


async def test_child_closing_stdin_is_seen_without_writing() -> None:
    """childConnectionLost(0) fires when the child closes its stdin, while it
    keeps running, and before processExited."""
    protocol = Recorder()
    child = python("import os, time; os.close(0); time.sleep(0.5)")
    async with trioproc.spawn(child, protocol) as transport:
        with trio.fail_after(5):
            await protocol.wait_for(lambda: ("lost", 0) in protocol.events)
        assert transport.returncode is None
    assert protocol.events.index(("lost", 0)) < protocol.kinds().index("exited")


async def test_process_exited_comes_at_reap_while_a_grandchild_holds_the_pipe() -> None:
    """processExited fires when the child is reaped, even though a grandchild
    still holds stdout; processEnded waits until that fd is closed."""
    protocol = Recorder()
    child = ["sh", "-c", "sleep 30 & echo $!"]
    async with trioproc.spawn(child, protocol) as transport:
        with trio.fail_after(5):
            await protocol.exited.wait()
        grandchild = int(protocol.out(1))
        assert protocol.pids_at["processExited"] is None
        assert ("ended",) not in [e[:1] for e in protocol.events]
        assert ("lost", 1) not in protocol.events  # the grandchild holds it
        transport.loseConnection()
    assert protocol.events[-1][0] == "ended"
    os.kill(grandchild, signal.SIGKILL)
    assert wait_gone(grandchild)


async def test_close_stdin_flushes_pending_data_first() -> None:
    """closeStdin() closes fd 0 only after what was written is delivered."""
    protocol = Recorder()
    async with trioproc.spawn(CAT, protocol) as transport:
        transport.write(b"x" * 300_000)  # more than the pipe holds
        transport.closeStdin()
        transport.write(b"dropped: written after close")
    assert protocol.out(1) == b"x" * 300_000


async def test_close_stdout_discards_and_the_child_gets_sigpipe() -> None:
    """closeStdout() closes the parent's read end: the child writing to it
    gets EPIPE/SIGPIPE, and fd 1 is lost once."""
    protocol = Recorder()
    async with trioproc.spawn(["yes"], protocol) as transport:
        await protocol.wait_for_output(b"y")
        transport.closeStdout()
        transport.closeStdout()  # harmless twice
    assert protocol.events.count(("lost", 1)) == 1
    assert transport.returncode == -signal.SIGPIPE


async def test_close_child_fd_and_close_stderr() -> None:
    """closeChildFD works on any fd; closeStderr on fd 2; int fds are no-ops."""
    protocol = Recorder()
    read_end, write_end = os.pipe()
    try:
        async with trioproc.spawn(
            CAT, protocol, child_fds={0: "w", 1: "r", 2: "r", 5: write_end}
        ) as transport:
            transport.closeStderr()
            transport.closeChildFD(5)  # handed over: nothing of ours to close
            transport.closeChildFD(0)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert ("lost", 2) in protocol.events
    assert ("lost", 0) in protocol.events


async def test_lose_connection_closes_all_three() -> None:
    """loseConnection() closes stdin, stdout and stderr; a cat then ends."""
    protocol = Recorder()
    async with trioproc.spawn(CAT, protocol) as transport:
        transport.loseConnection()
    assert sorted(e for e in protocol.events if e[0] == "lost") == [
        ("lost", 0),
        ("lost", 1),
        ("lost", 2),
    ]
    assert transport.returncode == 0


async def test_stop_producing_closes_everything() -> None:
    """stopProducing() closes every fd of ours; the child is left to exit."""
    protocol = Recorder()
    async with trioproc.spawn(CAT, protocol) as transport:
        transport.stopProducing()
    assert protocol.kinds().count("lost") == 3
    assert transport.returncode == 0


async def test_pause_and_resume_producing_hold_output_without_loss() -> None:
    """pauseProducing() stops delivery (the child blocks on a full pipe);
    resumeProducing() delivers everything that was held."""
    protocol = Recorder()
    child = python("import sys; sys.stdout.buffer.write(b'z' * 3_000_000)")
    async with trioproc.spawn(child, protocol) as transport:
        transport.pauseProducing()
        await trio.sleep(0.3)
        assert protocol.out(1) == b""
        assert transport.returncode is None  # blocked on the full pipe
        transport.resumeProducing()
    assert protocol.out(1) == b"z" * 3_000_000


async def test_get_host_and_peer_are_process_addresses() -> None:
    """getHost()/getPeer() return a ProcessAddress, as Twisted's do."""
    async with trioproc.spawn(EXIT(0), Recorder()) as transport:
        assert transport.getHost() == trioproc.ProcessAddress()
        assert isinstance(transport.getPeer(), trioproc.ProcessAddress)


async def test_wait_is_safe_concurrently_and_cancelled() -> None:
    """Many wait() calls, some cancelled, all see the same exit."""
    results: list[int] = []
    async with (
        trioproc.spawn(SLEEP(0.3), Recorder()) as transport,
        trio.open_nursery() as nursery,
    ):
        for _ in range(5):
            nursery.start_soon(lambda: _append(results, transport.wait()))
        for _ in range(3):
            with trio.move_on_after(0.01):
                await transport.wait()
    assert results == [0] * 5
    assert await transport.wait() == 0


async def _append(results: list[int], waiting: object) -> None:
    results.append(await waiting)  # type: ignore[misc]


async def test_stop_terms_then_kills_and_returns_the_code() -> None:
    """stop(): SIGTERM, then SIGKILL after the grace if the child ignores it."""
    from .helpers import IGNORES_TERM

    protocol = Recorder()
    async with trioproc.spawn(IGNORES_TERM, protocol) as transport:
        await protocol.wait_for_output(b"ready")
        start = trio.current_time()
        assert await transport.stop(kill_after=0.2) == -signal.SIGKILL
        assert 0.2 <= trio.current_time() - start < 3
    async with trioproc.spawn(SLEEP(30), Recorder()) as transport:
        assert await transport.stop() == -signal.SIGTERM
        assert await transport.stop() == -signal.SIGTERM  # already done


async def test_protocol_mode_has_no_output_streams() -> None:
    """stdout/stderr are stream mode's; stdin is there in both modes."""
    async with trioproc.spawn(CAT, Recorder()) as transport:
        assert transport.stdout is None
        assert transport.stderr is None
        assert transport.stdin is not None
    async with trioproc.spawn(CAT, Recorder(), child_fds={1: "r"}) as transport:
        assert transport.stdin is None


async def test_twisted_style_reason_checks_work() -> None:
    """reason.value, reason.check() and reason.trap() behave as on a Failure."""
    reasons: list[trioproc.ProcessEnded] = []

    class Twistedish(trioproc.ProcessProtocol):
        def processEnded(self, reason: trioproc.ProcessEnded) -> None:
            reasons.append(reason)

    async with trioproc.spawn(EXIT(2), Twistedish()):
        pass
    reason = reasons[0]
    assert reason.value is reason
    assert reason.value.exitCode == 2
    assert reason.check(trioproc.ProcessDone) is None
    assert reason.check(trioproc.ProcessDone, trioproc.ProcessTerminated) is (
        trioproc.ProcessTerminated
    )
    assert reason.trap(trioproc.ProcessEnded) is trioproc.ProcessEnded
    with pytest.raises(trioproc.ProcessTerminated):
        reason.trap(trioproc.ProcessDone)
    assert "exit code 2" in str(reason)


def _twisted_errors() -> list[Any]:
    """Classes named and placed as ``twisted.internet.error``'s are (built
    here: the tests do not need Twisted), and Twisted's own where installed."""

    def imitation(name: str) -> type[Exception]:
        return type(name, (Exception,), {"__module__": "twisted.internet.error"})

    names = ("ProcessDone", "ProcessTerminated", "ConnectionDone", "ConnectionLost")
    modules: list[Any] = [types.SimpleNamespace(**{n: imitation(n) for n in names})]
    try:
        from twisted.internet import error
    except ImportError:
        pass
    else:
        modules.append(error)
    return modules


@pytest.mark.parametrize("error", _twisted_errors())
def test_an_unchanged_twisted_protocol_can_branch_on_its_reason(error: Any) -> None:
    """Code written against Twisted's Failure branches on
    ``reason.check(error.ProcessDone)`` with Twisted's own classes, and reads
    ``reason.type``, ``getErrorMessage()``, ``getTraceback()`` and
    ``raiseException()``: all of it works on trioproc's reasons unchanged."""
    done = trioproc.ProcessEnded.from_wait_status(0)
    failed = trioproc.ProcessEnded.from_wait_status(3 << 8)
    assert done.check(error.ProcessDone) is error.ProcessDone
    assert done.check(error.ConnectionDone) is error.ConnectionDone
    assert done.check(error.ProcessTerminated) is None
    assert failed.check(error.ProcessDone, error.ProcessTerminated) is (
        error.ProcessTerminated
    )
    assert failed.check(error.ConnectionLost) is error.ConnectionLost
    assert failed.trap(error.ProcessTerminated) is error.ProcessTerminated
    with pytest.raises(trioproc.ProcessDone):
        done.trap(error.ProcessTerminated)
    assert failed.type is trioproc.ProcessTerminated
    assert failed.getErrorMessage() == "process ended with exit code 3"
    assert failed.getTraceback() == (
        "Traceback (failure with no frames): "
        "<class 'trioproc.ProcessTerminated'>: "
        "process ended with exit code 3\n"
    )
    with pytest.raises(trioproc.ProcessTerminated) as raised:
        failed.raiseException()
    assert raised.value is failed


def _failure_parents() -> list[dict[int, list[str]]]:
    """What a Twisted ``Failure`` of ``error.ProcessDone`` and of
    ``error.ProcessTerminated`` lists as ``parents``: as Twisted 26 has it,
    and from Twisted itself where it is installed."""
    error_module = "twisted.internet.error"
    tail = ["builtins.Exception", "builtins.BaseException", "builtins.object"]
    known = {
        0: [f"{error_module}.{n}" for n in ("ProcessDone", "ConnectionDone")],
        3 << 8: [
            f"{error_module}.{n}" for n in ("ProcessTerminated", "ConnectionLost")
        ],
    }
    listed = [
        {status: [*names, f"{error_module}.ConnectionClosed", *tail]}
        for status, names in known.items()
    ]
    try:
        from twisted.internet import error
        from twisted.python.failure import Failure
    except ImportError:
        return listed
    return [
        *listed,
        {0: Failure(error.ProcessDone(0)).parents},
        {3 << 8: Failure(error.ProcessTerminated(3)).parents},
    ]


@pytest.mark.parametrize("expected", _failure_parents())
def test_a_reason_lists_the_parents_a_failure_lists(
    expected: dict[int, list[str]],
) -> None:
    """``reason.parents`` holds what a ``Failure`` of the Twisted class it
    stands for holds, in that order, after trioproc's own classes."""
    [(status, twisted_parents)] = expected.items()
    reason = trioproc.ProcessEnded.from_wait_status(status)
    own = [f"trioproc.{type(reason).__name__}", "trioproc.ProcessEnded"]
    assert reason.parents == [*own, *twisted_parents]


def test_a_reason_checks_qualified_names_as_a_failure_does() -> None:
    """Twisted code may name a class instead of importing it:
    ``reason.check("twisted.internet.error.ProcessDone")`` matches one of
    `parents` and returns the name; ``trap`` raises the reason otherwise."""
    done = trioproc.ProcessEnded.from_wait_status(0)
    failed = trioproc.ProcessEnded.from_wait_status(3 << 8)
    name = "twisted.internet.error.ConnectionDone"
    assert done.check(name) == name
    assert done.check("twisted.internet.error.ProcessTerminated") is None
    assert failed.check("twisted.internet.error.ProcessDone") is None
    assert failed.check(
        "twisted.internet.error.ConnectionLost", trioproc.ProcessDone
    ) == ("twisted.internet.error.ConnectionLost")
    assert failed.check("builtins.KeyError", trioproc.ProcessTerminated) is (
        trioproc.ProcessTerminated
    )
    assert done.check("trioproc.ProcessEnded") == "trioproc.ProcessEnded"
    assert (
        done.check("ProcessDone") is None
    )  # a class's name alone is not its qualified name
    assert failed.trap("builtins.Exception") == "builtins.Exception"
    with pytest.raises(trioproc.ProcessDone):
        done.trap("twisted.internet.error.ConnectionLost")


@pytest.mark.parametrize("bad", [42, None, b"twisted.internet.error.ProcessDone"])
def test_a_reason_check_names_what_it_cannot_take(bad: object) -> None:
    """Neither a class nor a name: check() and trap() say what they take and
    what they got (a Failure returns None, hiding the mistake)."""
    reason = trioproc.ProcessEnded.from_wait_status(0)
    for method in (reason.check, reason.trap):
        with pytest.raises(TypeError, match=r"exception classes or their qualified"):
            method(trioproc.ProcessTerminated, bad)  # type: ignore[call-overload]
    assert reason.check(trioproc.ProcessDone, bad) is trioproc.ProcessDone  # type: ignore[call-overload]


@pytest.mark.parametrize("status", [0, 3 << 8, signal.SIGKILL])
def test_a_reason_copies_and_pickles_as_itself(status: int) -> None:
    """A reason kept by copying or pickling (handed to another process, a
    log queue) says the same as the original."""
    reason = trioproc.ProcessEnded.from_wait_status(status)
    for again in (copy.copy(reason), pickle.loads(pickle.dumps(reason))):
        assert type(again) is type(reason)
        assert (again.exitCode, again.signal, again.status) == (
            reason.exitCode,
            reason.signal,
            reason.status,
        )
        assert str(again) == str(reason)


def test_a_class_of_another_module_with_a_twisted_name_does_not_match() -> None:
    """Only ``twisted.internet.error``'s classes stand for trioproc's."""
    lookalike = type("ProcessDone", (Exception,), {"__module__": "myapp.errors"})
    assert trioproc.ProcessEnded.from_wait_status(0).check(lookalike) is None


def test_reason_from_a_signal_names_it() -> None:
    """A reason built from a wait status describes the signal by name."""
    reason = trioproc.ProcessEnded.from_wait_status(signal.SIGKILL)
    assert isinstance(reason, trioproc.ProcessTerminated)
    assert (reason.exitCode, reason.signal) == (None, signal.SIGKILL)
    assert "SIGKILL" in str(reason)
    done = trioproc.ProcessEnded.from_wait_status(0)
    assert isinstance(done, trioproc.ProcessDone)
    assert done.status == 0
    assert "signal 99" in str(trioproc.ProcessTerminated(signal=99))


async def test_a_pid_is_alive_while_the_block_runs() -> None:
    """The pid names the live child until it is reaped."""
    async with trioproc.spawn(SLEEP(30), Recorder()) as transport:
        pid = transport.pid
        assert pid is not None
        assert alive(pid)
        transport.signalProcess("KILL")
