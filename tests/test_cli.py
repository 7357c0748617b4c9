"""The trioproc command, run for real as a subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

import trioproc

from .helpers import PY, alive, wait_gone

TRIOPROC = [sys.executable, "-m", "trioproc"]

#: Python code (one TOML string) that ignores SIGTERM, prints its pid, sleeps.
IGNORE_TERM_AND_SLEEP = (
    "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('pid', os.getpid(), flush=True); time.sleep(120)"
)


def trioproc_command(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TRIOPROC, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


class Running:
    """A `trioproc run` in the background, read line by line."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [*TRIOPROC, "run", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []

    def until(self, pattern: str, timeout: float = 15) -> re.Match[str]:
        """Return the first line read so far matching *pattern*, reading more
        output until one does."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        for line in self.lines:
            match = regex.search(line)
            if match:
                return match
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            match = regex.search(line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.lines)}")

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=timeout)
        self.lines.append(out)
        return self.process.returncode, "".join(self.lines), err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()  # closes our ends of its pipes


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for run in started:
        run.kill()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_procfile_fleet_starts_and_prefixes_its_output(tmp_path: Path) -> None:
    """Each line comes out as `name | line`, names aligned; exit 0 on --for."""
    write(
        tmp_path / "Procfile",
        "api: echo api says hi; exec sleep 30\nlong_name: echo hello; exec sleep 30\n",
    )
    result = trioproc_command("run", "Procfile", "--for", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "api       | api says hi" in lines
    assert "long_name | hello" in lines
    assert "trioproc  | all processes stopped" in lines


def test_sigint_stops_everything_and_exits_zero(
    tmp_path: Path, running: list[Running]
) -> None:
    """Ctrl-C: every process and grandchild is stopped; exit status 0."""
    write(
        tmp_path / "Procfile",
        "one: echo pid $$; exec sleep 60\ntwo: sleep 60 & echo pid $! ; wait\n",
    )
    run = Running("Procfile", cwd=tmp_path)
    running.append(run)
    run.until(r"one +\| pid")
    run.until(r"two +\| pid")
    pids = [int(m) for m in re.findall(r"\| pid (\d+)", "".join(run.lines))]
    assert len(pids) == 2
    run.process.send_signal(signal.SIGINT)
    status, out, _ = run.finish()
    assert status == 0
    assert "SIGINT: stopping every process" in out
    assert all(wait_gone(pid, 5) for pid in pids)


def test_a_second_sigint_kills_at_once(tmp_path: Path, running: list[Running]) -> None:
    """During a slow shutdown (SIGTERM ignored, kill_after 60 s), a second
    Ctrl-C kills everything at once."""
    write(
        tmp_path / "trioproc.toml",
        "[processes.stubborn]\n"
        f'argv = ["{PY}", "-c", "{IGNORE_TERM_AND_SLEEP}"]\n'
        "kill_after = 60\n",
    )
    run = Running(cwd=tmp_path)
    running.append(run)
    pid = int(run.until(r"\| pid (\d+)").group(1))
    run.process.send_signal(signal.SIGINT)
    run.until("stopping every process")
    time.sleep(0.5)
    assert alive(pid)  # it ignores SIGTERM
    start = time.monotonic()
    run.process.send_signal(signal.SIGINT)
    status, out, _ = run.finish(timeout=20)
    assert time.monotonic() - start < 10
    assert "SIGINT again: killing every process now" in out
    assert status == 0
    assert wait_gone(pid, 5)


def test_a_crashing_process_is_restarted_then_given_up_on(tmp_path: Path) -> None:
    """Restarts with backoff, then more than max_restarts: exit 1 with the
    reason on stderr, nothing left running."""
    write(
        tmp_path / "trioproc.toml",
        "max_restarts = 2\nmax_seconds = 30\n\n"
        "[processes.steady]\ncmd = 'echo pid $$; exec sleep 60'\n\n"
        "[processes.crasher]\ncmd = 'echo crashing; exit 5'\n"
        "backoff = { initial = 0.1, jitter = 0 }\n",
    )
    result = trioproc_command("run", cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "trioproc: gave up: 3 restarts needed within 30s, more than "
        "max_restarts=2 allows (last: crasher)" in result.stderr
    )
    assert "crasher: restarting in 0.10s" in result.stdout
    assert "crasher: restarting in 0.20s" in result.stdout
    steady = int(re.search(r"steady +\| pid (\d+)", result.stdout).group(1))  # type: ignore[union-attr]
    assert wait_gone(steady, 5)


def test_a_process_that_cannot_start_fails_the_run(tmp_path: Path) -> None:
    """A missing program: exit 1, with the reason on stderr."""
    write(
        tmp_path / "trioproc.toml", "[processes.ghost]\nargv = ['/no/such/program']\n"
    )
    result = trioproc_command("run", cwd=tmp_path)
    assert result.returncode == 1
    assert "a process failed to start" in result.stderr
    assert "/no/such/program" in result.stderr


def test_dependencies_start_first_and_stop_last(tmp_path: Path) -> None:
    """depends_on: started in dependency order, stopped in reverse."""
    write(
        tmp_path / "trioproc.toml",
        "[processes.frontend]\ncmd = 'exec sleep 30'\ndepends_on = ['api']\n\n"
        "[processes.api]\ncmd = 'exec sleep 30'\ndepends_on = ['db']\n\n"
        "[processes.db]\ncmd = 'echo ready to serve; exec sleep 30'\n"
        "ready = 'ready to serve'\n",
    )
    result = trioproc_command("run", "trioproc.toml", "--for", "0.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    started = re.findall(r"(\w+) started", result.stdout)
    stopped = re.findall(r"\| (\w+) stopped:", result.stdout)
    assert started == ["db", "api", "frontend"]
    assert stopped == ["frontend", "api", "db"]
    assert result.stdout.index("db is ready") < result.stdout.index("api started")


def test_check_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    """check: unknown keys, bad types, cycles and unknown dependencies, each
    on its own line; exit 2. run refuses the same file."""
    fleet = write(
        tmp_path / "trioproc.toml",
        "stratgy = 'one_for_one'\n"  # 1: unknown top-level key
        "max_restarts = 'many'\n"  # 2: bad type
        "\n"
        "[processes.a]\n"  # 4
        "cmd = 'true'\n"  # 5
        "depends_on = ['b']\n"  # 6: a -> b -> a
        "colour = 'blue'\n"  # 7: unknown key
        "\n"
        "[processes.b]\n"  # 9
        "cmd = 'true'\n"  # 10
        "depends_on = ['a', 'nobody']\n"  # 11: unknown dependency
        "ready_timeout = 'soon'\n"  # 12: bad type
        "\n"
        "[processes.c]\n"  # 14: neither cmd nor argv
        "restart = 'sometimes'\n",  # 15: bad value
    )
    result = trioproc_command("check", str(fleet), cwd=tmp_path)
    assert result.returncode == 2
    problems = result.stderr.splitlines()
    expected = [
        (1, "unknown key 'stratgy'"),
        (2, "max_restarts must be a whole number"),
        (7, "processes.a: unknown key 'colour'"),
        (12, "processes.b.ready_timeout must be a finite number of seconds"),
        (14, "processes.c: give exactly one of 'cmd' or 'argv'"),
        (15, "processes.c.restart must be one of"),
        (11, "processes.b depends on unknown process 'nobody'"),
        (6, "dependency cycle: a -> b -> a"),
    ]
    for line, message in expected:
        assert any(p.startswith(f"{fleet}:{line}: {message}") for p in problems), (
            line,
            message,
            problems,
        )
    assert problems[-1] == f"trioproc: {len(expected)} problem(s) in {fleet}"
    refused = trioproc_command("run", str(fleet), cwd=tmp_path)
    assert refused.returncode == 2
    assert "started" not in refused.stdout


def test_check_reports_procfile_and_toml_syntax_errors(tmp_path: Path) -> None:
    """A line that is not `name: command`, a name used twice, broken TOML."""
    procfile = write(
        tmp_path / "Procfile",
        "web: serve\n# fine\n\nthis is not a process\nweb: again\n",
    )
    result = trioproc_command("check", str(procfile), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{procfile}:4: not a 'name: command' line" in result.stderr
    assert (
        f"{procfile}:5: process 'web' is defined again (first on line 1)"
        in result.stderr
    )
    broken = write(tmp_path / "broken.toml", "[processes.x]\ncmd = 'true\n")
    result = trioproc_command("check", str(broken), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{broken}:2: not valid TOML" in result.stderr
    good = write(tmp_path / "good.toml", "[processes.x]\nargv = ['true']\n")
    ok = trioproc_command("check", str(good), cwd=tmp_path)
    assert (ok.returncode, ok.stdout.strip()) == (0, f"{good}: ok: 1 process (x)")


def test_the_fleet_file_is_found_and_dotenv_read(tmp_path: Path) -> None:
    """Without FILE: trioproc.toml, then Procfile, in the current directory;
    .env beside it is read as honcho reads it."""
    missing = trioproc_command("run", cwd=tmp_path)
    assert missing.returncode == 2
    assert "no trioproc.toml or Procfile in" in missing.stderr
    write(tmp_path / ".env", "# settings\nGREETING='hello there'\nLINES='a\\nb'\n")
    write(tmp_path / "Procfile", 'greeter: echo "$GREETING"; echo "$LINES"\n')
    result = trioproc_command("run", "--for", "0.5", cwd=tmp_path)
    assert "greeter  | hello there" in result.stdout
    assert "greeter  | a" in result.stdout
    assert "greeter  | b" in result.stdout
    write(tmp_path / "trioproc.toml", "[processes.toml_wins]\ncmd = 'echo from toml'\n")
    result = trioproc_command("run", "--for", "0.5", cwd=tmp_path)
    assert "toml_wins | from toml" in result.stdout


def test_colour_on_a_terminal_plain_otherwise_and_timestamps(tmp_path: Path) -> None:
    """Coloured prefixes on a terminal, unless NO_COLOR; plain into a pipe;
    --timestamps adds the time."""
    write(tmp_path / "Procfile", "hello: echo hi\n")
    plain = trioproc_command("run", "--for", "0.2", "-t", cwd=tmp_path)
    assert "\x1b[" not in plain.stdout
    assert re.search(r"^\d\d:\d\d:\d\d hello +\| hi$", plain.stdout, re.MULTILINE)

    async def on_a_terminal(env: dict[str, str]) -> bytes:
        result = await trioproc.run(
            [*TRIOPROC, "run", "--for", "0.2"], pty=True, cwd=tmp_path, env=env
        )
        return result.stdout  # type: ignore[return-value]

    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    coloured = trio.run(on_a_terminal, env)
    assert b"\x1b[36mhello    |\x1b[0m hi" in coloured
    uncoloured = trio.run(on_a_terminal, {**env, "NO_COLOR": "1"})
    assert b"\x1b[" not in uncoloured
    assert b"hello    | hi" in uncoloured


def test_the_console_script_and_usage_errors(tmp_path: Path) -> None:
    """The installed `trioproc` script works; bad usage exits 2."""
    script = Path(sys.executable).parent / "trioproc"
    version = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, check=False
    )
    assert version.stdout.strip() == f"trioproc {trioproc.__version__}"
    usage = trioproc_command("dance", cwd=tmp_path)
    assert usage.returncode == 2
    assert "invalid choice: 'dance'" in usage.stderr
    unknown = trioproc_command("start", "--bogus", cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("usage: trioproc start ")
    assert "trioproc start: error: unrecognized arguments: --bogus" in unknown.stderr
    for bad in ("-1", "nan"):
        refused = trioproc_command("run", "--for", bad, cwd=tmp_path)
        assert refused.returncode == 2
        assert f"--for needs a number of seconds >= 0, not {float(bad)}" in (
            refused.stderr
        )


def test_make_demos_fleet_checks_and_runs(tmp_path: Path) -> None:
    """The embedded demo fleet is valid and shows start, readiness, a crash
    with its restart, and a clean stop (what `make demo` prints)."""
    fleet = Path(__file__).parent.parent / "examples" / "trioproc.toml"
    assert trioproc_command("check", str(fleet), cwd=tmp_path).returncode == 0
    result = trioproc_command("run", str(fleet), "--for", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in (
        "trioproc | web is ready",
        "client   | got hello #1",
        "trioproc | worker exited with exit code 3",
        "trioproc | worker: restarting in 0.50s",
        "trioproc | all processes stopped",
    ):
        assert expected in out, expected
