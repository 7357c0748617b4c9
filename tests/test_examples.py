"""Every example runs, as a user would run it, and does what its header says."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .helpers import wait_gone

EXAMPLES = Path(__file__).parent.parent / "examples"


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_every_example_has_a_test() -> None:
    """A new example without a test here fails this test."""
    tested = {
        "expect_python_repl.py",
        "fan_out.py",
        "pipeline.py",
        "protocol_echo.py",
        "pty_shell.py",
        "supervise.py",
        "test_with_fake_spawn.py",
    }
    assert {path.name for path in EXAMPLES.glob("*.py")} <= tested


def test_fan_out_runs_workers_and_reports_each_status() -> None:
    """All workers run, at most three at once, and the failing one is reported."""
    result = run_example("fan_out.py", "6", "3")
    assert "fan-out: 6 workers, 3 at a time" in result.stdout
    assert "worker-5 ! worker-5: giving up on purpose" in result.stdout
    for n in (1, 2, 3, 4, 6):
        assert f"worker-{n}: exit 0" in result.stdout
    assert "worker-5: exit 3" in result.stdout


def _popen_with_ctrl_c(argv: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    """Start *argv* with SIGINT at its default, whatever this process has:
    exec keeps an ignored signal ignored (pytest run as a background job of
    a script, under nohup ...), and Python then installs no KeyboardInterrupt
    handler, so the demo would never see the Ctrl-C these tests send."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(argv, text=True, **kwargs)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_fan_out_interrupted_leaves_no_worker() -> None:
    """Ctrl-C stops every running worker and reaps it before the demo exits."""
    demo = _popen_with_ctrl_c(
        [sys.executable, str(EXAMPLES / "fan_out.py"), "6", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert demo.stdout is not None
        assert "fan-out" in demo.stdout.readline()
        assert "step 1/" in demo.stdout.readline()
        workers = _processes_running("worker-")
        assert workers, "the demo should have workers running"
        demo.send_signal(signal.SIGINT)
        _out, err = demo.communicate(timeout=30)
    finally:
        demo.kill()
        demo.wait()
    assert "KeyboardInterrupt" in err
    assert all(wait_gone(pid, 5) for pid in workers)


def _processes_running(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline and b"fan_out" not in cmdline:
                found.append(int(entry))
    return found


def test_pipeline_joins_two_children_without_the_parent() -> None:
    """The consumer sums what the producer wrote through the shared pipe."""
    result = run_example("pipeline.py", "1000")
    assert "producer exited 0, consumer exited 0" in result.stdout
    assert f"= {sum(n * n for n in range(1, 1001))}" in result.stdout


def test_pty_shell_drives_an_interactive_shell() -> None:
    """The shell sees its terminal, its new size, ^C stops only the sleep,
    and end of input ends the shell cleanly."""
    result = run_example("pty_shell.py")
    assert result.stdout.splitlines() == [
        "command: hello from /dev/pts/"
        + result.stdout.split("/dev/pts/")[1].split()[0],
        "after resize, stty size says: 40 120",
        "after ^C: sleep ended with status 130",
        "shell exited with 0 on end of input",
    ]


def test_expect_python_repl_evaluates_each_expression() -> None:
    """Each expression's answer is read back between prompts, "... " is told
    from ">>> ", and end of input ends the REPL cleanly."""
    result = run_example("expect_python_repl.py", "6 * 7", "2**100", "1/0")
    lines = result.stdout.splitlines()
    assert lines[:2] == ["6 * 7 -> 42", f"2**100 -> {2**100}"]
    assert "ZeroDivisionError: division by zero" in result.stdout
    assert "after a 'for' line the REPL wants more lines: True" in lines
    assert "the loop printed 0 1 4" in lines
    assert lines[-1] == "end of input: the REPL exited with 0"


def test_the_fake_spawn_example_runs_where_only_trioproc_is_installed(
    tmp_path: Path,
) -> None:
    """The example test, copied into an empty directory (no conftest, no
    trioproc tests importable, no trio_mode), passes through the fixture the
    pytest11 entry point installs -- its 30-second timeout included."""
    (tmp_path / "test_copied.py").write_text(
        (EXAMPLES / "test_with_fake_spawn.py").read_text()
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-W",
            "error",
            "--durations=0",
            "test_copied.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_supervise_restarts_the_worker_with_growing_backoff() -> None:
    """api becomes ready by its line, the worker is restarted after 0.5 s
    then 1 s, the task ticks, and the end stops everything."""
    out = run_example("supervise.py", "5").stdout
    assert "supervisor: api is ready" in out
    assert "supervisor: worker: restarting in 0.50s" in out
    assert "supervisor: worker: restarting in 1.00s" in out
    assert "clock |  1.0s" in out
    assert out.rstrip().endswith("all children stopped")


def test_supervise_stops_cleanly_on_control_c() -> None:
    """Ctrl-C: every child is stopped and reaped before the program exits."""
    demo = _popen_with_ctrl_c(
        [sys.executable, str(EXAMPLES / "supervise.py")], stdout=subprocess.PIPE
    )
    try:
        assert demo.stdout is not None
        pids = []
        for line in demo.stdout:
            if " started (pid " in line:
                pids.append(int(line.rsplit(" ", 1)[1].rstrip(")\n")))
            if "clock is ready" in line:
                break
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=30)
    finally:
        demo.kill()
        demo.wait()
    assert "interrupted: all children stopped" in out
    assert len(pids) == 2
    assert all(wait_gone(pid, 5) for pid in pids)


def test_protocol_echo_runs_a_twisted_style_protocol() -> None:
    """Each line is echoed in turn, stdin closes, and the end is reported."""
    result = run_example("protocol_echo.py", "alpha", "beta")
    lines = result.stdout.splitlines()
    assert lines[1:3] == ["< echo: alpha", "< echo: beta"]
    assert "stdin closed" in lines
    assert lines[-1] == "processEnded: clean"


@pytest.mark.parametrize(
    "name",
    [
        "expect_python_repl.py",
        "fan_out.py",
        "pipeline.py",
        "protocol_echo.py",
        "pty_shell.py",
        "supervise.py",
        "test_with_fake_spawn.py",
    ],
)
def test_examples_start_with_a_header_saying_what_and_how(name: str) -> None:
    """Examples are one-idea scripts with a header: what they show, how to poke."""
    text = (EXAMPLES / name).read_text()
    assert text.startswith('"""')
    assert "What it shows:" in text
    assert "How to poke it:" in text
