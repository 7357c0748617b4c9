"""`trioproc ctl`, the control channel of a running `trioproc run`, and
`trioproc run` as a systemd ``Type=notify`` service -- all run for real."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

import trioproc

from .helpers import PY, alive
from .test_cli import TRIOPROC, Running, trioproc_command, write

#: Says READY=1 with a STATUS=, then WATCHDOG=1 every 0.1 s while the file
#: "stop-pinging" does not exist beside it; prints its pid and NOTIFY_SOCKET.
NOTIFYING = """\
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
address = os.environ["NOTIFY_SOCKET"]
print("pid", os.getpid(), address, flush=True)
s.sendto(b"READY=1\\nSTATUS=serving", address)
while True:
    if not os.path.exists("stop-pinging"):
        s.sendto(b"WATCHDOG=1", address)
    time.sleep(0.1)
"""

#: Prints numbered lines, ten a second.
TICKER = """\
import itertools, os, time
print("env", os.environ.get("NOTIFY_SOCKET"), flush=True)
for i in itertools.count():
    print("tick", i, flush=True)
    time.sleep(0.1)
"""


class Command(Running):
    """Any `trioproc` command in the background, read line by line."""

    def __init__(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None
    ) -> None:
        self.process = subprocess.Popen(
            [*TRIOPROC, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines = []


def fleet(tmp_path: Path) -> Path:
    """`notifier` (ready = "notify", watchdog = 1) and `ticker`."""
    notifier = write(tmp_path / "notifier.py", NOTIFYING)
    ticker = write(tmp_path / "ticker.py", TICKER)
    return write(
        tmp_path / "trioproc.toml",
        "max_restarts = 20\n"
        f"[processes.notifier]\nargv = {json.dumps([PY, str(notifier)])}\n"
        "ready = 'notify'\nwatchdog = 1\nkill_after = 1\n\n"
        f"[processes.ticker]\nargv = {json.dumps([PY, str(ticker)])}\n"
        "ready = 'tick 0'\n",
    )


@pytest.fixture
def fleet_run(tmp_path: Path) -> Iterator[Running]:
    """`trioproc run` of `fleet` in *tmp_path*, until both processes are ready."""
    fleet(tmp_path)
    run = Running(cwd=tmp_path)
    try:
        run.until(r"ticker is ready")
        yield run
    finally:
        if run.process.poll() is None:
            # A clean stop, so that the run's coverage data is written.
            run.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.process.communicate(timeout=20)
        run.kill()


def ctl(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = trioproc_command("ctl", *args, cwd=tmp_path, timeout=30)
    return result.returncode, result.stdout, result.stderr


def status(tmp_path: Path) -> dict[str, dict[str, object]]:
    code, out, err = ctl(tmp_path, "status", "--json")
    assert code == 0, err
    return {p["name"]: p for p in json.loads(out)}


def test_status_restart_stop_start(tmp_path: Path, fleet_run: Running) -> None:
    """ctl status shows state, pid, uptime, restarts, last exit, readiness
    and STATUS= text; restart, stop and start act on one process."""
    code, out, err = ctl(tmp_path, "status")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["NAME", "STATE", "PID", "UPTIME"]
    assert rows[0].split()[:2] == ["notifier", "running"]
    assert rows[0].endswith("serving")
    before = status(tmp_path)
    assert before["notifier"]["ready"] is True
    assert before["notifier"]["status"] == "serving"
    assert before["ticker"]["status"] is None
    assert isinstance(before["ticker"]["uptime"], float)
    # The short form says the same.
    short = trioproc_command("status", cwd=tmp_path)
    assert short.returncode == 0
    assert "notifier" in short.stdout
    # The fleet file named before the command, as honcho's -f is.
    named = trioproc_command(
        "-f", str(tmp_path / "trioproc.toml"), "ctl", "status", cwd=tmp_path.parent
    )
    assert named.returncode == 0, named.stderr
    assert "notifier" in named.stdout
    rooted = trioproc_command("-d", tmp_path.name, "status", cwd=tmp_path.parent)
    assert rooted.returncode == 0, rooted.stderr
    assert "notifier" in rooted.stdout
    code, out, err = ctl(tmp_path, "restart", "ticker")
    assert code == 0, err
    assert "ticker restarted" in out
    after = status(tmp_path)
    assert after["ticker"]["pid"] != before["ticker"]["pid"]
    assert after["ticker"]["restarts"] == 1
    assert after["ticker"]["last_exit"] == -15
    assert after["notifier"]["pid"] == before["notifier"]["pid"]
    code, out, err = ctl(tmp_path, "stop", "ticker")
    assert code == 0
    assert "ticker stopped" in out, err
    assert status(tmp_path)["ticker"]["state"] == "stopped"
    assert not alive(after["ticker"]["pid"])  # type: ignore[arg-type]
    code, out, err = ctl(tmp_path, "start", "ticker")
    assert code == 0
    assert "ticker started" in out, err
    assert status(tmp_path)["ticker"]["state"] == "running"
    code, out, err = ctl(tmp_path, "start", "ticker")
    assert code == 1
    assert "ticker is running, not stopped" in err


def test_bad_requests_get_clear_errors(tmp_path: Path, fleet_run: Running) -> None:
    """An unknown process or command: a clear message, a non-zero exit."""
    code, _, err = ctl(tmp_path, "restart", "nope")
    assert code == 1
    assert "no process named 'nope'" in err
    reply = raw(tmp_path, b'{"command": "explode"}\n')
    assert reply == [{"ok": False, "error": reply[0]["error"]}]
    assert "unknown command 'explode'" in reply[0]["error"]
    assert "needs a process name" in raw(tmp_path, b'{"command": "stop"}\n')[0]["error"]
    usage = trioproc_command("ctl", "frobnicate", cwd=tmp_path)
    assert usage.returncode == 2


def raw(tmp_path: Path, data: bytes) -> list[dict[str, object]]:
    """Send *data* on the control socket; return every reply until it closes
    the connection or a reply with "ok" comes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)
        for _ in range(2000):  # a full backlog is EAGAIN on a Unix socket
            try:
                sock.connect(str(tmp_path / ".trioproc.sock"))
                break
            except BlockingIOError:
                time.sleep(0.01)
        with contextlib.suppress(BrokenPipeError):  # refused: the reply waits
            sock.sendall(data)
        replies = []
        with sock.makefile("rb") as lines:
            for line in lines:
                replies.append(json.loads(line))
                if "ok" in replies[-1]:
                    break
        return replies


