"""The end of a child's life: its whole process group ends with the block,
nothing it writes on the way out is lost, and a cancellation stays one.

Leftovers are found by a mark in the environment, which every descendant
inherits (`marked_alive` scans ``/proc``), and killed by pid if a test fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

import trioproc
import trioproc._os._cgroup
import trioproc._os._reaper

from .helpers import (
    CAT,
    SLEEP,
    Recorder,
    children,
    kill_marked,
    marked,
    marked_alive,
    python,
)

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup


@pytest.fixture
def mark() -> Iterator[str]:
    """A fresh environment mark; whatever still carries it afterwards is
    killed, and the test fails."""
    value = uuid.uuid4().hex
    yield value
    left = marked_alive(value)
    kill_marked(value)
    assert not left, f"processes outlived their block: {left}"


#: On SIGTERM, prints 20,000 lines (a shutdown that logs), then exits 0.
LOGS_ON_TERM = python(
    "import os, signal, sys, time\n"
    "def bye(*_):\n"
    "    out = os.fdopen(1, 'w', 1 << 16)\n"
    "    for i in range(20000):\n"
    "        out.write(f'stopping {i}\\n')\n"
    "    out.write('bye\\n')\n"
    "    out.flush()\n"
    "    os._exit(0)\n"
    "signal.signal(signal.SIGTERM, bye)\n"
    "os.write(1, b'up\\n')\n"
    "while True:\n"
    "    time.sleep(1)\n"
)

# --- a cancellation stays a cancellation ------------------------------------


async def test_send_all_entered_during_teardown_raises_cancelled() -> None:
    """A task of the block that calls ``stdin.send_all()`` just as the scope
    around the block is cancelled sees Cancelled, which the scope absorbs --
    not the ClosedResourceError of the stdin the teardown closed."""
    for _ in range(20):
        with trio.move_on_after(5) as scope:
            async with trioproc.spawn(CAT) as child, trio.open_nursery() as nursery:
                stdin = child.stdin
                assert stdin is not None

                async def worker() -> None:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    await stdin.send_all(b"x")  # noqa: B023 - awaited in the loop

                nursery.start_soon(worker)
                scope.cancel()
        assert scope.cancelled_caught


async def test_send_all_waiting_for_room_raises_cancelled() -> None:
    """A ``send_all`` parked on a full pipe when the block is cancelled sees
    Cancelled, though the teardown also wakes it by closing stdin (here the
    task lives in a nursery around the block, which ends first)."""
    with trio.move_on_after(5) as scope:
        async with (
            trio.open_nursery() as nursery,
            trioproc.spawn(SLEEP(30), high_water=1024, low_water=1) as child,
        ):
            stdin = child.stdin
            assert stdin is not None
            nursery.start_soon(stdin.send_all, b"x" * (1 << 22))
            await trio.sleep(0.2)
            scope.cancel()
    assert scope.cancelled_caught


async def test_receive_some_during_teardown_raises_cancelled() -> None:
    """A task reading stdout when the block is cancelled sees Cancelled, not
    the closed stream the teardown leaves, however the two race (here the
    task lives in a nursery around the block, which ends first)."""
    for _ in range(20):
        with trio.move_on_after(5) as scope:
            async with (
                trio.open_nursery() as nursery,
                trioproc.spawn(SLEEP(30)) as child,
            ):
                stdout = child.stdout
                assert stdout is not None

                async def reader() -> None:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    await stdout.receive_some()  # noqa: B023 - awaited in the loop

                nursery.start_soon(reader)
                scope.cancel()
        assert scope.cancelled_caught


async def test_a_uid_block_cancelled_while_entering_leaves_nothing(mark: str) -> None:
    """A ``uid=`` child whose exec is confirmed in the same pass in which the
    deadline expires is stopped and reaped, never left running."""
    for _ in range(5):
        with trio.move_on_after(0.05) as scope:
            async with trio.open_nursery() as nursery:

                async def hog() -> None:
                    import time

                    await trio.lowlevel.checkpoint()
                    time.sleep(0.3)  # noqa: ASYNC251 - blocks the loop past the deadline

                nursery.start_soon(hog)
                async with trioproc.spawn(
                    SLEEP(30), uid=os.getuid(), env=marked(mark)
                ) as child:
                    await child.wait()
        assert scope.cancelled_caught
        assert not marked_alive(mark)


# --- the process group ends with the block ----------------------------------

BACKGROUND_SLEEPS = ["sh", "-c", "sleep 30 & sleep 30 & wait"]


async def test_background_jobs_end_with_a_cancelled_block(mark: str) -> None:
    """What a shell script starts in the background ends with the block by
    default, without new_session."""
    with trio.move_on_after(0.5):
        async with trioproc.spawn(BACKGROUND_SLEEPS, env=marked(mark)):
            await trio.sleep_forever()
    assert marked_alive(mark) == []


async def test_background_jobs_end_with_a_cancelled_run(mark: str) -> None:
    """The same through ``run()``."""
    with trio.move_on_after(0.5):
        await trioproc.run(BACKGROUND_SLEEPS, env=marked(mark))
    assert marked_alive(mark) == []


async def test_a_leftover_holding_stdout_ends_with_a_normal_block(mark: str) -> None:
    """A child that exits leaving a background job that still holds its
    stdout: the block ends the job once the body is done, delivers what was
    written and returns -- it neither hangs on the pipe nor leaves the job."""
    protocol = Recorder()
    with trio.fail_after(5):
        async with trioproc.spawn(
            ["sh", "-c", "sleep 30 & echo hi"], protocol, env=marked(mark)
        ) as child:
            await child.wait()
    assert protocol.out(1) == b"hi\n"
    assert protocol.kinds()[-1] == "ended"
    assert marked_alive(mark) == []


async def test_the_child_leads_its_own_process_group() -> None:
    """By default the child leads a new process group; process_group=False
    keeps it in ours (for a child that shares our terminal)."""
    async with trioproc.spawn(SLEEP(30)) as child:
        assert child.pid is not None
        assert os.getpgid(child.pid) == child.pid
        child.signalProcess("KILL")
    async with trioproc.spawn(SLEEP(30), process_group=False) as child:
        assert child.pid is not None
        assert os.getpgid(child.pid) == os.getpgrp()
        child.signalProcess("KILL")
    with pytest.raises(TypeError, match="process_group must be True or False"):
        trioproc.spawn(SLEEP(1), process_group=1)  # type: ignore[arg-type]


#: A shell whose background job takes 0.3 s to die after SIGTERM.
SLOW_TO_DIE = [
    "sh",
    "-c",
    'python3 -c "import signal,time\n'
    "def bye(*_):\n"
    "    time.sleep(0.3)\n"
    "    raise SystemExit(0)\n"
    "signal.signal(signal.SIGTERM, bye)\n"
    "print('up', flush=True)\n"
    'time.sleep(30)" & wait',
]


async def test_the_block_returns_only_once_the_group_is_gone(mark: str) -> None:
    """A cancelled block returns only once every signalled process of the
    group has died, not just the child."""
    for _ in range(3):
        protocol = Recorder()
        with trio.move_on_after(5) as scope:
            async with trioproc.spawn(SLOW_TO_DIE, protocol, env=marked(mark)):
                await protocol.wait_for_output(b"up\n")
                scope.cancel()
        assert marked_alive(mark) == []


async def test_a_stopped_child_is_continued_so_it_can_exit(mark: str) -> None:
    """A child in SIGSTOP when the block ends gets SIGCONT with SIGTERM, and
    ends by SIGTERM at once rather than by SIGKILL after kill_after."""
    with trio.move_on_after(5) as scope:
        async with trioproc.spawn(SLEEP(30), kill_after=10, env=marked(mark)) as child:
            child.signalProcess("STOP")
            await trio.sleep(0.1)
            scope.cancel()
    assert child.returncode == -signal.SIGTERM
    assert scope.cancelled_caught
    assert trio.current_time() < scope.deadline


# --- output is read while the child is being stopped ------------------------


async def test_a_cancelled_block_delivers_a_graceful_shutdowns_output() -> None:
    """A child that logs 20,000 lines on SIGTERM gets to write them all while
    the cancelled block stops it, and exits by itself (0), not by SIGKILL."""
    protocol = Recorder()
    with trio.move_on_after(10) as scope:
        async with trioproc.spawn(LOGS_ON_TERM, protocol, kill_after=8) as child:
            await protocol.wait_for_output(b"up\n")
            scope.cancel()
    lines = protocol.out(1).splitlines()
    assert len(lines) == 20002
    assert lines[-1] == b"bye"
    assert child.returncode == 0


#: Says so on SIGTERM and reads on; says so at the end of its input, exit 0.
READS_ON_AFTER_TERM = python(
    "import os, signal\n"
    "signal.signal(signal.SIGTERM, lambda *_: os.write(1, b'term\\n'))\n"
    "os.write(1, b'up\\n')\n"
    "while os.read(0, 1 << 16):\n"
    "    pass\n"
    "os.write(1, b'end of input\\n')\n"
)


async def test_a_cancelled_block_never_shows_its_child_an_end_of_input() -> None:
    """A cancelled block stops its child; its stdin stays open until the
    child is gone, so a cut-off input never reads as a whole one (a child
    that acts on the end of its input -- ``sort``, an import -- would act
    on a part). One that carries on after SIGTERM is killed."""
    protocol = Recorder()
    with trio.fail_after(10), trio.move_on_after(8) as scope:
        async with trioproc.spawn(
            READS_ON_AFTER_TERM, protocol, kill_after=0.3
        ) as child:
            child.write(b"half of the input")
            await protocol.wait_for_output(b"up\n")
            scope.cancel()
    assert scope.cancelled_caught
    assert protocol.out(1) == b"up\nterm\n"
    assert child.returncode == -signal.SIGKILL


async def test_a_cancelled_stream_block_drains_a_graceful_shutdown() -> None:
    """In stream mode nobody reads once the block is cancelled: the output is
    drained and discarded, so the child never blocks on a full pipe and
    exits by itself."""
    with trio.move_on_after(10) as scope:
        async with trioproc.spawn(LOGS_ON_TERM, kill_after=8) as child:
            assert child.stdout is not None
            assert await child.stdout.receive_some() == b"up\n"
            scope.cancel()
    assert child.returncode == 0


class _CancelsAtExit(trioproc.ProcessProtocol):
    """Counts output; cancels *scope* when the child is reaped."""

    def __init__(self, scope: trio.CancelScope) -> None:
        self.scope = scope
        self.received = 0

    def outReceived(self, data: bytes) -> None:
        self.received += len(data)

    def processExited(self, reason: trioproc.ProcessEnded) -> None:
        self.scope.cancel()


async def test_a_cancellation_during_the_last_output_leaves_the_block() -> None:
    """A block cancelled from outside after its child exited, while it still
    delivers what the child wrote, delivers all of it and then leaves
    cancelled: the code after the block does not run as if nothing had
    happened."""
    with trio.fail_after(20):
        for _ in range(5):
            after_block = False
            with trio.CancelScope() as scope:
                protocol = _CancelsAtExit(scope)
                async with trioproc.spawn(
                    python("import sys; sys.stdout.buffer.write(b'x' * 300000)"),
                    protocol,
                ):
                    pass
                after_block = True
            assert scope.cancelled_caught
            assert not after_block
            assert protocol.received == 300000


#: Exits at once, leaving a job in its group that ignores SIGTERM.
LEAVES_A_STUBBORN_JOB = ["sh", "-c", "trap '' TERM; sleep 30 & exit 0"]


@pytest.mark.parametrize(
    "fds",
    [{"child_fds": {}}, {"stdin": None, "stdout": None, "stderr": None}],
    ids=["child_fds={}", "inherited"],
)
async def test_a_cancellation_while_the_end_kills_a_leftover_leaves_the_block(
    mark: str, fds: dict[str, Any]
) -> None:
    """A block with no pipe that ends normally, and is cancelled from
    outside while it waits kill_after to SIGKILL a job its child left,
    kills that job and leaves cancelled: the code after the block does not
    run."""
    after_block = False
    with trio.fail_after(20):
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:

                async def cancel_soon() -> None:
                    await trio.sleep(0.2)
                    scope.cancel()

                nursery.start_soon(cancel_soon)
                async with trioproc.spawn(
                    LEAVES_A_STUBBORN_JOB, env=marked(mark), kill_after=1, **fds
                ):
                    pass
                after_block = True
    assert scope.cancelled_caught
    assert not after_block
    assert marked_alive(mark) == []


async def test_several_errors_while_cancelled_leave_as_a_group_of_the_errors() -> None:
    """A body error and a callback error in a block cancelled from outside
    leave as a group of those two: the cancellations of the block's own
    tasks are not in it."""

    class FailsAtExit(trioproc.ProcessProtocol):
        def processExited(self, reason: trioproc.ProcessEnded) -> None:
            raise KeyError("exited")

    left: list[BaseExceptionGroup[BaseException]] = []
    with trio.fail_after(10), trio.CancelScope() as scope:
        # Caught inside the cancelled scope, which would strip Cancelled.
        try:
            async with trioproc.spawn(SLEEP(30), FailsAtExit(), kill_after=5):
                scope.cancel()
                raise ValueError("body")
        except BaseExceptionGroup as group:
            left.append(group)
    assert len(left) == 1
    assert isinstance(left[0], ExceptionGroup)
    kinds = sorted(type(e).__name__ for e in left[0].exceptions)
    assert kinds == ["KeyError", "ValueError"]


async def test_stop_delivers_a_graceful_shutdowns_output() -> None:
    """``await transport.stop()`` delivers the shutdown's output too."""
    protocol = Recorder()
    async with trioproc.spawn(LOGS_ON_TERM, protocol, kill_after=8) as child:
        await protocol.wait_for_output(b"up\n")
        assert await child.stop() == 0
    assert len(protocol.out(1).splitlines()) == 20002


