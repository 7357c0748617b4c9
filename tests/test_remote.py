"""Children on another host (``spawn(..., host=...)``), against a real sshd.

The module's sshd (`tests.sshd`) listens on 127.0.0.1 only, so "the remote
host" is this machine and its ``/proc`` shows what runs there: a marker in
the remote program's environment finds every process of its tree.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import trio

import trioproc

from .helpers import PY, Recorder, kill_marked, marked_alive
from .sshd import TestSSHD, Unavailable

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def sshd() -> Iterator[TestSSHD]:
    try:
        server = TestSSHD.start()
    except Unavailable as exc:
        pytest.skip(f"no test sshd: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def opts(sshd: TestSSHD) -> list[str]:
    return sshd.options()


@pytest.fixture
def mark() -> Iterator[str]:
    value = uuid.uuid4().hex
    yield value
    left = marked_alive(value)
    kill_marked(value)
    assert not left, f"remote processes left behind: {left}"


def marked_env(mark: str) -> dict[str, str]:
    return {"TRIOPROC_TEST_MARK": mark, "PATH": "/usr/bin:/bin"}


def remote_python(code: str) -> list[str]:
    return [PY, "-I", "-S", "-c", code]


async def wait_no_marked(mark: str, seconds: float) -> list[int]:
    """Poll /proc (bounded) until no process holds *mark*; return what is left."""
    with trio.move_on_after(seconds):
        while marked_alive(mark):  # noqa: ASYNC110 - polling /proc
            await trio.sleep(0.02)
    return marked_alive(mark)


async def wait_marked(mark: str, pid: int, seconds: float) -> list[int]:
    """Poll /proc (bounded) until *pid* holds *mark*; return what holds it.

    A shell that prints and then ``exec``s is reported ready by its output
    while the exec may still be under way, and a process's environ cannot
    be read in the middle of one."""
    with trio.move_on_after(seconds):
        while pid not in marked_alive(mark):  # noqa: ASYNC110 - polling /proc
            await trio.sleep(0.02)
    return marked_alive(mark)


# --- output, exit, stdin, env, cwd -----------------------------------------


async def test_output_and_exit_status_are_the_remote_programs(opts: list[str]) -> None:
    """stdout and stderr stay separate, and the exit status is the program's,
    not ssh's."""
    done = await trioproc.run(
        ["sh", "-c", "echo out; echo err >&2; exit 3"],
        host=HOST,
        ssh_options=opts,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out\n", b"err\n")


async def test_argv_arrives_exactly(opts: list[str]) -> None:
    """Arguments reach the remote program as given: never re-split, and no
    character means anything to a shell on the way."""
    args = ["a b", "", "'", '"', "$HOME", "`id`", "x;y", "*", "\\", "new\nline", "é"]
    done = await trioproc.run(
        [*remote_python("import sys; print(repr(sys.argv[1:]))"), *args],
        host=HOST,
        ssh_options=opts,
    )
    assert done.stdout.decode().strip() == repr(args)


async def test_stdin_round_trip_with_a_protocol(opts: list[str]) -> None:
    """What the parent writes reaches the remote program's stdin, its output
    comes back, closing stdin is its end of file, and the callbacks keep the
    contract's order."""
    recorder = Recorder()
    async with trioproc.spawn(
        ["cat"], recorder, host=HOST, ssh_options=opts
    ) as transport:
        transport.write(b"hello\n")
        await recorder.wait_for_output(b"hello\n")
        transport.write(b"bye\n")
        transport.closeStdin()
    assert recorder.out() == b"hello\nbye\n"
    assert recorder.kinds()[0] == "connectionMade"
    assert recorder.kinds()[-1] == "ended"
    assert transport.returncode == 0


async def test_env_is_exactly_what_is_given_and_cwd_is_remote(opts: list[str]) -> None:
    """With env= the remote program's environment is exactly that mapping;
    without, the remote login's own -- never the local environment."""
    done = await trioproc.run(
        ["env"],
        host=HOST,
        ssh_options=opts,
        env={"A": "x y", "B": "'$q'", "PATH": "/usr/bin:/bin"},
    )
    assert sorted(done.stdout.decode().splitlines()) == [
        "A=x y",
        "B='$q'",
        "PATH=/usr/bin:/bin",
    ]
    os.environ["TRIOPROC_LOCAL_ONLY"] = "1"
    try:
        done = await trioproc.run(["env"], host=HOST, ssh_options=opts, cwd="/tmp")
    finally:
        del os.environ["TRIOPROC_LOCAL_ONLY"]
    assert b"TRIOPROC_LOCAL_ONLY" not in done.stdout
    assert b"SSH_CONNECTION=" in done.stdout  # the remote login's environment
    done = await trioproc.run(["pwd"], host=HOST, ssh_options=opts, cwd="/tmp")
    assert done.stdout == b"/tmp\n"


async def test_ssh_options_as_a_config_file(sshd: TestSSHD, tmp_path: object) -> None:
    """ssh_options= may name an ssh_config file instead of listing options."""
    config = sshd.directory / "client_config"
    config.write_text("".join(f"{o.replace('=', ' ', 1)}\n" for o in sshd.options()))
    done = await trioproc.run(["echo", "ok"], host=HOST, ssh_options=str(config))
    assert done.stdout == b"ok\n"


# --- errors from entering ----------------------------------------------------


async def test_unreachable_host_raises_from_entering(sshd: TestSSHD) -> None:
    """A closed port is a HostUnreachableError naming the host, not exit 255."""
    options = [o for o in sshd.options() if not o.startswith("Port=")]
    with pytest.raises(trioproc.HostUnreachableError, match=HOST) as caught:
        async with trioproc.spawn(
            ["true"], host=HOST, ssh_options=["Port=1", *options]
        ):
            pytest.fail("entered")  # pragma: no cover
    assert isinstance(caught.value, ConnectionError)
    assert "refused" in str(caught.value)


async def test_wrong_key_is_an_authentication_error(sshd: TestSSHD) -> None:
    """A key the host does not accept: AuthenticationError (a PermissionError)."""
    options = sshd.options(key=sshd.other_key("stranger"))
    with pytest.raises(trioproc.AuthenticationError, match=HOST) as caught:
        async with trioproc.spawn(["true"], host=HOST, ssh_options=options):
            pytest.fail("entered")  # pragma: no cover
    assert isinstance(caught.value, PermissionError)
    assert caught.value.host == HOST


async def test_host_key_mismatch_is_refused(sshd: TestSSHD) -> None:
    """A known-hosts file with another key for the host: HostKeyError."""
    other = sshd.other_key("impostor")
    known = sshd.directory / "wrong_known_hosts"
    kind, key = (other.parent / f"{other.name}.pub").read_text().split()[:2]
    known.write_text(f"[{HOST}]:{sshd.port} {kind} {key}\n")
    with pytest.raises(trioproc.HostKeyError, match="host key"):
        async with trioproc.spawn(
            ["true"], host=HOST, ssh_options=sshd.options(known_hosts=known)
        ):
            pytest.fail("entered")  # pragma: no cover


async def test_missing_remote_program_is_file_not_found(
    opts: list[str], mark: str
) -> None:
    """A program the remote PATH lacks raises FileNotFoundError from entering,
    naming it and the host, with env= (its PATH) or without."""
    for env in (None, marked_env(mark)):
        with pytest.raises(FileNotFoundError, match=HOST) as caught:
            async with trioproc.spawn(
                ["no-such-program-x"], host=HOST, ssh_options=opts, env=env
            ):
                pytest.fail("entered")  # pragma: no cover
        assert caught.value.filename == "no-such-program-x"
    with pytest.raises(PermissionError, match=HOST):
        await trioproc.run(["/etc/passwd"], host=HOST, ssh_options=opts)


async def test_missing_remote_cwd_raises_from_entering(opts: list[str]) -> None:
    """A remote cwd that does not exist, or is not a directory, raises the
    matching OSError naming it and the host."""
    with pytest.raises(FileNotFoundError, match=HOST) as caught:
        await trioproc.run(["true"], host=HOST, ssh_options=opts, cwd="/no/such/dir")
    assert caught.value.filename == "/no/such/dir"
    with pytest.raises(NotADirectoryError):
        await trioproc.run(["true"], host=HOST, ssh_options=opts, cwd="/etc/passwd")


def test_bad_remote_arguments_fail_at_the_call() -> None:
    """What a remote child cannot do is refused at spawn(), before any ssh."""
    with pytest.raises(ValueError, match="only fds 0, 1 and 2"):
        trioproc.spawn(["true"], host=HOST, child_fds={0: "w", 1: "r", 3: "r"})
    with pytest.raises(ValueError, match="uid"):
        trioproc.spawn(["true"], host=HOST, uid=0)
    with pytest.raises(ValueError, match="needs host"):
        trioproc.spawn(["true"], ssh_options=["Port=22"])
    with pytest.raises(ValueError, match="Key=Value"):
        trioproc.spawn(["true"], host=HOST, ssh_options=["-oPort=22"])
    with pytest.raises(ValueError, match="ssh destination"):
        trioproc.spawn(["true"], host="-oProxyCommand=x")
    with pytest.raises(TypeError, match="host must be a str"):
        trioproc.spawn(["true"], host=1)  # type: ignore[arg-type]


# --- pid and signals ------------------------------------------------------------

_SIGNAL_RECORDER = (
    "import os, signal, sys\n"
    "def got(n, f): print(signal.Signals(n).name, flush=True)\n"
    "for s in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1): signal.signal(s, got)\n"
    "print(os.getpid(), os.getpgrp(), flush=True)\n"
    "while True: signal.pause()\n"
)


async def test_pid_is_remote_and_signals_reach_the_program(
    opts: list[str], mark: str
) -> None:
    """transport.pid is the remote program's own pid; INT, HUP and USR1 reach
    it in order, and TERM ends it: returncode -15, as for a local child."""
    recorder = Recorder()
    async with trioproc.spawn(
        remote_python(_SIGNAL_RECORDER),
        recorder,
        host=HOST,
        ssh_options=opts,
        env=marked_env(mark),
    ) as transport:
        await recorder.wait_for_output(b"\n")
        pid, pgid = map(int, recorder.out().split())
        assert transport.pid == pid == recorder.pids_at["makeConnection"]
        assert marked_alive(mark) == [pid]  # the program itself, on the remote side
        for name in ("INT", "HUP", "USR1"):
            transport.signalProcess(name)
            await recorder.wait_for_output(name.encode() + b"\n")
        transport.signalProcess("TERM")
        assert await transport.wait() == -signal.SIGTERM
    assert recorder.out().split()[2:] == [b"SIGINT", b"SIGHUP", b"SIGUSR1"]
    assert transport.pid is None
    assert pgid != pid  # its group is the wrapper's, which signals reach too


# --- leaving the block, and lost connections ------------------------------------

_TREE = "trap '' TERM; sleep 100 & echo started; wait"


async def test_cancellation_ends_the_remote_tree_before_returning(
    opts: list[str], mark: str
) -> None:
    """Cancelling the block stops the remote program and what it started
    (TERM, then KILL after kill_after for one that ignores TERM), and the
    block returns only once none of it is left on the remote host."""
    recorder = Recorder()
    started = time.monotonic()
    with trio.move_on_after(20) as scope:
        async with trioproc.spawn(
            ["sh", "-c", _TREE],
            recorder,
            host=HOST,
            ssh_options=opts,
            env=marked_env(mark),
            kill_after=0.5,
        ):
            await recorder.wait_for_output(b"started\n")
            assert len(marked_alive(mark)) == 2
            scope.cancel()
    assert scope.cancelled_caught
    assert marked_alive(mark) == []
    assert time.monotonic() - started >= 0.5  # TERM was ignored: KILL came after


async def test_stop_returns_once_the_remote_tree_is_gone(
    opts: list[str], mark: str
) -> None:
    """transport.stop() runs the same sequence and returns -15 for a program
    that TERM ends."""
    async with trioproc.spawn(
        ["sleep", "100"], host=HOST, ssh_options=opts, env=marked_env(mark)
    ) as transport:
        # Entering returns once the wrapper reported the pid; the program's
        # exec (and so its marked environment) may come a moment later.
        with trio.fail_after(5):
            while marked_alive(mark) != [transport.pid]:  # noqa: ASYNC110
                await trio.sleep(0.01)
        assert await transport.stop() == -signal.SIGTERM
        assert marked_alive(mark) == []


@pytest.mark.deadline(20)
async def test_a_dropped_connection_ends_the_remote_tree(
    opts: list[str], mark: str
) -> None:
    """When the connection is lost (here: the local ssh SIGKILLed), the
    remote side ends the program's tree itself, within a bounded time."""
    recorder = Recorder()
    async with trioproc.spawn(
        ["sh", "-c", _TREE],
        recorder,
        host=HOST,
        ssh_options=opts,
        env=marked_env(mark),
        kill_after=0.5,
    ) as transport:
        await recorder.wait_for_output(b"started\n")
        local_ssh = transport._child.pid
        assert local_ssh is not None
        assert local_ssh != transport.pid
        os.kill(local_ssh, signal.SIGKILL)
    assert transport.returncode == -signal.SIGKILL
    assert await wait_no_marked(mark, 5) == []


async def test_cancelling_while_connecting_leaves_nothing(
    opts: list[str], mark: str
) -> None:
    """A cancellation while ssh connects leaves no local process, fd or file;
    a remote wrapper that had started ends its program itself."""
    entered = 0
    for delay in (0.0, 0.02, 0.05, 0.1, 0.15, 0.2):
        with trio.move_on_after(delay):
            async with trioproc.spawn(
                ["sleep", "100"], host=HOST, ssh_options=opts, env=marked_env(mark)
            ):
                entered += 1  # connected in time: then the block ends it
                await trio.sleep_forever()
    assert entered < 6  # some cancellations came while connecting
    assert await wait_no_marked(mark, 8) == []


# --- pseudo-terminals --------------------------------------------------------------


async def test_pty_is_a_remote_terminal_and_resize_reaches_it(opts: list[str]) -> None:
    """pty=True runs the program on a remote terminal (ssh -tt) of the given
    size, and resize() sets the remote window size (the program gets
    SIGWINCH)."""
    code = (
        "import os, signal, sys\n"
        "print('tty', os.isatty(0), os.get_terminal_size(0), flush=True)\n"
        "signal.signal(signal.SIGWINCH, lambda n, f: os.write("
        "1, b'size %d %d\\n' % os.get_terminal_size(0)))\n"
        "print('line', sys.stdin.readline().strip(), flush=True)\n"
        "while True: signal.pause()\n"
    )
    recorder = Recorder()
    async with trioproc.spawn(
        remote_python(code), recorder, host=HOST, ssh_options=opts, pty=(30, 100)
    ) as transport:
        await recorder.wait_for_output(b"tty")
        await recorder.wait_for_output(b"\n")
        assert b"tty True os.terminal_size(columns=100, lines=30)" in recorder.out()
        transport.write(b"typed\n")
        await recorder.wait_for_output(b"line typed")
        transport.resize(40, 120)
        await recorder.wait_for_output(b"size 120 40")
        transport.signalProcess("TERM")
        await transport.wait()
    assert transport.returncode == -signal.SIGTERM


# --- the supervisor ---------------------------------------------------------------


async def test_a_supervisor_runs_a_remote_child_beside_a_local_one(
    opts: list[str], mark: str
) -> None:
    """A Supervisor starts, readies (on output) and stops a remote child like
    a local one; nothing is left on the remote host after."""
    async with trioproc.Supervisor() as supervisor:
        local = await supervisor.start(
            trioproc.ChildSpec("local", argv=["sleep", "100"], kill_after=1)
        )
        remote = await supervisor.start(
            trioproc.ChildSpec(
                "remote",
                argv=["sh", "-c", "echo up; exec sleep 100"],
                host=HOST,
                ssh_options=opts,
                env=marked_env(mark),
                ready=trioproc.ready_on_output("up"),
                kill_after=1,
            )
        )
        assert remote.pid in await wait_marked(mark, remote.pid, 5)
        assert local.pid is not None
    assert marked_alive(mark) == []


def test_ssh_is_run_with_the_options_in_order(opts: list[str]) -> None:
    """The forced options come first (ssh keeps the first value it reads),
    the user's next, the defaults last; the remote command is one argument."""
    from trioproc._ssh import RemoteSession

    block = trioproc.spawn(["echo", "a b"], host="u@h", ssh_options=["BatchMode=no"])
    session = RemoteSession.open(block._options)
    try:
        argv = [os.fsdecode(a) for a in session.local_options().argv]
    finally:
        session.close()
    assert argv[:2] == ["ssh", "-T"]
    assert argv.index("ControlPersist=no") < argv.index("BatchMode=no")
    assert argv.index("BatchMode=no") < argv.index("BatchMode=yes")
    assert argv[-2:-1] == ["u@h"]
    assert "'a b'" in argv[-1]


async def test_ready_on_port_checks_the_remote_hosts_port(
    opts: list[str], mark: str
) -> None:
    """ready_on_port(port) with no host checks the remote child's own host."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = (
        "import socket, time\n"
        f"s = socket.create_server(('127.0.0.1', {port}))\n"
        "time.sleep(100)\n"
    )
    async with trioproc.Supervisor() as supervisor:
        child = await supervisor.start(
            trioproc.ChildSpec(
                "server",
                argv=remote_python(server),
                host=f"root@{HOST}",
                ssh_options=opts,
                env=marked_env(mark),
                ready=trioproc.ready_on_port(port),
                kill_after=1,
            )
        )
        assert child.ready
    assert marked_alive(mark) == []


def test_toml_host_and_ssh_options(tmp_path: Path) -> None:
    """A TOML process may name a host and ssh options; its cwd is the remote
    one, as written, and it gets no local environment."""
    from trioproc._fleet import Instance, load

    path = tmp_path / "trioproc.toml"
    path.write_text(
        "[processes.far]\n"
        'argv = ["sleep", "1"]\n'
        'host = "u@example"\n'
        'ssh_options = ["Port=2222"]\n'
        'cwd = "work"\n'
        "[processes.near]\n"
        'argv = ["sleep", "1"]\n'
    )
    fleet = load(path)
    far, near = fleet.processes
    assert (far.host, far.ssh_options, far.cwd) == ("u@example", ("Port=2222",), "work")
    assert near.host is None
    assert near.cwd == str(tmp_path.resolve())
    spec = Instance("far", far, 5000).spec(fleet)
    assert (spec.host, spec.env, spec.wants_cgroup()) == ("u@example", None, False)
    options = spec.spawn_options()
    assert options.remote is not None
    assert options.remote.host == "u@example"


async def test_without_the_control_session_the_wrapper_ends_the_tree(
    opts: list[str], mark: str, caplog: pytest.LogCaptureFixture
) -> None:
    """When the stop sequence cannot reach the host (its control socket is
    gone), the block ends the local ssh and the remote wrapper, seeing its
    connection lost, ends the program's tree; a signal that cannot be
    delivered is logged."""
    async with trioproc.spawn(
        ["sleep", "100"], host=HOST, ssh_options=opts, env=marked_env(mark)
    ) as transport:
        session = transport._child.remote
        assert session is not None
        # No master, and ssh's fallback to a new connection is refused.
        os.unlink(session._control)
        ssh_args = ("-o", "Port=1", *session.remote.ssh_args)
        session.remote = attrs.evolve(session.remote, ssh_args=ssh_args)
        transport.signalProcess("USR2")
        with trio.move_on_after(10):
            while "did not reach" not in caplog.text:  # noqa: ASYNC110 - a log
                await trio.sleep(0.02)
        assert "signal USR2 did not reach" in caplog.text
        await transport.stop(kill_after=0.2)
    assert "could not stop the remote child" in caplog.text
    assert await wait_no_marked(mark, 5) == []


def test_ssh_messages_are_classified() -> None:
    """What ssh prints when it fails becomes the matching error, naming the
    host and quoting ssh."""
    from trioproc._ssh import classify

    cases = {
        "Host key verification failed.": trioproc.HostKeyError,
        "u@h: Permission denied (publickey).": trioproc.AuthenticationError,
        "ssh: connect to host h port 22: Connection refused": (
            trioproc.HostUnreachableError
        ),
        "ssh: Could not resolve hostname h: Name or service not known": (
            trioproc.HostUnreachableError
        ),
        "ssh: connect to host h port 22: Connection timed out": (
            trioproc.HostUnreachableError
        ),
        "ssh: connect to host h port 22: No route to host": (
            trioproc.HostUnreachableError
        ),
    }
    for said, kind in cases.items():
        error = classify("h", said, 255)
        assert type(error) is kind
        assert str(error).startswith("h: ")
        assert said.strip(".") in error.detail
    other = classify("h", "kex_exchange_identification: read: reset\n", 255)
    assert type(other) is trioproc.RemoteError
    assert "status 255" in str(other)
    assert "ssh ended before" in str(classify("h", "", None))


def test_host_names_and_more_refusals() -> None:
    """The host part of a destination (for ready_on_port), and the rest of
    what a remote child refuses at the call."""
    from trioproc._ssh import host_name

    assert host_name("u@h.example") == "h.example"
    assert host_name("h") == "h"
    assert host_name("ssh://u@h:2222") == "h"
    assert host_name("u@[::1]") == "::1"
    with pytest.raises(TypeError, match="Key=Value"):
        trioproc.spawn(["true"], host=HOST, ssh_options=[1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="ssh_config"):
        trioproc.spawn(["true"], host=HOST, ssh_options=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fd 1 or fd 2"):
        trioproc.spawn(["true"], host=HOST, child_fds={0: "w", 1: 1, 2: 2})
    with pytest.raises(ValueError, match="'='"):
        trioproc.spawn(["a=b"], host=HOST, env={})
    with pytest.raises(ValueError, match="cgroup"):
        trioproc.spawn(["true"], host=HOST, cgroup=True)


async def test_status_translation_and_a_full_signal_queue(opts: list[str]) -> None:
    """A remote exit of 128 + N reads as signal N; ssh's 255 after the stop
    sequence's SIGKILL reads as SIGKILL; too many queued signals are refused."""
    from trioproc._ssh import _SIGNAL_QUEUE, RemoteSession

    session = RemoteSession.open(
        trioproc.spawn(["true"], host=HOST, ssh_options=opts)._options
    )
    session.close()
    assert session.translate(143 << 8) == signal.SIGTERM
    assert session.translate(3 << 8) == 3 << 8
    assert session.translate(255 << 8) == 255 << 8
    session._stopped = True
    assert session.translate(255 << 8) == signal.SIGKILL
    for _ in range(_SIGNAL_QUEUE):
        session.signal(signal.SIGUSR1)
    with pytest.raises(trio.BusyResourceError, match="waiting"):
        session.signal(signal.SIGUSR1)
