"""The backend in use: chosen by TRIOPROC_BACKEND, named by repr(transport),
and the portable backend's refusals at the call, with real children.

These run in every pass of the suite: the tests set TRIOPROC_BACKEND
themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import trio

import trioproc
from trioproc._os import _backends, _platform

from .helpers import CAT, SLEEP, Recorder, python


@pytest.fixture
def on_portable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIOPROC_BACKEND", "portable")


@pytest.fixture
def on_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    if not sys.platform.startswith("linux"):  # pragma: no cover - Linux here
        pytest.skip("the linux backend runs on Linux only")
    monkeypatch.setenv("TRIOPROC_BACKEND", "linux")


@pytest.mark.usefixtures("on_portable")
async def test_the_portable_backend_is_named_by_repr_and_runs_a_child() -> None:
    """TRIOPROC_BACKEND=portable: the child starts on the portable backend,
    repr(transport) says so, and input, output and the exit work."""
    protocol = Recorder()
    async with trioproc.spawn(CAT, protocol) as transport:
        assert "backend=portable" in repr(transport)
        transport.write(b"through the portable backend")
        transport.closeStdin()
    assert protocol.out(1) == b"through the portable backend"
    assert protocol.events[-1] == ("ended", "ProcessDone", 0, None)


@pytest.mark.usefixtures("on_linux")
async def test_the_linux_backend_is_named_by_repr() -> None:
    """TRIOPROC_BACKEND=linux (the default on Linux): repr names it."""
    async with trioproc.spawn(["true"]) as transport:
        assert "backend=linux" in repr(transport)


def test_the_default_backend_is_the_platforms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unset, the backend is linux on Linux and portable (with the POSIX
    hooks) on macOS and the BSDs."""
    monkeypatch.delenv("TRIOPROC_BACKEND", raising=False)
    monkeypatch.setattr(_backends, "_made", {})
    monkeypatch.setattr(sys, "platform", "linux")
    assert _backends.current_backend().name == "linux"
    for platform in ("darwin", "freebsd14"):
        monkeypatch.setattr(_backends, "_made", {})
        monkeypatch.setattr(sys, "platform", platform)
        backend = _backends.current_backend()
        assert backend.name == "portable"
        assert backend.hooks is _platform.POSIX  # type: ignore[union-attr]


def test_a_bad_backend_name_is_a_clear_error_at_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A TRIOPROC_BACKEND that names no backend raises at spawn(), naming the
    variable, the value and the backends there are."""
    monkeypatch.setenv("TRIOPROC_BACKEND", "windoze")
    with pytest.raises(ValueError, match="TRIOPROC_BACKEND='windoze'") as caught:
        trioproc.spawn(["true"])
    assert "'linux', 'portable'" in str(caught.value)


def test_the_linux_backend_off_linux_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TRIOPROC_BACKEND=linux on macOS names the platform and the way out."""
    monkeypatch.setenv("TRIOPROC_BACKEND", "linux")
    monkeypatch.setattr(_backends, "_made", {})
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(ValueError, match="linux backend runs on Linux only"):
        trioproc.spawn(["true"])


@pytest.mark.usefixtures("on_portable")
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pty": True}, r"pty=True is not supported by the portable backend"),
        ({"cgroup": True}, r"cgroup=True is not supported by the portable backend"),
        ({"host": "example.org"}, r"host= is not supported by the portable backend"),
        ({"child_fds": {0: "w", 3: "r"}}, r"child_fds\[3\]='r' is not supported"),
        ({"child_fds": {0: "w", 3: "w"}}, r"child_fds\[3\]='w' is not supported"),
        ({"child_fds": {0: "r"}}, r"child_fds\[0\]='r' is not supported"),
        ({"child_fds": {1: "w"}}, r"child_fds\[1\]='w' is not supported"),
    ],
)
def test_what_the_portable_backend_cannot_do_is_refused_at_the_call(
    kwargs: dict[str, object], match: str
) -> None:
    """Each option the portable backend cannot honour raises ValueError at
    spawn() itself -- naming the option, the backend and the platform --
    before any child exists."""
    with pytest.raises(ValueError, match=match) as caught:
        trioproc.spawn(CAT, **kwargs)  # type: ignore[call-overload]
    assert "(POSIX)" in str(caught.value)


@pytest.mark.usefixtures("on_portable")
async def test_a_parent_fd_elsewhere_than_its_number_is_refused_by_run() -> None:
    """run() refuses too, naming what would work instead."""
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(ValueError, match=r"child_fds=\{5: 5\}"):
            await trioproc.run(["true"], child_fds={5: write_end})
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.usefixtures("on_portable")
async def test_a_parent_fd_at_its_own_number_reaches_the_child() -> None:
    """child_fds={n: n}: the portable backend hands the parent's fd n over
    at the same number, and the child writes into it."""
    read_end, write_end = os.pipe()
    try:
        child = python(f"import os; os.write({write_end}, b'via my own fd')")
        async with trioproc.spawn(
            child, Recorder(), child_fds={0: "w", 1: "r", write_end: write_end}
        ):
            pass
        assert os.read(read_end, 100) == b"via my own fd"
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.usefixtures("on_portable")
async def test_portable_children_get_their_own_group_session_and_identity() -> None:
    """process_group (the default), new_session and process_group=False mean
    on the portable backend what they mean on Linux; uid= keeps no
    supplementary group of the parent."""
    report = python(
        "import os\n"
        "print(os.getpid() == os.getpgid(0), os.getpid() == os.getsid(0), "
        "os.getgroups() == [])\n"
    )
    ours = str(os.getgroups() == []).encode()
    expected = {
        "default": b"True False " + ours,
        "new_session": b"True True " + ours,
        "process_group": b"False False " + ours,
    }
    if os.getuid() == 0:  # pragma: no branch - root here
        expected["uid"] = b"True False True"
    options: dict[str, dict[str, object]] = {
        "default": {},
        "new_session": {"new_session": True},
        "process_group": {"process_group": False},
        "uid": {"uid": os.getuid(), "gid": os.getgid()},
    }
    for name, want in expected.items():
        result = await trioproc.run(report, **options[name])  # type: ignore[arg-type]
        assert result.stdout.strip() == want, name