async def test_a_supervisor_stop_delivers_a_graceful_shutdowns_output() -> None:
    """``Supervisor.stop()`` lets the child log its shutdown to on_output."""
    lines: list[bytes] = []
    spec = trioproc.ChildSpec(
        "logger",
        argv=LOGS_ON_TERM,
        kill_after=8,
        ready=trioproc.ready_on_output(b"up"),
    )
    async with trioproc.Supervisor(
        on_output=lambda name, fd, line: lines.append(line)
    ) as supervisor:
        child = await supervisor.start(spec)
        await supervisor.stop("logger")
        assert child.returncode == 0
    assert len(lines) == 20002


# --- a child that cannot be killed ------------------------------------------

FREEZER = Path("/sys/fs/cgroup/freezer")


@contextlib.contextmanager
def frozen_cgroup() -> Iterator[Path]:
    """A cgroup-v1 freezer cgroup: its processes sleep in the kernel (state
    D) and do not die of SIGKILL until it is thawed."""
    path = FREEZER / f"trioproc-test-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
    except OSError as exc:
        pytest.skip(f"no writable cgroup-v1 freezer to hold a process in D: {exc}")
    try:
        yield path
    finally:
        (path / "freezer.state").write_text("THAWED")
        for _ in range(500):
            try:
                path.rmdir()
                break
            except OSError:
                import time

                time.sleep(0.01)


