"""trioproc on a POSIX system that is not Linux, played on this Linux machine.

No macOS machine is available, so each test runs a Python process that
plays macOS: Trio is imported first (its own platform choice is the real
one), then ``sys.platform`` says ``"darwin"``, the Linux-only ``os``
functions are removed, and importing any module of the Linux backend fails.
What is left is what macOS and the BSDs run: the portable backend with the
POSIX hooks, and everything above it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Final

import pytest

from .helpers import python
from .play_macos import LINUX_ONLY

_PLAY: Final = str(Path(__file__).with_name("play_macos.py"))


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TRIOPROC_BACKEND"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")]
    )
    return env


def _play_macos(body: str, *args: str, cwd: Path | None = None) -> str:
    """Run *body* in a process that plays macOS; return its stdout."""
    done = subprocess.run(
        [sys.executable, _PLAY, "-c", textwrap.dedent(body), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(),
        cwd=cwd,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_import_needs_no_linux_only_module() -> None:
    """``import trioproc`` (and its testing kit and CLI) on macOS: no module
    of the Linux backend is imported, and every public name is there."""
    out = _play_macos(
        """
        import json, sys, trioproc, trioproc.testing, trioproc._cli
        missing = [n for n in trioproc.__all__ if not hasattr(trioproc, n)]
        loaded = sorted(m for m in sys.modules if m.startswith("trioproc"))
        print(json.dumps([missing, loaded]))
        """
    )
    missing, loaded = json.loads(out)
    assert missing == []
    assert "trioproc._os._backends" in loaded
    assert "trioproc._cli._main" in loaded
    assert set(LINUX_ONLY).isdisjoint(loaded)


def test_children_run_on_the_portable_backend_with_the_posix_hooks() -> None:
    """On macOS a child starts on the portable backend (``repr`` says so):
    input, output and exit codes work, a cancelled block ends the child's
    process group (a grandchild does not outlive it), ``run()`` captures and
    checks, a missing program raises FileNotFoundError on entering, and a
    ``pipeline()`` joins its stages (macOS has no ``pipe2``)."""
    out = _play_macos(
        """
        import os, trio, trioproc
        from trioproc.testing import RecordingProtocol

        async def main():
            with trio.fail_after(30):
                async with trioproc.spawn(["cat"], RecordingProtocol()) as t:
                    print(repr(t))
                    t.write(b"on macOS")
                    t.closeStdin()
                argv = ["sh", "-c", "echo out; exit 3"]
                result = await trioproc.run(argv, check=False)
                print(result.returncode, result.stdout)
                with trio.move_on_after(10) as scope:
                    tree = ["sh", "-c", "sleep 60 & echo $!; wait"]
                    async with trioproc.spawn(tree) as c:
                        grandchild = int(await c.stdout.receive_some())
                        scope.cancel()
                try:
                    os.kill(grandchild, 0)
                except ProcessLookupError:
                    print("grandchild gone")
                try:
                    async with trioproc.spawn(["/no/such/program"]):
                        pass
                except FileNotFoundError:
                    print("FileNotFoundError")
                async with trioproc.pipeline([["echo", "b a"], ["tr", " ", "-"]]) as p:
                    print("pipeline", await p.stdout.receive_some(), p.returncodes)

        trio.run(main)
        """
    )
    assert "backend=portable" in out
    assert "3 b'out\\n'" in out
    assert "grandchild gone" in out
    assert "FileNotFoundError" in out
    assert "pipeline b'b-a\\n'" in out


def test_what_macos_lacks_is_refused_at_the_call() -> None:
    """pty=True and cgroup=True raise ValueError at ``spawn()`` itself, naming
    the option and the platform; ``TRIOPROC_BACKEND=linux`` names the way
    out; a control socket path too long for macOS's sun_path (there is no
    /proc to shorten it through) is a clear error."""
    out = _play_macos(
        """
        import os, trioproc
        for kwargs in ({"pty": True}, {"cgroup": True}):
            try:
                trioproc.spawn(["cat"], **kwargs)
            except ValueError as exc:
                print(exc)
        os.environ["TRIOPROC_BACKEND"] = "linux"
        try:
            trioproc.spawn(["cat"])
        except ValueError as exc:
            print(exc)
        from pathlib import Path
        from trioproc._control._socket import address
        try:
            address(Path("/" + "d" * 100 + "/.trioproc.sock"), -1)
        except trioproc._control.ControlError as exc:
            print(exc)
        """
    )
    lines = out.splitlines()
    assert "longer than the 103 bytes a Unix socket address holds on darwin" in lines[3]
    assert lines[0].startswith("pty=True is not supported by the portable backend")
    assert lines[1].startswith("cgroup=True is not supported by the portable backend")
    assert "(POSIX)" in lines[0]
    assert "runs on Linux only, not on darwin" in lines[2]


def test_the_supervisor_and_the_cli_run_on_macos(tmp_path: Path) -> None:
    """The Supervisor restarts a child that fails and waits for readiness
    on output; ``trioproc check`` and ``trioproc run --for`` run a Procfile
    (its cgroups are skipped: macOS has none)."""
    (tmp_path / "Procfile").write_text(
        "web: echo web up; sleep 30\nonce: echo once done\n"
    )
    flaky = [
        *python(
            "import pathlib, sys\n"
            "p = pathlib.Path(sys.argv[1])\n"
            "n = int(p.read_text() or 0) if p.exists() else 0\n"
            "p.write_text(str(n + 1))\n"
            "print('ready', flush=True)\n"
            "sys.exit(1 if n == 0 else 0)\n"
        ),
        str(tmp_path / "count"),
    ]
    out = _play_macos(
        f"""
        import trio, trioproc
        from trioproc._cli._main import main as cli

        async def supervise():
            with trio.fail_after(30):
                spec = trioproc.ChildSpec(
                    "flaky", argv={flaky!r}, restart="transient",
                    ready=trioproc.ready_on_output(b"ready"),
                )
                async with trioproc.Supervisor(max_restarts=3) as sup:
                    await sup.start(spec)
                    while open({str(tmp_path / "count")!r}).read() != "2":
                        await trio.sleep(0.05)
                    print("restarted once")

        trio.run(supervise)
        print("check", cli(["check", "-f", "Procfile"]))
        print("run", cli(["run", "-f", "Procfile", "--for", "2"]), flush=True)
        """,
        cwd=tmp_path,
    )
    assert "restarted once" in out
    assert "check 0" in out
    assert "run 0" in out
    assert "web up" in out
    assert "once done" in out


def test_the_control_channel_works_on_macos(tmp_path: Path) -> None:
    """``trioproc run`` serves its control socket on macOS (no SO_PEERCRED
    there: the socket's mode is the guard): ``ctl status`` lists the fleet,
    ``ctl restart`` restarts a process, and SIGINT stops the run cleanly,
    leaving no child."""
    (tmp_path / "Procfile").write_text("web: echo web up $$; exec sleep 30\n")
    run = subprocess.Popen(
        [sys.executable, _PLAY, "-m", "trioproc", "run", "--for", "40"],
        cwd=tmp_path,
        env={**_environment(), "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, _PLAY, "-m", "trioproc", "ctl", *args],
            cwd=tmp_path,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    try:
        deadline = time.monotonic() + 30
        while True:
            listed = ctl("status", "--json")
            if listed.returncode == 0 and '"running"' in listed.stdout:
                break
            assert time.monotonic() < deadline, listed.stderr
            time.sleep(0.1)
        [web] = json.loads(listed.stdout)
        assert web["name"] == "web"
        restarted = ctl("restart", "web")
        assert restarted.returncode == 0, restarted.stderr
        [again] = json.loads(ctl("status", "--json").stdout)
        assert again["pid"] != web["pid"]
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=30)
    finally:
        if run.poll() is None:  # pragma: no cover - the test failed
            run.kill()
            run.communicate()
    assert run.returncode == 0, out
    assert out.count("web up") == 2
    for pid in (web["pid"], again["pid"]):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_notify_readiness_is_refused_on_macos() -> None:
    """ready_on_notify() and watchdog= need SCM_CREDENTIALS (Linux): on
    macOS the ChildSpec itself raises, naming the platform."""
    out = _play_macos(
        """
        import trioproc
        for kwargs in ({"ready": trioproc.ready_on_notify()}, {"watchdog": 5.0}):
            try:
                trioproc.ChildSpec("svc", argv=["true"], **kwargs)
            except ValueError as exc:
                print(exc)
        """
    )
    lines = out.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("ChildSpec 'svc': ready_on_notify() and watchdog=")
        assert "need Linux" in line
        assert line.endswith("not darwin")


class _Unadoptable:
    """POSIX hooks whose ``adopt`` cannot take charge of the child."""

    platform = "POSIX"
    pids: list[int]

    def __init__(self) -> None:
        self.pids = []

    def refuse(self, options: object) -> None:
        pass

    def popen_options(self, options: object) -> dict[str, object]:
        return {"process_group": 0}

    def command(self, argv: list[str]) -> list[str]:
        return argv

    def adopt(self, process: object, options: object) -> object:
        self.pids.append(process.pid)  # type: ignore[attr-defined]
        raise OSError("cannot take charge of this child")


async def test_a_child_the_hooks_cannot_adopt_is_left_nowhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the platform hooks cannot take charge of a started child (a Job
    Object that cannot be made, on Windows), entering raises their error,
    and the child is killed and reaped first: no process is left."""
    import trio

    import trioproc
    from trioproc._os import _backends
    from trioproc._os._portable import PortableBackend

    hooks = _Unadoptable()
    monkeypatch.setenv("TRIOPROC_BACKEND", "portable")
    monkeypatch.setattr(
        _backends,
        "_made",
        {"portable": PortableBackend(hooks)},  # type: ignore[arg-type]
    )
    with trio.fail_after(10):
        with pytest.raises(OSError, match="cannot take charge"):
            async with trioproc.spawn(["sleep", "60"]):
                pytest.fail("entered")  # pragma: no cover - the test fails
    [pid] = hooks.pids
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 - reaped: not our child
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