@pytest.mark.usefixtures("on_portable")
async def test_the_portable_block_ends_the_childs_process_group() -> None:
    """A cancelled block stops the child's whole process group and returns
    only once it is gone: a grandchild does not outlive it."""
    protocol = Recorder()
    with trio.move_on_after(10) as scope:
        async with trioproc.spawn(
            ["sh", "-c", "sleep 60 & echo $!; wait"], protocol
        ) as transport:
            await protocol.wait_for_output(b"\n")
            grandchild = int(protocol.out(1))
            scope.cancel()
    assert transport.returncode == -15
    with pytest.raises(ProcessLookupError):
        os.kill(grandchild, 0)


@pytest.mark.usefixtures("on_portable")
async def test_portable_stop_kills_what_ignores_sigterm_and_a_missing_program() -> None:
    """stop() sends SIGKILL after kill_after to a child that ignores SIGTERM;
    a program that is not there raises FileNotFoundError on entering."""
    protocol = Recorder()
    ignores = python(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    async with trioproc.spawn(ignores, protocol, kill_after=0.2) as transport:
        await protocol.wait_for_output(b"ready")
        assert await transport.stop() == -9
        with pytest.raises(trioproc.ProcessExitedAlready):
            transport.signalProcess("TERM")
    with pytest.raises(FileNotFoundError):
        async with trioproc.spawn(["/no/such/program"]):
            pass  # pragma: no cover - never entered
    with pytest.raises(FileNotFoundError):
        async with trioproc.spawn(SLEEP(1), cwd="/no/such/directory"):
            pass  # pragma: no cover - never entered


@pytest.mark.usefixtures("on_portable")
async def test_portable_stream_mode_with_redirects_and_env() -> None:
    """Stream mode, stderr=STDOUT into the stdout pipe, DEVNULL, env and cwd
    on the portable backend."""
    child = ["sh", "-c", 'echo "$GREETING"; pwd; echo err >&2; cat']
    async with trioproc.spawn(
        child,
        env={"GREETING": "hello", "PATH": os.environ["PATH"]},
        cwd="/",
        stdin=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    ) as transport:
        assert transport.stdin is None
        assert transport.stderr is None
        assert transport.stdout is not None
        output = b""
        while chunk := await transport.stdout.receive_some():
            output += chunk
    assert output == b"hello\n/\nerr\n"
    assert transport.returncode == 0


class _SealedTree:
    """A POSIX tree that says no process can leave it, as a Job Object."""

    sealed = True

    def __init__(self, tree: _platform.PosixTree) -> None:
        self._tree = tree

    def __getattr__(self, name: str) -> object:
        return getattr(self._tree, name)


class _SealedHooks(_platform.PosixHooks):
    def adopt(self, process: trio.Process, options: object) -> _SealedTree:  # type: ignore[override]
        return _SealedTree(super().adopt(process, options))  # type: ignore[arg-type]


@pytest.mark.parametrize("sealed", [True, False])
async def test_a_sealed_tree_gone_tells_that_input_is_no_longer_read(
    monkeypatch: pytest.MonkeyPatch, sealed: bool
) -> None:
    """Where a pipe's write end cannot see its reader close (Windows, played
    here by turning the idle watch off), a tree no process can leave (a Job
    Object) tells it instead: once the child and its tree are gone, fd 0 is
    lost and processEnded comes while the block still runs. A tree that can
    be left (a process group) does not: its input is ended with the block."""
    from trioproc._os import _stream_writer
    from trioproc._os._portable import PortableBackend

    monkeypatch.setattr(_stream_writer, "_WATCH_IDLE", False)
    hooks = _SealedHooks() if sealed else _platform.PosixHooks()
    monkeypatch.setenv("TRIOPROC_BACKEND", "portable")
    monkeypatch.setattr(_backends, "_made", {"portable": PortableBackend(hooks)})
    protocol = Recorder()
    async with trioproc.spawn(["sh", "-c", "exit 3"], protocol):
        with trio.move_on_after(1 if sealed else 0.3):
            await protocol.wait_for(lambda: "ended" in protocol.kinds())
        assert ("ended" in protocol.kinds()) is sealed
        assert (("lost", 0) in protocol.events) is sealed
    assert protocol.events[-1] == ("ended", "ProcessTerminated", 3, None)