async def test_an_unkillable_child_raises_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A child stuck in the kernel past SIGKILL and the grace: the block
    leaves with ChildUnkillable naming the pid and its state instead of
    waiting for ever, and the child is reaped once it can die."""
    monkeypatch.setattr(trioproc._os._reaper, "KILL_GRACE", 0.5)
    with frozen_cgroup() as cgroup:
        with pytest.raises(trioproc.ChildUnkillable) as caught:
            with trio.move_on_after(5) as scope:
                async with trioproc.spawn(SLEEP(30), kill_after=0.2) as child:
                    pid = child.pid
                    assert pid is not None
                    (cgroup / "cgroup.procs").write_text(str(pid))
                    (cgroup / "freezer.state").write_text("FROZEN")
                    while "D" not in trioproc._os._reaper.process_state(pid):  # noqa: ASYNC110 - polling /proc
                        await trio.sleep(0.01)
                    scope.cancel()
        assert caught.value.pid == pid
        assert caught.value.state.startswith("D")
        assert str(pid) in str(caught.value)
        assert pid in children()
    # Thawed: the pending SIGKILL ends it, and the background reaper reaps it.
    with trio.fail_after(5):
        while pid in children():  # noqa: ASYNC110 - polling /proc
            await trio.sleep(0.01)


def test_ctrl_c_in_trioproc_run_shows_a_graceful_shutdowns_output(
    tmp_path: Path,
) -> None:
    """Ctrl-C in ``trioproc run``: every line a process logs while it stops
    reaches the screen, and it exits by itself."""
    import json

    from .test_cli import Running, write

    fleet = write(
        tmp_path / "trioproc.toml",
        f"[processes.logger]\nargv = {json.dumps(LOGS_ON_TERM)}\n"
        "ready = 'up'\nkill_after = 8\n",
    )
    run = Running(str(fleet), cwd=tmp_path)
    try:
        run.until(r"logger is ready")
        run.process.send_signal(signal.SIGINT)
        status, out, err = run.finish()
    finally:
        run.kill()
    assert status == 0, err
    import re

    assert len(re.findall(r"^logger +\| stopping \d+$", out, re.M)) == 20000
    assert re.search(r"^logger +\| bye$", out, re.M)
    assert "logger stopped with exit code 0" in out


# --- cgroup=True: a tree that leaves its session is held too ----------------

#: Double-forks a setsid() daemon at once (before anything else), which
#: leaves both the child's process group and its session, then says so.
DAEMONIZES = python(
    "import os, time\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        time.sleep(60)\n"
    "    os._exit(0)\n"
    "os.wait()\n"
    "os.write(1, b'daemon up\\n')\n"
    "time.sleep(60)\n"
)


def _cgroup_of(pid: int) -> str:
    """*pid*'s cgroup-v2 path (the ``0::`` line of /proc/PID/cgroup)."""
    with open(f"/proc/{pid}/cgroup") as lines:
        return next(line for line in lines if line.startswith("0::")).strip()


