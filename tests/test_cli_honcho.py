"""The trioproc command as a honcho or foreman user types it, run for real.

`start [PROCESS...]`, -f/-e/-d/-p/-c, `$PORT`, `exec` (honcho's `run`),
Procfile one-shot tasks, unbuffered Python children, and the lifecycle lines
a user reads.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path

from .helpers import PY
from .test_cli import TRIOPROC, trioproc_command, write
from .test_cli_end import left_behind, marked


def without_unbuffered(**extra: str) -> dict[str, str]:
    """This environment without PYTHONUNBUFFERED (set on this machine, it
    would hide whether trioproc sets it) and without PORT, plus *extra*."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "PORT")}
    return {**env, **extra}


def lines_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stdout.splitlines()


def test_port_is_set_as_honcho_sets_it(tmp_path: Path) -> None:
    """PORT: base 5000 (or $PORT, or -p), +100 per process type in file
    order, +1 per -c instance, instances named web.1, web.2; a named
    process alone starts at the base. The one-shot commands end the run
    by themselves, exit 0."""
    write(
        tmp_path / "Procfile",
        "web: echo web $PORT\nworker: echo worker $PORT\nclock: echo clock $PORT\n",
    )
    env = without_unbuffered()
    result = trioproc_command("start", "-c", "worker=2", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    out = lines_of(result)
    for expected in (
        "web      | web 5000",
        "worker.1 | worker 5100",
        "worker.2 | worker 5101",
        "clock    | clock 5200",
        "trioproc | every process is done",
    ):
        assert expected in out, (expected, result.stdout)
    from_env = trioproc_command("start", cwd=tmp_path, env={**env, "PORT": "6000"})
    assert "worker   | worker 6100" in lines_of(from_env)
    from_option = trioproc_command(
        "start", "-p", "7000", cwd=tmp_path, env={**env, "PORT": "6000"}
    )
    assert "worker   | worker 7100" in lines_of(from_option)
    alone = trioproc_command("start", "clock", cwd=tmp_path, env=env)
    assert "clock    | clock 5000" in lines_of(alone)
    assert "web" not in alone.stdout
    bad = trioproc_command("start", "-p", "http", cwd=tmp_path, env=env)
    assert (bad.returncode, bad.stderr) == (
        2,
        "trioproc: -p: not a port number: 'http'\n",
    )
    bad = trioproc_command("start", "-c", "worker", cwd=tmp_path, env=env)
    assert bad.returncode == 2
    assert "each item is NAME=COUNT" in bad.stderr
    bad = trioproc_command("start", "-c", "worker=x", cwd=tmp_path, env=env)
    assert bad.returncode == 2
    assert "each item is NAME=COUNT, like web=2; not 'worker=x'" in bad.stderr
    none = trioproc_command("start", "clock", "-c", "clock=0", cwd=tmp_path, env=env)
    assert (none.returncode, none.stdout) == (2, "")
    assert "nothing to run" in none.stderr
    for port in ("0", "70000"):
        bad = trioproc_command("start", "-p", port, cwd=tmp_path, env=env)
        assert bad.returncode == 2
        assert "a port is from 1 to 65535" in bad.stderr


def test_start_runs_the_named_processes_and_what_they_need(tmp_path: Path) -> None:
    """`trioproc start api` starts api and (first) what it depends on, and
    nothing else; an unknown name is refused with a suggestion."""
    write(
        tmp_path / "trioproc.toml",
        "[processes.api]\ncmd = 'echo api $PORT; exec sleep 30'\n"
        "depends_on = ['db']\n\n"
        "[processes.db]\ncmd = 'echo db $PORT; exec sleep 30'\n\n"
        "[processes.other]\ncmd = 'exec sleep 30'\n",
    )
    result = trioproc_command("start", "api", "--for", "0.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.findall(r"(\w+) started", result.stdout) == ["db", "api"]
    assert "api      | api 5000" in lines_of(result)
    assert "db       | db 5100" in lines_of(result)
    assert "starting 2 processes" in result.stdout
    unknown = trioproc_command("start", "apj", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "no process 'apj'" in unknown.stderr
    assert "(did you mean 'api'?)" in unknown.stderr


def test_the_procfile_env_and_app_root_options(tmp_path: Path) -> None:
    """-d DIR: the app root, which -f and -e are relative to and processes
    run in; -e files replace the default .env (as in honcho), repeated or
    comma-separated, later ones winning."""
    app = tmp_path / "app"
    app.mkdir()
    write(app / "Procfile.dev", 'show: echo "$A $B $C in $(pwd)"\n')
    write(app / ".env", "A=default\nB=default\nC=default\n")
    write(app / "one.env", "A=one\nB=one\n")
    write(app / "two.env", "B=two\n")
    result = trioproc_command(
        "start",
        "-d",
        "app",
        "-f",
        "Procfile.dev",
        "-e",
        "one.env,two.env",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert f"show     | one two  in {app.resolve()}" in lines_of(result)
    repeated = trioproc_command(
        "start", "-d", "app", "-f", "Procfile.dev", "-e", "one.env", "-e", "two.env",
        cwd=tmp_path,
    )  # fmt: skip
    assert f"show     | one two  in {app.resolve()}" in lines_of(repeated)
    # Where honcho's own usage puts them, before the command; given after it
    # as well, -f and -d there win and the -e files add up.
    before = trioproc_command(
        "-d", "app", "-f", "Procfile.dev", "-e", "one.env,two.env", "start",
        cwd=tmp_path,
    )  # fmt: skip
    assert before.returncode == 0, before.stderr
    assert f"show     | one two  in {app.resolve()}" in lines_of(before)
    both = trioproc_command(
        "-d", "app", "-e", "one.env", "start", "-f", "Procfile.dev", "-e", "two.env",
        cwd=tmp_path,
    )  # fmt: skip
    assert f"show     | one two  in {app.resolve()}" in lines_of(both)
    default = trioproc_command("run", "-d", "app", "Procfile.dev", cwd=tmp_path)
    assert f"show     | default default default in {app.resolve()}" in lines_of(default)
    write(tmp_path / "Procfile", "x: true\n")
    twice = trioproc_command("run", "-f", "x", "Procfile", cwd=tmp_path)
    assert twice.returncode == 2
    assert "give the fleet file once" in twice.stderr


def test_run_with_a_command_says_what_to_type_and_exec_runs_it(
    tmp_path: Path,
) -> None:
    """`trioproc run web` (honcho's habit) is refused with the command that
    does it -- `trioproc start web` for a process, `trioproc exec -- CMD`
    for a command -- and exec runs a command with the .env environment,
    its exit status becoming trioproc's."""
    write(tmp_path / "Procfile", "web: exec sleep 30\n")
    write(tmp_path / ".env", "GREETING='hello there'\n")
    web = trioproc_command("run", "web", cwd=tmp_path)
    assert web.returncode == 2
    assert "'web' is not a fleet file" in web.stderr
    assert "trioproc start web" in web.stderr
    assert web.stdout == ""
    command = trioproc_command("run", "python", "-m", "http.server", cwd=tmp_path)
    assert command.returncode == 2
    assert "trioproc exec -- python -m http.server" in command.stderr
    ran = trioproc_command(
        "exec", "--", "sh", "-c", 'echo "$GREETING"; exit 3', cwd=tmp_path
    )
    assert (ran.returncode, ran.stdout) == (3, "hello there\n")
    missing = trioproc_command("exec", "no-such-program-x", cwd=tmp_path)
    assert missing.returncode == 127
    assert "no-such-program-x" in missing.stderr
    empty = trioproc_command("exec", cwd=tmp_path)
    assert empty.returncode == 2


def test_a_one_shot_procfile_task_is_done_not_restarted(tmp_path: Path) -> None:
    """A Procfile `release:` line that exits 0 is done: not restarted, the
    rest of the fleet runs on (exit 0); one that fails is restarted; TOML's
    explicit `restart = "permanent"` still restarts a clean exit."""
    write(
        tmp_path / "Procfile",
        "release: echo migrated\nweb: echo web up; exec sleep 30\n",
    )
    result = trioproc_command("start", "--for", "1.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("release started") == 1
    assert "release exited with exit code 0; done (transient: not restarted)" in out
    assert "release: restarting" not in out
    assert "trioproc | web stopped:" in out
    write(tmp_path / "Procfile", "crash: echo crashing; exit 3\n")
    crash = trioproc_command("start", cwd=tmp_path)
    assert crash.returncode == 1
    assert "crash: restarting in" in crash.stdout
    assert "gave up" in crash.stderr
    write(
        tmp_path / "trioproc.toml",
        "[processes.loop]\ncmd = 'true'\nrestart = 'permanent'\n"
        "backoff = { initial = 0 }\n",
    )
    permanent = trioproc_command("run", cwd=tmp_path)
    assert permanent.returncode == 1
    assert "loop: restarting in" in permanent.stdout


def test_a_fleet_of_finished_tasks_ends_with_their_status(tmp_path: Path) -> None:
    """When no process is left running or waiting to restart, the run ends:
    exit 0 if every process exited 0, 1 (naming it) if a temporary one
    failed."""
    write(
        tmp_path / "trioproc.toml",
        "[processes.ok]\ncmd = 'echo fine'\nrestart = 'temporary'\n\n"
        "[processes.bad]\ncmd = 'exit 4'\nrestart = 'temporary'\n",
    )
    result = trioproc_command("run", cwd=tmp_path)
    assert result.returncode == 1
    assert "trioproc | every process is done" in result.stdout
    assert "trioproc: finished with a failure: bad" in result.stderr


def test_python_children_are_unbuffered_unless_told_otherwise(
    tmp_path: Path,
) -> None:
    """A Python child's print() reaches trioproc's output as it happens
    (PYTHONUNBUFFERED=1 in its environment), not when its buffer fills or
    it exits; a value the user set, even empty, is kept."""
    program = write(
        tmp_path / "talk.py",
        "import os, time\nprint('unbuffered:', os.environ['PYTHONUNBUFFERED'])\n"
        "time.sleep(30)\n",
    )
    write(tmp_path / "Procfile", f"talk: exec {PY} {program}\n")
    env = without_unbuffered()
    result = trioproc_command("run", "--for", "2", cwd=tmp_path, env=env)
    assert "talk     | unbuffered: 1" in lines_of(result), result.stdout
    write(tmp_path / "Procfile", 'say: echo "[$PYTHONUNBUFFERED]"\n')
    write(tmp_path / ".env", "PYTHONUNBUFFERED=\n")
    kept = trioproc_command("run", cwd=tmp_path, env=env)
    assert "say      | []" in lines_of(kept)


def test_the_lifecycle_lines_say_what_happened(tmp_path: Path) -> None:
    """ "starting 1 process"; "is ready" only after a ready check passed
    ("started" says the rest); a process waiting to be restarted when the
    fleet stops is named in the stop lines."""
    write(tmp_path / "Procfile", "one: exec sleep 30\n")
    single = trioproc_command("run", "--for", "0.3", cwd=tmp_path)
    assert "trioproc | starting 1 process from Procfile" in lines_of(single)
    assert "is ready" not in single.stdout
    write(
        tmp_path / "trioproc.toml",
        "[processes.checked]\ncmd = 'echo up; exec sleep 30'\nready = 'up'\n\n"
        "[processes.plain]\ncmd = 'exec sleep 30'\n\n"
        "[processes.crasher]\ncmd = 'exit 2'\nbackoff = { initial = 30, jitter = 0 }\n",
    )
    result = trioproc_command("run", "--for", "1.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = lines_of(result)
    assert "trioproc | checked is ready" in out
    assert "trioproc | plain started" in " ".join(out)
    assert "plain is ready" not in result.stdout
    assert "trioproc | crasher: restarting in 30.00s" in out
    assert "trioproc | crasher stopped while waiting to be restarted" in out
    assert out.index("trioproc | crasher stopped while waiting to be restarted") < (
        out.index("trioproc | all processes stopped")
    )


def test_check_warns_of_missing_programs_and_run_names_the_process(
    tmp_path: Path,
) -> None:
    """check warns (naming the process and its line) of a program not on
    PATH, yet passes; run then fails naming the process."""
    write(
        tmp_path / "trioproc.toml",
        "[processes.fine]\nargv = ['sleep', '30']\n\n"
        "[processes.ghost]\nargv = ['no-such-program-x']\n",
    )
    check = trioproc_command("check", cwd=tmp_path)
    assert check.returncode == 0
    assert (
        "trioproc: trioproc.toml:4: warning: ghost: program 'no-such-program-x' "
        "not found on PATH"
    ) in check.stderr
    run = trioproc_command("run", cwd=tmp_path)
    assert run.returncode == 1
    assert "a process failed to start: ghost: " in run.stderr
    assert "no-such-program-x" in run.stderr


def test_check_lists_problems_in_line_order_with_suggestions(tmp_path: Path) -> None:
    """Problems come in line order (an editor's order), misspelled keys with
    "did you mean"; .env lines that set nothing are warned about by
    number, and `export NAME=value` lines are read."""
    fleet = write(
        tmp_path / "trioproc.toml",
        "[processes.a]\n"  # 1
        "cmd = 'true'\n"  # 2
        "depends_on = ['b']\n"  # 3: a -> b -> a
        "[processes.b]\n"  # 4
        "cmd = 'true'\n"  # 5
        "depends_on = ['a']\n"  # 6
        "redy = 'x'\n"  # 7
        "stratgy = 1\n",  # 8: inside [processes.b]
    )
    result = trioproc_command("check", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()[:-1]
    assert all(line.startswith("trioproc.toml:") for line in lines), lines
    numbers = [int(line.split(":")[1]) for line in lines]
    assert numbers == sorted(numbers), lines
    assert numbers == [3, 7, 8]  # the cycle, found last, comes first
    assert (
        "trioproc.toml:7: processes.b: unknown key 'redy' (did you mean 'ready'?)"
        in lines
    )
    fleet.unlink()
    write(tmp_path / "Procfile", 'show: echo "$A"\n')
    write(tmp_path / ".env", "export A=exported\nthis is not a setting\n")
    check = trioproc_command("check", cwd=tmp_path)
    assert check.returncode == 0
    assert (
        "trioproc: .env:2: not read: not a NAME=value line: 'this is not a setting'"
        in check.stderr
    )
    run = trioproc_command("run", cwd=tmp_path)
    assert "show     | exported" in lines_of(run)


def test_help_tells_exit_statuses_ctrl_c_and_the_honcho_names(
    tmp_path: Path,
) -> None:
    """`trioproc --help` maps honcho's commands and gives the exit statuses;
    `trioproc start --help` says what Ctrl-C does."""
    top = trioproc_command("--help", cwd=tmp_path)
    assert top.returncode == 0
    assert "honcho run CMD is trioproc exec -- CMD" in top.stdout
    assert "exit status: 0 after a clean stop" in top.stdout
    start = trioproc_command("start", "--help", cwd=tmp_path)
    assert "Ctrl-C (SIGINT)" in start.stdout
    assert "PORT (base -p" in start.stdout
    assert "141 (128+SIGPIPE)" in start.stdout


def test_ctrl_c_on_a_terminal_stops_the_coloured_fleet(tmp_path: Path) -> None:
    """`trioproc start` on a terminal: coloured prefixes; Ctrl-C typed at
    the terminal (the terminal sends SIGINT to trioproc, and not to the
    processes, which have sessions of their own) stops every process
    gracefully; exit 0, nothing left running."""
    mark = f"ctrl-c-{os.getpid()}-{time.monotonic_ns()}"
    env = json.dumps(mark)
    write(
        tmp_path / "trioproc.toml",
        "[processes.web]\ncmd = 'echo listening; exec sleep 60'\nready = 'listening'\n"
        f"env = {{ TRIOPROC_TEST_MARK = {env} }}\n\n"
        "[processes.worker]\ncmd = 'sleep 60 & wait'\n"
        f"env = {{ TRIOPROC_TEST_MARK = {env} }}\n",
    )
    controller, terminal = os.openpty()
    # A new session's leader takes the terminal on its fds as its
    # controlling terminal, in its foreground: ^C is its SIGINT.
    trampoline = (
        "import fcntl, os, sys, termios; fcntl.ioctl(1, termios.TIOCSCTTY, 0); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    try:
        process = subprocess.Popen(
            [PY, "-c", trampoline, *TRIOPROC[1:], "start"],
            cwd=tmp_path,
            stdin=terminal,
            stdout=terminal,
            stderr=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if k != "NO_COLOR"},
            start_new_session=True,
        )
    finally:
        os.close(terminal)
    seen = b""

    def read_until(needle: bytes, timeout: float = 15) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while needle not in seen and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.1)[0]:
                try:
                    seen += os.read(controller, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
        assert needle in seen, seen

    try:
        read_until(b"worker started")
        deadline = time.monotonic() + 10
        while len(marked(mark)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)  # worker's sh starts its sleep
        assert len(marked(mark)) == 3  # web's sleep, worker's sh and sleep
        os.write(controller, b"\x03")
        read_until(b"all processes stopped")
        _, err = process.communicate(timeout=30)
    finally:
        os.close(controller)
        if process.poll() is None:  # pragma: no cover - only if it hangs
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()
        for pid in marked(mark):  # pragma: no cover - only if it fails
            os.kill(pid, signal.SIGKILL)
    assert process.returncode == 0, err
    assert b"\x1b[36mweb      |\x1b[0m listening" in seen
    assert b"\x1b[1mtrioproc |\x1b[0m web is ready" in seen
    assert b"SIGINT: stopping every process" in seen
    assert b"worker stopped: process ended by signal 15 (SIGTERM)" in seen
    assert not left_behind(mark)
