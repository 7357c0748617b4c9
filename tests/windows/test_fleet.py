"""Stream mode, run(), the Supervisor and the trioproc command on Windows."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

import trioproc

from ._children import CAT, EXIT, PY, alive, python
from ._wine_shim import running_under_wine

#: Prints "up <pid>" and sleeps until stopped.
SERVICE = python(
    "import os, time; print('up', os.getpid(), flush=True); time.sleep(120)"
)
QUICK = trioproc.Backoff(initial=0.05, jitter=0)


async def test_stream_mode_round_trips_and_ends_with_eof() -> None:
    with trio.fail_after(30):
        async with trioproc.spawn(CAT) as child:
            for n in range(20):
                line = b"line %d\n" % n
                await child.stdin.send_all(line)
                got = b""
                while len(got) < len(line):
                    got += await child.stdout.receive_some()
                assert got == line
            await child.stdin.aclose()
            assert await child.stdout.receive_some() == b""
            assert await child.wait() == 0


async def test_stream_mode_moves_a_megabyte_each_way() -> None:
    data = os.urandom(1 << 20)
    received = bytearray()
    with trio.fail_after(60):
        async with trioproc.spawn(CAT) as child, trio.open_nursery() as nursery:

            async def feed() -> None:
                await child.stdin.send_all(data)
                await child.stdin.aclose()

            nursery.start_soon(feed)
            while chunk := await child.stdout.receive_some():
                received += chunk
    assert received == data


async def test_run_captures_checks_and_times_out() -> None:
    with trio.fail_after(60):
        done = await trioproc.run(
            python("import sys; print(sys.stdin.read().upper(), end='')"),
            input=b"hello",
            capture_output=True,
            check=False,
        )
        assert (done.returncode, done.stdout) == (0, b"HELLO")
        with pytest.raises(subprocess.CalledProcessError) as failed:
            await trioproc.run(EXIT(3))
        assert failed.value.returncode == 3
        with pytest.raises(subprocess.TimeoutExpired):
            await trioproc.run(
                python("import time; print('partial', flush=True); time.sleep(60)"),
                timeout=1,
                kill_after=0.5,
                capture_output=True,
            )


async def test_run_with_shell_uses_cmd() -> None:
    with trio.fail_after(30):
        done = await trioproc.run(
            "echo hello && exit /b 4", shell=True, capture_output=True, check=False
        )
    assert done.returncode == 4
    assert done.stdout.strip() == b"hello"


async def test_a_shell_command_keeps_its_own_quotes() -> None:
    """cmd reads its command line by rules of its own: a command with double
    quotes reaches it verbatim (cmd /s /c), not escaped by the C runtime's
    rules, so a quoted argument with spaces arrives whole."""
    script = "import sys; print(sys.argv[1:])"
    with trio.fail_after(30):
        echoed = await trioproc.run('echo "a  b"', shell=True, capture_output=True)
        argv = await trioproc.run(
            f'"{PY}" -I -S -c "{script}" "two words" plain',
            shell=True,
            capture_output=True,
        )
    assert echoed.stdout.strip() == b'"a  b"'
    assert argv.stdout.strip() == b"['two words', 'plain']"


async def test_a_pipeline_joins_stages_by_a_pipe() -> None:
    """pipeline(): each stage's stdout is the next one's stdin; the ends are
    streams and every stage's exit code is reported."""
    upper = python("import sys; sys.stdout.write(sys.stdin.read().upper())")
    with trio.fail_after(30):
        async with trioproc.pipeline([CAT, upper]) as p:
            assert p.stdin is not None
            assert p.stdout is not None
            await p.stdin.send_all(b"through two stages")
            await p.stdin.aclose()
            out = b""
            async for chunk in p.stdout:
                out += chunk
    assert out == b"THROUGH TWO STAGES"
    assert p.returncodes == [0, 0]


class Events:
    def __init__(self) -> None:
        self.seen: list[trioproc.SupervisorEvent] = []

    def __call__(self, event: trioproc.SupervisorEvent) -> None:
        self.seen.append(event)

    def kinds(self, name: str) -> list[str]:
        return [event.kind for event in self.seen if event.name == name]


async def test_the_supervisor_restarts_a_killed_child_one_for_one() -> None:
    events = Events()
    sup = trioproc.Supervisor("one_for_one", on_event=events, on_output=None)
    with trio.fail_after(60):
        async with sup:
            for name in "ab":
                await sup.start(
                    trioproc.ChildSpec(
                        name,
                        argv=SERVICE,
                        ready=trioproc.ready_on_output(b"up"),
                        backoff=QUICK,
                        kill_after=0.5,
                    )
                )
            a, b = sup.child("a").pid, sup.child("b").pid
            assert sup.child("b").transport is not None
            sup.child("b").transport.signalProcess("KILL")
            while events.kinds("b").count("ready") < 2:  # noqa: ASYNC110
                await trio.sleep(0.05)
            assert sup.child("a").pid == a
            assert sup.child("b").pid not in (None, b)
    assert events.kinds("b").count("started") == 2