def _cgroup_or_skip() -> None:
    try:
        cgroup = trioproc._os._cgroup.ChildCgroup.create()
    except trioproc.CgroupUnavailableError as exc:
        pytest.skip(f"no writable cgroup-v2 subtree here: {exc}")
    cgroup.remove()


@pytest.mark.linux_backend("has no cgroups")
@pytest.mark.parametrize("how", ["cancelled", "normal end"])
async def test_a_daemon_that_forks_at_once_ends_with_a_cgroup_block(
    mark: str, how: str
) -> None:
    """With cgroup=True a double-forking setsid() daemon, started as the
    program's very first act, is held in the child's cgroup and ends with the
    block; the cgroup is removed."""
    _cgroup_or_skip()
    protocol = Recorder()
    with trio.move_on_after(10) as scope:
        async with trioproc.spawn(
            DAEMONIZES, protocol, cgroup=True, env=marked(mark), kill_after=1
        ) as child:
            await protocol.wait_for_output(b"daemon up\n")
            assert len(marked_alive(mark)) == 2
            assert child.pid is not None
            cgroup_dir = _cgroup_of(child.pid).rsplit("/", 1)[1]
            assert cgroup_dir.startswith("trioproc-")
            if how == "cancelled":
                scope.cancel()
            else:
                child.signalProcess("TERM")
                await child.wait()
    assert marked_alive(mark) == []
    root = trioproc._os._cgroup.own_cgroup()
    assert not (root / cgroup_dir).exists()