def test_logs_recent_lines_then_follow(tmp_path: Path, fleet_run: Running) -> None:
    """ctl logs NAME prints recent lines of that process; -f keeps going."""
    fleet_run.until(r"ticker +\| tick 5$")
    code, out, err = ctl(tmp_path, "logs", "-n", "3", "ticker")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    assert all(line.startswith("ticker | tick ") for line in lines)
    code, out, _ = ctl(tmp_path, "logs", "notifier")
    assert out.startswith("notifier | pid ")
    follow = Command("ctl", "logs", "-f", "-n", "0", "ticker", cwd=tmp_path)
    try:
        first = int(follow.until(r"^ticker \| tick (\d+)").group(1))
        later = int(follow.until(rf"^ticker \| tick {first + 5}$").group(0).split()[-1])
        assert later == first + 5
    finally:
        follow.kill()


def test_the_socket_is_private_and_removed_at_the_end(tmp_path: Path) -> None:
    """.trioproc.sock is 0600 and ours while the fleet runs, gone after; with
    no fleet running, ctl says so and exits 1."""
    fleet(tmp_path)
    run = Running(cwd=tmp_path)
    try:
        run.until(r"ticker is ready")
        info = os.lstat(tmp_path / ".trioproc.sock")
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o600
        assert info.st_uid == os.geteuid()
        run.process.terminate()
        code, _, err = run.finish()
        assert code == 0, err
    finally:
        run.kill()
    assert not (tmp_path / ".trioproc.sock").exists()
    code, _, err = ctl(tmp_path, "status")
    assert code == 1
    assert "no trioproc run is running here" in err


