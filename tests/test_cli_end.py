"""How `trioproc run` ends: on a signal, and when its output goes away.

Each test runs the real command on a fleet of Python children whose
environment carries a mark of its own, then scans /proc for any process
still alive with that mark: a child, or a grandchild left to init.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import PY, alive
from .test_cli import TRIOPROC, Running, write

#: Prints numbered lines, a hundred a second, until stopped.
CHATTY = """\
import itertools, time
for i in itertools.count():
    print("line", i, flush=True)
    time.sleep(0.01)
"""

#: Starts a grandchild that sleeps, says so, and sleeps too.
PARENT = """\
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print("grandchild", grandchild.pid, flush=True)
time.sleep(120)
"""


def marked(mark: str) -> set[int]:
    """Pids of live processes whose environment holds *mark*."""
    needle = f"TRIOPROC_TEST_MARK={mark}\0".encode()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if needle in environ.read() and alive(int(entry)):
                    found.add(int(entry))
        except OSError:
            continue
    return found


def until_marked(mark: str, count: int, timeout: float = 5.0) -> int:
    """How many marked processes there are once *count* are, or at *timeout*."""
    deadline = time.monotonic() + timeout
    while len(pids := marked(mark)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(pids)


def left_behind(mark: str, timeout: float = 5.0) -> set[int]:
    """The marked processes still alive after *timeout* seconds (none, as
    soon as they are all gone)."""
    deadline = time.monotonic() + timeout
    while (pids := marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


@pytest.fixture
def mark() -> Iterator[str]:
    """A fresh mark; whatever carries it is killed at the end of the test."""
    mark = uuid.uuid4().hex
    yield mark
    for pid in marked(mark):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def fleet(tmp_path: Path, mark: str) -> Path:
    """trioproc.toml: `chatty` (many lines), then `parent` (ready once its
    grandchild runs), both marked with *mark*."""
    env = f"{{ TRIOPROC_TEST_MARK = {json.dumps(mark)} }}"
    chatty = write(tmp_path / "chatty.py", CHATTY)
    parent = write(tmp_path / "parent.py", PARENT)
    return write(
        tmp_path / "trioproc.toml",
        f"[processes.chatty]\nargv = {json.dumps([PY, str(chatty)])}\nenv = {env}\n\n"
        f"[processes.parent]\nargv = {json.dumps([PY, str(parent)])}\n"
        f"ready = 'grandchild'\nenv = {env}\n",
    )


def buffered_env() -> dict[str, str]:
    """This environment without PYTHONUNBUFFERED, so that trioproc's stdout
    keeps a buffer that the interpreter flushes again at exit."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


@pytest.mark.parametrize(
    "signum", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name
)
def test_a_signal_stops_the_fleet_gracefully(
    tmp_path: Path, mark: str, signum: signal.Signals
) -> None:
    """SIGHUP (a closed terminal, a lost ssh session) stops the fleet as
    SIGTERM and Ctrl-C do: stop lines, exit 0, no process left running."""
    run = Running(str(fleet(tmp_path, mark)), cwd=tmp_path)
    try:
        run.until(r"parent is ready")
        # chatty, parent, grandchild (whose /proc entry may lag its pid).
        assert until_marked(mark, 3) == 3
        run.process.send_signal(signum)
        status, out, err = run.finish()
    finally:
        run.kill()
    assert status == 0, err
    assert f"trioproc | {signum.name}: stopping every process" in out
    assert "trioproc | parent stopped:" in out
    assert "trioproc | chatty stopped:" in out
    assert out.rstrip().endswith("trioproc | all processes stopped")
    assert not left_behind(mark)