async def test_without_a_cgroup_the_daemon_escapes(mark: str) -> None:
    """The same daemon escapes a process group (why cgroup=True exists): the
    block ends, the daemon is still there (and the test kills it)."""
    protocol = Recorder()
    async with trioproc.spawn(DAEMONIZES, protocol, env=marked(mark)) as child:
        await protocol.wait_for_output(b"daemon up\n")
        child.signalProcess("TERM")
    assert len(marked_alive(mark)) == 1
    kill_marked(mark)
    with trio.fail_after(5):
        while marked_alive(mark):  # noqa: ASYNC110 - polling /proc
            await trio.sleep(0.01)


@pytest.mark.linux_backend("has no cgroups")
async def test_cgroup_true_through_run_and_a_missing_program(mark: str) -> None:
    """run() takes cgroup=True; a program that cannot start leaves no cgroup."""
    _cgroup_or_skip()
    root = trioproc._os._cgroup.own_cgroup()
    before = {p.name for p in root.iterdir() if p.name.startswith("trioproc-")}
    result = await trioproc.run(["sh", "-c", "echo hi"], cgroup=True)
    assert result.stdout == b"hi\n"
    with pytest.raises(FileNotFoundError):
        async with trioproc.spawn(["no-such-program-here"], cgroup=True):
            pass  # pragma: no cover
    after = {p.name for p in root.iterdir() if p.name.startswith("trioproc-")}
    assert after == before