def test_a_live_socket_is_refused_and_a_stale_one_replaced(
    tmp_path: Path, fleet_run: Running
) -> None:
    """A second run of the same directory's fleet refuses to start (nothing
    of it runs); a stale socket (its run was killed) is replaced."""
    second = trioproc_command("run", "--for", "5", cwd=tmp_path)
    assert second.returncode == 1
    assert "another trioproc run (pid" in second.stderr
    assert "started" not in second.stdout
    assert status(tmp_path)["ticker"]["state"] == "running"  # untouched
    notify_socket = fleet_run.until(r"notifier +\| pid \d+ (\S+)").group(1)
    fleet_run.process.kill()  # SIGKILL: the socket stays behind, stale
    # (So does the notify directory: nothing survives SIGKILL to remove it.)
    shutil.rmtree(os.path.dirname(notify_socket))
    fleet_run.process.communicate()
    assert (tmp_path / ".trioproc.sock").exists()
    code, _, err = ctl(tmp_path, "status")
    assert code == 1
    assert "no trioproc run is listening" in err
    # (SIGKILL left its children running: end them before running again.)
    for pid in pids_with(str(tmp_path)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    again = trioproc_command("run", "--for", "2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "ticker is ready" in again.stdout


def pids_with(needle: str) -> list[int]:
    """Live processes whose command line mentions *needle*."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    if needle.encode() in cmdline.read() and alive(int(entry)):
                        found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_socket_of_another_user_is_refused(tmp_path: Path) -> None:
    """A .trioproc.sock owned by someone else is neither used nor replaced."""
    fleet(tmp_path)
    planted = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        planted.bind(str(tmp_path / ".trioproc.sock"))
        os.chown(tmp_path / ".trioproc.sock", 4321, 4321)
        result = trioproc_command("run", "--for", "1", cwd=tmp_path)
        assert result.returncode == 1
        assert "belongs to uid 4321" in result.stderr
        code, _, err = ctl(tmp_path, "status")
        assert code == 1
        assert "belongs to uid 4321" in err
    finally:
        planted.close()
    assert os.lstat(tmp_path / ".trioproc.sock").st_uid == 4321


@pytest.mark.deadline(60)
def test_clients_cannot_crash_or_stall_the_fleet(
    tmp_path: Path, fleet_run: Running
) -> None:
    """Malformed, oversized, half-sent and slow requests, and many clients at
    once: each gets an error or is dropped; the fleet still answers and its
    processes still run, untouched."""
    before = status(tmp_path)
    path = str(tmp_path / ".trioproc.sock")
    assert "malformed" in raw(tmp_path, b"{not json\n")[0]["error"]  # type: ignore[operator]
    assert "malformed" in raw(tmp_path, b"[1, 2]\n")[0]["error"]  # type: ignore[operator]
    assert "malformed" in raw(tmp_path, b"\xff\xfe\n")[0]["error"]  # type: ignore[operator]
    deep = b"[" * 100000 + b"]" * 100000
    assert raw(tmp_path, deep[:60000] + b"\n")[0]["ok"] is False
    huge = raw(tmp_path, b'{"command": "' + b"x" * 200_000 + b'"}\n')
    assert "longer than 65536" in huge[0]["error"]  # type: ignore[operator]
    # Many concurrent clients: some idle, some half-sent, some slow, some
    # never reading their replies; then everyone else still gets answers.
    idle = []
    for i in range(80):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        if i % 3 == 0:
            sock.sendall(b'{"command": "sta')  # half a request, then silence
        elif i % 3 == 1:
            sock.sendall(b'{"command": "logs", "follow": true}\n')  # never read
        idle.append(sock)
    try:

        def slow() -> None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(20)
                with contextlib.suppress(OSError):
                    sock.connect(path)
                    for byte in b'{"command": "status"}\n':
                        sock.sendall(bytes([byte]))
                        time.sleep(0.02)
                    sock.recv(65536)

        slow_clients = [threading.Thread(target=slow) for _ in range(5)]
        for thread in slow_clients:
            thread.start()
        # Over the limit: refused with a reply, not left hanging.
        refused = raw(tmp_path, b'{"command": "status"}\n')
        assert refused[0].get("ok") is False
        assert "too many clients" in refused[0]["error"]  # type: ignore[operator]
        for thread in slow_clients:
            thread.join(20)
    finally:
        for sock in idle:
            sock.close()
    # Once they are gone, the fleet answers again, with the same processes.
    deadline = time.monotonic() + 10
    while True:
        reply = raw(tmp_path, b'{"command": "status"}\n')[0]
        if reply.get("ok") or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # the closed connections are still being noticed
    assert reply["ok"] is True
    after = {p["name"]: p for p in reply["processes"]}  # type: ignore[attr-defined]
    for name in ("notifier", "ticker"):
        assert after[name]["pid"] == before[name]["pid"]
        assert after[name]["restarts"] == 0
        assert alive(after[name]["pid"])  # type: ignore[arg-type]
    assert fleet_run.process.poll() is None


@pytest.mark.deadline(60)
def test_a_process_that_stops_sending_watchdog_is_restarted(
    tmp_path: Path, fleet_run: Running
) -> None:
    """watchdog = 1 in TOML: when WATCHDOG=1 stops coming, the process is
    stopped and restarted (a failure), and the run says why."""
    pid = status(tmp_path)["notifier"]["pid"]
    (tmp_path / "stop-pinging").write_text("")
    fleet_run.until(r"notifier failed: TimeoutError\('no WATCHDOG=1 within 1s")
    fleet_run.until(r"notifier: restarting")
    (tmp_path / "stop-pinging").unlink()
    fleet_run.until(r"notifier is ready", timeout=20)
    assert not alive(pid)  # type: ignore[arg-type]


def test_check_knows_the_new_keys(tmp_path: Path) -> None:
    """`trioproc check` accepts ready = "notify" and watchdog, and reports a
    bad watchdog with its line."""
    fleet(tmp_path)
    assert trioproc_command("check", cwd=tmp_path).returncode == 0
    write(
        tmp_path / "bad.toml",
        "[processes.a]\ncmd = 'true'\nwatchdog = 'soon'\n",
    )
    result = trioproc_command("check", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "bad.toml:3: processes.a.watchdog must be a finite number" in result.stderr


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_run_under_systemd_notifies_ready_watchdog_and_stopping(
    tmp_path: Path, abstract: bool
) -> None:
    """With NOTIFY_SOCKET (Type=notify), `trioproc run` sends READY=1 once
    every process is ready, WATCHDOG=1 every WATCHDOG_USEC/2 while healthy,
    STOPPING=1 when it stops; its processes do not inherit NOTIFY_SOCKET."""
    fleet(tmp_path)
    directory = tempfile.mkdtemp()
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        if abstract:
            name = f"@trioproc-test-{os.getpid()}-{time.monotonic_ns()}"
            receiver.bind(b"\0" + name[1:].encode())
        else:
            name = os.path.join(directory, "notify")
            receiver.bind(name)
        env = {**os.environ, "NOTIFY_SOCKET": name, "WATCHDOG_USEC": "400000"}
        process = Command("run", "--for", "3", cwd=tmp_path, env=env).process
        messages = []
        try:
            deadline = time.monotonic() + 30
            while not any(m.startswith(b"STOPPING=1") for m in messages):
                assert time.monotonic() < deadline, messages
                readable, _, _ = select.select([receiver], [], [], 1)
                if readable:
                    messages.append(receiver.recv(4096))
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 0, err
        kinds = [m.split(b"\n")[0] for m in messages]
        ready = kinds.index(b"READY=1")
        assert kinds.count(b"WATCHDOG=1") >= 3
        assert kinds[-1] == b"STOPPING=1"
        # READY=1 came after both processes were ready.
        assert "ticker is ready" in out
        assert ready < kinds.index(b"STOPPING=1")
        assert re.search(r"^ticker +\| env None$", out, re.MULTILINE)
    finally:
        receiver.close()
        shutil.rmtree(directory)


# --- in-process: the server's edges -------------------------------------------

FLAKY = """\
import os, sys, time
if os.path.exists(sys.argv[1]):
    sys.exit(1)  # its second life fails before it is ready
open(sys.argv[1], "w").close()
print("go", flush=True)
time.sleep(60)
"""


def quiet(name: str, fd: int, line: bytes) -> None:
    """Prints nothing."""


async def ask(path: Path, *requests: dict[str, object]) -> list[dict[str, object]]:
    """The client's replies to *requests* (it is synchronous: in a thread)."""
    from trioproc._control import _client

    def client() -> list[dict[str, object]]:
        return list(_client._requests(path, list(requests), 20))

    return await trio.to_thread.run_sync(client)


async def test_the_server_edges_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process not started yet is pending; a failed restart is an error
    reply; a late request and a client that does not read are dropped; lost
    log lines are reported; a long directory path still works."""
    from trioproc import _control, _fleet
    from trioproc._control import _logs, _server

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    flaky = write(deep / "flaky.py", FLAKY)
    marker = deep / "marker"
    path = write(
        deep / "trioproc.toml",
        f"[processes.flaky]\nargv = {json.dumps([PY, str(flaky), str(marker)])}\n"
        "ready = 'go'\nrestart = 'temporary'\n"
        "[processes.later]\ncmd = 'sleep 60'\n",
    )
    fleet = _fleet.load(path)
    control = _control.FleetControl(fleet, quiet)
    socket_file = _control.socket_path(path)
    assert len(os.fsencode(socket_file)) > 107  # past sun_path: via /proc
    monkeypatch.setattr(_server, "REQUEST_TIMEOUT", 0.3)
    monkeypatch.setattr(_server, "SEND_TIMEOUT", 0.3)
    monkeypatch.setattr(_logs, "LOG_LINES", 2)
    supervisor = trioproc.Supervisor(on_output=control.output)
    async with (
        trio.open_nursery() as nursery,
        supervisor,
        control.serve(supervisor, nursery),
    ):
        await supervisor.start(
            trioproc.ChildSpec(
                "flaky",
                argv=[PY, str(flaky), str(marker)],
                ready=trioproc.ready_on_output("go"),
                restart="temporary",
            )
        )
        (reply,) = await ask(socket_file, {"command": "status"})
        states = {p["name"]: p["state"] for p in reply["processes"]}  # type: ignore[attr-defined]
        assert states == {"flaky": "running", "later": "pending"}
        (reply,) = await ask(socket_file, {"command": "restart", "name": "later"})
        assert reply["error"] == "later has not been started yet"
        (reply,) = await ask(socket_file, {"command": "logs", "lines": -1})
        assert "whole number" in reply["error"]  # type: ignore[operator]
        (reply,) = await ask(socket_file, {"command": "restart", "name": "flaky"})
        assert "restart flaky failed" in reply["error"]  # type: ignore[operator]
        # Lines lost to the ring buffer while a follower waits.
        for i in range(5):
            control.output("later", 1, b"line %d" % i)
        directory = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
        try:
            address = f"/proc/self/fd/{directory}/.trioproc.sock"
            late = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with late:
                await late.connect(address)
                await late.send(b'{"command": "st')
                data = await late.recv(65536)
                assert b"no complete request within 0.3s" in data
            follower = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with follower:
                await follower.connect(address)
                request = {"command": "logs", "name": "later", "follow": True}
                await follower.send(json.dumps(request).encode() + b"\n")
                lines = b""
                while lines.count(b"\n") < 2:
                    lines += await follower.recv(65536)
                for i in range(5, 10):
                    control.output("later", 1, b"line %d" % i)
                while b'"lost"' not in lines:
                    lines += await follower.recv(65536)
                assert b'{"lost": {"name": "later", "lines": 3}}' in lines
            # One that never reads is dropped once its replies back up.
            deaf = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with deaf:
                deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                await deaf.connect(address)
                await deaf.send(b'{"command": "logs", "follow": true}\n')
                for _ in range(2000):
                    control.output("later", 1, b"x" * 4000)
                    await trio.lowlevel.checkpoint()
                # Not reading is the point: let its send timeout pass.
                await trio.sleep(1)
                with trio.fail_after(10):
                    while await deaf.recv(1 << 20):
                        pass  # what was sent before it was dropped, then EOF
        finally:
            os.close(directory)
    assert not socket_file.exists()


async def test_a_regular_file_in_the_way_is_refused(tmp_path: Path) -> None:
    """A .trioproc.sock that is not a socket is left alone, with a clear error."""
    from trioproc import _control, _fleet

    path = fleet(tmp_path)
    (tmp_path / ".trioproc.sock").write_text("mine")
    control = _control.FleetControl(_fleet.load(path), quiet)
    supervisor = trioproc.Supervisor(on_output=None)
    async with trio.open_nursery() as nursery:
        with pytest.raises(_control.ControlError, match="is not a socket"):
            async with supervisor, control.serve(supervisor, nursery):
                pass  # pragma: no cover - never entered
    assert (tmp_path / ".trioproc.sock").read_text() == "mine"