def _service(name: str, **kwargs: object) -> trioproc.ChildSpec:
    return trioproc.ChildSpec(
        name,
        argv=SERVICE,
        ready=trioproc.ready_on_output(b"up"),
        backoff=QUICK,
        kill_after=0.5,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("strategy", "changed"),
    [("one_for_all", {"a", "b", "c"}), ("rest_for_one", {"b", "c"})],
)
async def test_the_supervisor_strategies(strategy: str, changed: set[str]) -> None:
    """The middle child killed (its job terminated): which children restart
    is what the strategy says; none is left once the block ends."""
    events = Events()
    sup = trioproc.Supervisor(strategy, on_event=events, on_output=None)  # type: ignore[arg-type]
    with trio.fail_after(60):
        async with sup:
            for name in "abc":
                await sup.start(_service(name))
            before = {name: sup.child(name).pid for name in "abc"}
            transport = sup.child("b").transport
            assert transport is not None
            transport.signalProcess("KILL")
            while any(events.kinds(n).count("ready") < 2 for n in changed):  # noqa: ASYNC110
                await trio.sleep(0.05)
            after = {name: sup.child(name).pid for name in "abc"}
    assert {name for name in "abc" if before[name] != after[name]} == changed
    assert not any(alive(pid) for pid in after.values() if pid is not None)


@pytest.mark.parametrize(
    ("restart", "code", "restarted"),
    [("transient", 0, False), ("transient", 3, True), ("temporary", 3, False)],
)
async def test_the_supervisor_restart_types(
    restart: str, code: int, restarted: bool
) -> None:
    """transient comes back only after a failure; temporary never."""
    events = Events()
    program = python(
        "import time; print('up', flush=True); time.sleep(0.2)\n"
        f"raise SystemExit({code})"
    )
    with trio.fail_after(60):
        async with trioproc.Supervisor(on_event=events, on_output=None) as sup:
            await sup.start(
                trioproc.ChildSpec(
                    "job",
                    argv=program,
                    restart=restart,  # type: ignore[arg-type]
                    backoff=QUICK,
                )
            )
            while "exited" not in events.kinds("job"):  # noqa: ASYNC110
                await trio.sleep(0.05)
            with trio.move_on_after(2):
                while events.kinds("job").count("started") < 2:  # noqa: ASYNC110
                    await trio.sleep(0.05)
    assert (events.kinds("job").count("started") == 2) is restarted


async def test_the_supervisor_gives_up_after_its_restart_intensity() -> None:
    """A child that fails again and again, with backoff between restarts:
    more than max_restarts and RestartIntensityExceeded leaves the block,
    every child stopped."""
    events = Events()
    crasher = python("print('up', flush=True); raise SystemExit(1)")
    with trio.fail_after(60):
        with pytest.raises(trioproc.RestartIntensityExceeded):
            async with trioproc.Supervisor(
                max_restarts=2, max_seconds=30, on_event=events, on_output=None
            ) as sup:
                await sup.start(_service("steady"))
                await sup.start(
                    trioproc.ChildSpec("crasher", argv=crasher, backoff=QUICK)
                )
                await trio.sleep_forever()
    steady = [e.pid for e in events.seen if e.name == "steady" and e.kind == "started"]
    assert steady
    assert not alive(steady[0])  # type: ignore[arg-type]
    assert events.kinds("crasher").count("exited") == 3