@pytest.mark.linux_backend("has no cgroups")
async def test_cgroup_true_without_a_writable_cgroup_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Where no writable cgroup-v2 subtree exists, entering raises
    CgroupUnavailableError naming what is missing, and starts nothing."""
    monkeypatch.setattr(trioproc._os._cgroup, "own_cgroup", lambda: tmp_path / "none")
    with pytest.raises(trioproc.CgroupUnavailableError, match="does not exist"):
        async with trioproc.spawn(SLEEP(30), cgroup=True):
            pass  # pragma: no cover


async def test_a_supervisor_without_cgroups_falls_back_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Where no cgroup can be made, supervised children (cgroup unset) run
    with process groups only, and the supervisor says so once."""
    import trioproc._supervision._spec

    why = trioproc.CgroupUnavailableError(2, "cgroup-v2 directory /x does not exist")
    monkeypatch.setattr(trioproc._supervision._spec, "unavailable", lambda: why)
    monkeypatch.setattr(trioproc._supervision._spec, "_told_no_cgroup", False)
    async with trioproc.Supervisor(on_output=None) as supervisor:
        for name in ("a", "b"):
            child = await supervisor.start(trioproc.ChildSpec(name, argv=SLEEP(30)))
            assert child.pid is not None
            assert "trioproc-" not in _cgroup_of(child.pid)
    warnings = [r for r in caplog.records if "no cgroup" in r.getMessage()]
    assert len(warnings) == 1
    assert "/x does not exist" in warnings[0].getMessage()


@pytest.mark.linux_backend("has no cgroups")
async def test_supervised_children_get_a_cgroup_where_one_can_be_made() -> None:
    """Where cgroups work, a supervised child is in one of its own."""
    _cgroup_or_skip()
    async with trioproc.Supervisor(on_output=None) as supervisor:
        child = await supervisor.start(trioproc.ChildSpec("a", argv=SLEEP(30)))
        assert child.pid is not None
        assert "/trioproc-" in _cgroup_of(child.pid)