class NohupRunning(Running):
    """`nohup trioproc run`: started with SIGHUP ignored."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.process = subprocess.Popen(
            ["nohup", *TRIOPROC, "run", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines = []


def test_under_nohup_sighup_stays_ignored(tmp_path: Path, mark: str) -> None:
    """`nohup trioproc run` keeps running through a hangup; SIGTERM still
    stops it."""
    run = NohupRunning(str(fleet(tmp_path, mark)), cwd=tmp_path)
    try:
        run.until(r"parent is ready")
        run.process.send_signal(signal.SIGHUP)
        run.process.send_signal(signal.SIGTERM)
        status, out, err = run.finish()
    finally:
        run.kill()
    assert status == 0, err
    assert "SIGHUP" not in out
    assert "trioproc | SIGTERM: stopping every process" in out
    assert not left_behind(mark)


@pytest.mark.parametrize("after", ["2 lines", "the fleet is up"])
def test_a_closed_output_pipe_stops_the_fleet_quietly(
    tmp_path: Path, mark: str, after: str
) -> None:
    """`trioproc run | head -2`: when the reader of the output goes away,
    every process is stopped and trioproc exits 141 (128 + SIGPIPE) with
    nothing on stderr, as `cat` would -- whether the fleet was still
    starting or already up."""
    process = subprocess.Popen(
        [*TRIOPROC, "run", str(fleet(tmp_path, mark))],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=buffered_env(),
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline(), process.stdout.readline()]
        if after == "the fleet is up":
            while "parent is ready" not in lines[-1]:
                lines.append(process.stdout.readline())
                assert lines[-1], "".join(lines)
            lines.append(process.stdout.readline())  # a line more from chatty
        process.stdout.close()
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:  # pragma: no cover - only if it hangs
            process.kill()
            process.communicate()
    assert "Traceback" not in err
    assert "Exception ignored" not in err
    assert err == ""
    assert process.returncode == 141
    assert lines[0].startswith("trioproc | starting 2 processes")
    assert not left_behind(mark)


def test_a_hung_up_terminal_stops_the_fleet(tmp_path: Path, mark: str) -> None:
    """Closing the terminal trioproc runs in (SIGHUP, then EIO on every
    write) stops the fleet gracefully: exit 0, no traceback, nothing left."""
    fleet(tmp_path, mark)
    controller, terminal = os.openpty()
    # The leader of a new session takes the terminal on its fds as its
    # controlling terminal, so that closing the terminal sends it SIGHUP.
    trampoline = (
        "import fcntl, os, sys, termios; fcntl.ioctl(1, termios.TIOCSCTTY, 0); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    try:
        process = subprocess.Popen(
            [PY, "-c", trampoline, *TRIOPROC[1:], "run"],
            cwd=tmp_path,
            stdin=terminal,
            stdout=terminal,
            stderr=subprocess.PIPE,
            env=buffered_env(),
            start_new_session=True,
        )
    finally:
        os.close(terminal)
    try:
        seen = b""
        deadline = time.monotonic() + 15
        while b"parent is ready" not in seen and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.1)[0]:
                seen += os.read(controller, 65536)
        assert b"parent is ready" in seen, seen
        os.close(controller)
        controller = -1
        _, err = process.communicate(timeout=30)
    finally:
        if controller >= 0:
            os.close(controller)
        if process.poll() is None:  # pragma: no cover - only if it hangs
            process.kill()
            process.communicate()
    assert b"Traceback" not in err
    assert b"Exception ignored" not in err
    assert process.returncode == 0, err
    assert not left_behind(mark)


def test_an_output_that_cannot_be_written_stops_the_fleet(
    tmp_path: Path, mark: str
) -> None:
    """Output to a full disk (/dev/full): every process is stopped at once,
    the reason is on stderr, exit 1."""
    with open(os.devnull, "rb") as null, open("/dev/full", "wb") as full:
        result = subprocess.run(
            [*TRIOPROC, "run", str(fleet(tmp_path, mark)), "--for", "60"],
            cwd=tmp_path,
            stdin=null,
            stdout=full,
            stderr=subprocess.PIPE,
            env=buffered_env(),
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "trioproc: cannot write the output: [Errno 28]" in result.stderr
    assert not left_behind(mark)


def test_help_tells_how_the_run_ends(tmp_path: Path) -> None:
    """`trioproc run --help` names the signals that stop the fleet and the
    exit status of a closed pipe."""
    result = subprocess.run(
        [*TRIOPROC, "run", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "SIGHUP (a closed terminal" in result.stdout
    assert "141 (128+SIGPIPE)" in result.stdout