async def test_the_supervisor_waits_for_a_port(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = python(
        "import socket, time\n"
        "s = socket.socket()\n"
        "time.sleep(0.5)\n"
        f"s.bind(('127.0.0.1', {port})); s.listen()\n"
        "time.sleep(60)\n"
    )
    events = Events()
    with trio.fail_after(60):
        async with trioproc.Supervisor(on_event=events, on_output=None) as sup:
            await sup.start(
                trioproc.ChildSpec(
                    "server",
                    argv=server,
                    ready=trioproc.ready_on_port(port),
                    kill_after=0.5,
                )
            )
            assert events.kinds("server")[-1] == "ready"
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass


def _trioproc(*args: str, cwd: Path, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "NO_COLOR": "1"}
    return subprocess.Popen(
        [
            PY,
            "-c",
            "import tests.windows._wine_shim as s; s.install()\n"
            "from trioproc._cli._main import main; raise SystemExit(main())",
            *args,
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


def test_the_command_runs_a_procfile_with_cmd(tmp_path: Path) -> None:
    # The worker's command has double quotes of its own: cmd /s /c gets it
    # verbatim.
    code = SERVICE[-1].replace('"', "'")
    (tmp_path / "Procfile").write_text(
        "api: echo api says hi && ping -n 30 127.0.0.1 >NUL\n"
        f'worker: {PY} -I -S -c "{code}"\n'
    )
    check = subprocess.run(
        [PY, "-m", "trioproc", "check", "Procfile"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    run = _trioproc("run", "Procfile", "--for", "3", cwd=tmp_path)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    lines = [line.rstrip() for line in out.splitlines()]  # cmd's echo keeps a space
    assert "api      | api says hi" in lines
    assert any(line.startswith("worker   | up ") for line in lines)
    assert "trioproc | all processes stopped" in lines
    assert "\x1b[" not in out  # NO_COLOR


def test_ctl_says_there_is_no_control_socket(tmp_path: Path) -> None:
    """``trioproc ctl`` on Windows: a clear error and exit status 1, not a
    traceback (no control socket is served there)."""
    (tmp_path / "Procfile").write_text("web: echo hi\n")
    ctl = _trioproc("ctl", "status", cwd=tmp_path)
    _, err = ctl.communicate(timeout=60)
    assert ctl.returncode == 1
    assert err.strip() == (
        "trioproc: trioproc status: there is no control socket on Windows "
        "(trioproc run serves none there); stop the run with Ctrl-C"
    )


#: Writes its pid to the file "up", then sleeps until stopped.
_MARKS_UP = (
    "import os, time\n"
    "with open('up.tmp', 'w') as f: f.write(str(os.getpid()))\n"
    "os.replace('up.tmp', 'up')\n"
    "time.sleep(120)\n"
)

#: The ``trioproc`` command, with a thread that raises each signal in
#: $SIGNALS (half a second apart) in the command's own process once the
#: worker is up -- what the C runtime does when the console delivers Ctrl-C
#: (SIGINT) or Ctrl-Break (SIGBREAK).
_SIGNALLED_COMMAND = (
    "import tests.windows._wine_shim as s; s.install()\n"
    "import os, signal, threading, time\n"
    "def deliver():\n"
    "    while not os.path.exists('up'):\n"
    "        time.sleep(0.05)\n"
    "    for name in os.environ['SIGNALS'].split(','):\n"
    "        signal.raise_signal(getattr(signal, name))\n"
    "        time.sleep(0.5)\n"
    "threading.Thread(target=deliver, daemon=True).start()\n"
    "from trioproc._cli._main import main; raise SystemExit(main())\n"
)


@pytest.mark.parametrize(
    ("signals", "said"),
    [
        ("SIGINT", "SIGINT: stopping every process"),
        ("SIGBREAK", "SIGBREAK: stopping every process"),
        ("SIGINT,SIGINT", "SIGINT again: killing every process now"),
    ],
)
def test_ctrl_c_and_ctrl_break_stop_the_fleet(
    tmp_path: Path, signals: str, said: str
) -> None:
    """Ctrl-C (SIGINT) or Ctrl-Break (SIGBREAK) reaching ``trioproc run``
    stops every process and the run ends with 0; a second one kills them at
    once. The worker is gone afterwards."""
    (tmp_path / "worker.py").write_text(_MARKS_UP)
    (tmp_path / "Procfile").write_text(f"worker: {PY} -I -S worker.py\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "NO_COLOR": "1",
        "SIGNALS": signals,
    }
    run = subprocess.run(
        [PY, "-c", _SIGNALLED_COMMAND, "run", "Procfile"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"trioproc | {said}" in run.stdout
    assert "trioproc | all processes stopped" in run.stdout
    assert not alive(int((tmp_path / "up").read_text()))


@pytest.mark.skipif(
    running_under_wine(),
    reason="Wine does not deliver CTRL_BREAK_EVENT (its console only propagates "
    "CTRL_C_EVENT)",
)
def test_ctrl_break_stops_the_fleet(tmp_path: Path) -> None:  # pragma: no cover
    (tmp_path / "worker.py").write_text(SERVICE[-1])
    (tmp_path / "Procfile").write_text(f"worker: {PY} -I -S worker.py\n")
    run = _trioproc(
        "run",
        "Procfile",
        cwd=tmp_path,
        creationflags=subprocess.CREATE_NEW_PROCESS_GROUP,
    )
    assert run.stdout is not None
    deadline = time.monotonic() + 30
    while "worker   | up" not in run.stdout.readline():
        assert time.monotonic() < deadline
    run.send_signal(signal.CTRL_BREAK_EVENT)
    out, _ = run.communicate(timeout=30)
    assert run.returncode == 0
    assert "stopping every process" in out