@pytest.mark.linux_backend("has no cgroups")
def test_trioproc_run_without_cgroups_says_so_once(tmp_path: Path) -> None:
    """``trioproc run`` uses cgroups by default; where none can be made it
    says so in one line and runs the fleet on process groups."""
    import json
    import subprocess
    import sys

    fleet = tmp_path / "trioproc.toml"
    fleet.write_text(
        f"[processes.a]\nargv = {json.dumps(SLEEP(30))}\n"
        f"[processes.b]\nargv = {json.dumps(SLEEP(30))}\n"
    )
    code = (
        "import pathlib, sys, trioproc._os._cgroup as c\n"
        "c.own_cgroup = lambda: pathlib.Path('/nonexistent-cgroup')\n"
        "from trioproc._cli import main\n"
        f"sys.exit(main(['run', {str(fleet)!r}, '--for', '0.5']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "no cgroups here" in line]
    assert len(lines) == 1
    assert "/nonexistent-cgroup does not exist" in lines[0]


# --- found in review ---------------------------------------------------------


async def test_a_normal_end_does_not_hang_on_stdin_an_escaped_process_holds(
    mark: str,
) -> None:
    """The child exits while a process that left its group holds its stdin
    without reading, and queued input fills the pipe: once the child's tree
    is gone the block drops that input and returns."""
    script = python(
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    null = os.open(os.devnull, os.O_WRONLY)\n"
        "    os.dup2(null, 1)\n"
        "    os.dup2(null, 2)\n"
        "    time.sleep(30)\n"  # holds fd 0, never reads it
        "os._exit(0)\n"
    )
    with trio.fail_after(10):
        async with trioproc.spawn(script, env=marked(mark)) as child:
            assert child.stdin is not None
            child.write(b"x" * (4 << 20))
            await child.wait()
    kill_marked(mark)
    with trio.fail_after(5):
        while marked_alive(mark):  # noqa: ASYNC110 - polling /proc
            await trio.sleep(0.01)


async def test_a_protocol_that_pauses_again_while_stopped_still_hears_it_all() -> None:
    """A flow-controlling protocol that calls pauseProducing() in a callback
    while the cancelled block stops the child does not hold the pump: the
    shutdown's output is delivered and the child exits by itself."""

    class Pauser(Recorder):
        def outReceived(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.pauseProducing()

    protocol = Pauser()
    with trio.move_on_after(10) as scope:
        async with trioproc.spawn(LOGS_ON_TERM, protocol, kill_after=8) as child:
            await protocol.wait_for_output(b"up\n")
            child.resumeProducing()
            scope.cancel()
    assert child.returncode == 0
    assert protocol.out(1).endswith(b"bye\n")


async def test_a_cut_short_stop_then_the_blocks_end_sends_sigterm_once() -> None:
    """stop() cancelled midway, then the block's own end: the child gets one
    SIGTERM, not two, and the grace is not restarted."""
    counts = python(
        "import os, signal, time\n"
        "def term(*_):\n"
        "    os.write(1, b'TERM\\n')\n"
        "signal.signal(signal.SIGTERM, term)\n"
        "os.write(1, b'up\\n')\n"
        "while True:\n"
        "    time.sleep(1)\n"
    )
    protocol = Recorder()
    with trio.move_on_after(10) as scope:
        async with trioproc.spawn(counts, protocol, kill_after=0.6) as child:
            await protocol.wait_for_output(b"up\n")
            with trio.move_on_after(0.3):
                await child.stop()
            scope.cancel()
    assert protocol.out(1).count(b"TERM") == 1
    assert child.returncode == -signal.SIGKILL


async def test_signal_after_a_finished_stop_says_the_child_is_gone() -> None:
    """After the user's own stop() has reaped the child, signalProcess()
    raises ProcessExitedAlready, as the contract says (only the block's own
    teardown makes it quiet)."""
    async with trioproc.spawn(SLEEP(30)) as child:
        await child.stop()
        with pytest.raises(trioproc.ProcessExitedAlready):
            child.signalProcess("TERM")


async def test_an_unkillable_child_is_reaped_for_the_transport_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After ChildUnkillable, once the child can die, the background reaper
    tells the transport: pid becomes None, returncode is set, wait() returns."""
    monkeypatch.setattr(trioproc._os._reaper, "KILL_GRACE", 0.3)
    with frozen_cgroup() as cgroup, pytest.raises(trioproc.ChildUnkillable):
        with trio.move_on_after(5) as scope:
            async with trioproc.spawn(SLEEP(30), kill_after=0.1) as child:
                pid = child.pid
                assert pid is not None
                (cgroup / "cgroup.procs").write_text(str(pid))
                (cgroup / "freezer.state").write_text("FROZEN")
                while "D" not in trioproc._os._reaper.process_state(pid):  # noqa: ASYNC110
                    await trio.sleep(0.01)
                scope.cancel()
    with trio.fail_after(5):
        # Thawed, it dies of the signal that was pending first.
        assert await child.wait() in (-signal.SIGTERM, -signal.SIGKILL)
    assert child.pid is None


@pytest.mark.parametrize(
    "how",
    [
        pytest.param("pty", marks=pytest.mark.linux_backend("has no pseudo-terminals")),
        pytest.param(
            "new_session",
            marks=pytest.mark.linux_backend(
                "ends the child's own process group only (POSIX has no call "
                "that lists the groups of a session)"
            ),
        ),
    ],
)
async def test_every_job_of_a_childs_session_ends_with_the_block(
    mark: str, how: str
) -> None:
    """A child that leads a session (a pty, or new_session) and puts jobs in
    process groups of their own, as a job-control shell does: the block ends
    every process of the session, not only the child's own group."""
    jobs = python(
        "import os, time\n"
        "for _ in range(2):\n"
        "    if os.fork() == 0:\n"
        "        os.setpgid(0, 0)\n"  # a job of its own, in the same session
        "        time.sleep(30)\n"
        "os.write(1, b'jobs up\\n')\n"
        "time.sleep(30)\n"
    )
    protocol = Recorder()
    kwargs: dict[str, object] = {"pty": True} if how == "pty" else {"new_session": True}
    with trio.move_on_after(10) as scope:
        async with trioproc.spawn(jobs, protocol, env=marked(mark), **kwargs):  # type: ignore[arg-type]
            await protocol.wait_for_output(b"jobs up")
            scope.cancel()
    assert marked_alive(mark) == []
