"""Starting children: exactly the fds given, clean signal state, and real errors."""

from __future__ import annotations

import grp
import json
import os
import pwd
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

import trioproc
from trioproc._os import _posix_spawn

from .helpers import Recorder, python

#: Prints a JSON object describing the child: its fds (and whether each is
#: blocking), cwd, session, process group, ids and supplementary groups.
DESCRIBE = python(
    "import json, os\n"
    "names = os.listdir('/proc/self/fd')\n"
    "fds = {}\n"
    "for name in names:\n"
    "    try:\n"
    "        fds[name] = os.get_blocking(int(name))\n"
    "    except OSError:\n"
    "        pass  # the fd listdir itself used\n"
    "out = json.dumps({'fds': fds, 'cwd': os.getcwd(), 'sid': os.getsid(0),\n"
    "    'pid': os.getpid(), 'pgrp': os.getpgrp(), 'uid': os.getuid(),\n"
    "    'gid': os.getgid(), 'groups': os.getgroups(), 'env': dict(os.environ)})\n"
    "os.write(int(os.environ.get('OUT_FD', '1')), out.encode())\n"
)


async def describe(**kwargs: object) -> dict[str, object]:
    """Run DESCRIBE with spawn() *kwargs* and return what it printed on fd 1."""
    protocol = Recorder()
    async with trioproc.spawn(DESCRIBE, protocol, **kwargs):  # type: ignore[arg-type]
        pass
    assert protocol.events[-1][:3] == ("ended", "ProcessDone", 0), protocol.events
    result: dict[str, object] = json.loads(protocol.out(1))
    return result


async def test_the_child_gets_exactly_the_default_fds_blocking() -> None:
    """The child sees fds 0, 1, 2 and nothing the parent had open, and its
    pipe ends are blocking (the parent's O_NONBLOCK never leaks)."""
    inheritable = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(inheritable, True)  # a careless parent fd
    try:
        info = await describe()
    finally:
        os.close(inheritable)
    assert info["fds"] == {"0": True, "1": True, "2": True}


async def test_extra_fds_r_w_and_int_together_with_cwd_and_env(tmp_path: Path) -> None:
    """fds 3/4/5 as "r", "w" and a parent fd, at once with cwd and env."""
    handed = tmp_path / "handed"
    parent_fd = os.open(handed, os.O_WRONLY | os.O_CREAT, 0o600)
    child = python(
        "import os\n"
        "os.write(3, os.getcwd().encode() + b'|' + os.environ['WHO'].encode())\n"
        "os.write(5, os.read(4, 100).upper())\n"
        "names = os.listdir('/proc/self/fd')\n"
        "def is_open(fd):\n"
        "    try:\n"
        "        return os.fstat(fd) is not None\n"
        "    except OSError:\n"
        "        return False\n"
        "print(sorted(int(f) for f in names if is_open(int(f))))\n"
    )
    protocol = Recorder()
    try:
        async with trioproc.spawn(
            child,
            protocol,
            child_fds={1: "r", 3: "r", 4: "w", 5: parent_fd},
            cwd=tmp_path,
            env={"WHO": "child"},
        ) as transport:
            transport.writeToChild(4, b"through fd four")
            transport.closeChildFD(4)
    finally:
        os.close(parent_fd)
    assert protocol.out(3) == f"{tmp_path}|child".encode()
    assert handed.read_bytes() == b"THROUGH FD FOUR"
    # fds 0 and 2, which child_fds leaves out, are /dev/null, not closed.
    assert protocol.out(1) == b"[0, 1, 2, 3, 4, 5]\n"
    assert sorted(event for event in protocol.events if event[0] == "lost") == [
        ("lost", 1),
        ("lost", 3),
        ("lost", 4),
    ]


async def test_parent_fds_can_be_swapped_and_shared() -> None:
    """{a: b, b: a} swaps two parent fds, and one parent fd can serve two
    child fds (merged output), whatever the numbers."""
    read_a, write_a = os.pipe()
    read_b, write_b = os.pipe()
    try:
        child = python(
            f"import os\n"
            f"os.write({write_a}, b'to-a-number')\n"
            f"os.write({write_b}, b'to-b-number')\n"
            f"os.write(7, b'seven')\n"
        )
        async with trioproc.spawn(
            child,
            Recorder(),
            child_fds={write_a: write_b, write_b: write_a, 7: write_a},
        ):
            pass
        os.close(write_a)
        os.close(write_b)
        assert os.read(read_b, 100) == b"to-a-number"
        assert os.read(read_a, 100) == b"to-b-numberseven"
    finally:
        os.close(read_a)
        os.close(read_b)


async def test_signals_are_default_and_unblocked_in_the_child() -> None:
    """Ignored signals and a blocked mask in the parent do not reach the child.

    Python itself ignores SIGPIPE; a child that inherited that would not die
    on a closed pipe as shell tools must.
    """
    read_status = ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]
    previous = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    try:
        result = await trioproc.run(read_status)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR2})
        signal.signal(signal.SIGUSR1, previous)
    assert result.stdout == b"SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"


async def test_new_session_makes_the_child_lead_a_session() -> None:
    """new_session=True: the child leads its own session and process group."""
    info = await describe(new_session=True)
    assert info["sid"] == info["pid"] == info["pgrp"]
    plain = await describe()
    assert plain["sid"] == os.getsid(0)


async def test_empty_env_is_an_empty_environment() -> None:
    """env={} gives the child no variables at all (not the parent's)."""
    result = await trioproc.run(["/usr/bin/env"], env={})
    assert result.stdout == b""


async def test_env_none_inherits_the_current_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """env=None passes os.environ as it is now, changes included."""
    monkeypatch.setenv("TRIOPROC_TEST_VALUE", "seen")
    result = await trioproc.run(["/usr/bin/env"])
    assert b"TRIOPROC_TEST_VALUE=seen\n" in result.stdout


async def test_argv0_is_searched_on_the_childs_path(tmp_path: Path) -> None:
    """With env, PATH comes from env (as execvpe does), not from the parent."""
    program = tmp_path / "only-here"
    program.write_text("#!/bin/sh\necho found me\n")
    program.chmod(0o755)
    result = await trioproc.run(["only-here"], env={"PATH": str(tmp_path)})
    assert result.stdout == b"found me\n"
    with pytest.raises(FileNotFoundError, match="only-here"):
        await trioproc.run(["only-here"])


async def test_executable_overrides_argv0() -> None:
    """executable= runs that program with argv[0] as given."""
    result = await trioproc.run(["pretend-name", "-c", "echo $0"], executable="/bin/sh")
    assert result.stdout == b"pretend-name\n"


@pytest.mark.parametrize(
    ("argv", "kwargs", "error", "names"),
    [
        (
            ["no-such-program-anywhere"],
            {},
            FileNotFoundError,
            "no-such-program-anywhere",
        ),
        (["/no/such/path"], {}, FileNotFoundError, "/no/such/path"),
        (["/etc/passwd"], {}, PermissionError, "/etc/passwd"),
        (["/"], {}, PermissionError, "/"),
        (["true"], {"cwd": "/no/such/dir"}, FileNotFoundError, "(cwd): '/no/such/dir'"),
        (["true"], {"cwd": "/etc/passwd"}, NotADirectoryError, "(cwd): '/etc/passwd'"),
        (["true"], {"executable": "/no/such/exe"}, FileNotFoundError, "/no/such/exe"),
    ],
)
async def test_a_program_that_cannot_start_raises_on_entering(
    argv: list[str], kwargs: dict[str, object], error: type[OSError], names: str
) -> None:
    """The matching OSError comes from entering the block -- never an exit code
    127 -- and nothing is left: no fd, no zombie (the guard checks both)."""
    protocol = Recorder()
    with pytest.raises(error) as info:
        async with trioproc.spawn(argv, protocol, **kwargs):  # type: ignore[arg-type]
            pytest.fail("the block must not run")
    assert names in str(info.value)
    assert protocol.events == []


async def test_a_non_executable_on_path_is_permission_error(tmp_path: Path) -> None:
    """A match on PATH without the execute bit is PermissionError, as exec says."""
    (tmp_path / "not-exec").write_text("#!/bin/sh\n")
    with pytest.raises(PermissionError, match="not-exec"):
        await trioproc.run(["not-exec"], env={"PATH": str(tmp_path)})


@pytest.fixture
def without_closefrom(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_posix_spawn, "HAS_ADDCLOSEFROM", False)
    return


async def test_fd_exactness_holds_without_libc_closefrom(
    without_closefrom: None,
) -> None:
    """Where libc has no addclosefrom_np, inherited fds are still closed."""
    inheritable = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(inheritable, True)
    try:
        info = await describe()
    finally:
        os.close(inheritable)
    assert info["fds"] == {"0": True, "1": True, "2": True}


async def test_cwd_works_without_libc_chdir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Where libc has no addchdir_np, the trampoline changes directory, with
    the same contract: exact fds and errors raised on entering."""
    monkeypatch.setattr(_posix_spawn, "HAS_ADDCHDIR", False)
    info = await describe(cwd=tmp_path)
    assert info["cwd"] == str(tmp_path)
    assert info["fds"] == {"0": True, "1": True, "2": True}
    with pytest.raises(FileNotFoundError, match="cwd"):
        await describe(cwd=tmp_path / "missing")


needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="switching uid/gid needs privilege"
)


#: The shell's ids, supplementary groups, fds and environment, one per line.
#: (A shell, not Python: the user switched to may not read this Python.)
DESCRIBE_SH = [
    "/bin/sh",
    "-c",
    # No $(...): the shell would hold that pipe open while listing.
    "id -u; id -g; id -G; ls /proc/$$/fd; echo --; exec env",
]


async def describe_sh(**kwargs: object) -> list[str]:
    """uid, gid, groups, the fds (space-separated), then the environment."""
    result = await trioproc.run(DESCRIBE_SH, **kwargs)
    lines = result.stdout.decode().splitlines()
    end_of_fds = lines.index("--")
    return [*lines[:3], " ".join(lines[3:end_of_fds]), *lines[end_of_fds + 1 :]]


@needs_root
async def test_uid_and_gid_switch_identity_and_drop_groups() -> None:
    """uid/gid: the child runs as that user, with no supplementary group of
    the parent, and still gets exactly its fds -- extra fds included."""
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    try:
        lines = await describe_sh(
            uid=nobody.pw_uid,
            gid=nobody.pw_gid,
            child_fds={0: "w", 1: "r", 2: "r", 5: write_end},
            env={"KEEP": "me", "PATH": os.defpath},
        )
    finally:
        os.close(read_end)
        os.close(write_end)
    uid, gid, groups, fds, *env = lines
    assert (int(uid), int(gid)) == (nobody.pw_uid, nobody.pw_gid)
    assert groups == str(nobody.pw_gid)  # its own gid only: none of ours
    assert fds == "0 1 2 5"
    # The environment is the one given (the shell adds only PWD).
    assert {line for line in env if not line.startswith("PWD=")} == {
        f"PATH={os.defpath}",
        "KEEP=me",
    }


@needs_root
async def test_uid_by_name_and_errors_on_the_trampoline_path() -> None:
    """Names work; a missing program still raises FileNotFoundError on
    entering, with the identity switch in the way."""
    nobody = pwd.getpwnam("nobody")
    lines = await describe_sh(uid="nobody", gid=grp.getgrgid(nobody.pw_gid).gr_name)
    assert int(lines[0]) == nobody.pw_uid
    with pytest.raises(FileNotFoundError, match="/no/such/program"):
        async with trioproc.spawn(["/no/such/program"], Recorder(), uid="nobody"):
            pass


@needs_root
async def test_exec_refused_after_the_switch_is_an_error_on_entering(
    tmp_path: Path,
) -> None:
    """A program the new user may not run raises PermissionError on entering
    (the check happens after the switch, in the child), with nothing left."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    program = private / "tool"
    program.write_text("#!/bin/sh\necho ran\n")
    program.chmod(0o755)
    assert (await trioproc.run([program])).stdout == b"ran\n"  # root may
    with pytest.raises(PermissionError, match="tool"):
        async with trioproc.spawn([program], Recorder(), uid="nobody"):
            pytest.fail("the block must not run")


@needs_root
async def test_trampoline_signals_are_default(tmp_path: Path) -> None:
    """The trampoline is Python, which ignores SIGPIPE; the program must not
    inherit that."""
    result = await trioproc.run(
        ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"], uid=0, cwd=tmp_path
    )
    assert result.stdout == b"SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"


@needs_root
async def test_cancelled_while_the_trampoline_starts() -> None:
    """Cancelling a uid/gid spawn before the program runs leaves nothing."""
    with trio.move_on_after(0.001):
        async with trioproc.spawn(["sleep", "30"], Recorder(), uid="nobody"):
            await trio.sleep_forever()


async def test_launch_failure_releases_prepared_fds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the system runs out of something mid-way, nothing stays open."""
    calls = 0
    real_pipe2 = os.pipe2

    def failing_pipe2(flags: int) -> tuple[int, int]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(24, "Too many open files")
        return real_pipe2(flags)

    monkeypatch.setattr(os, "pipe2", failing_pipe2)
    with pytest.raises(OSError, match="Too many open files"):
        async with trioproc.spawn(["true"], Recorder()):
            pass


def test_find_program_prefers_executables_and_reports_denied(tmp_path: Path) -> None:
    """PATH search skips non-executable matches when an executable one follows."""
    from trioproc._os._launch import find_program

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "tool").write_text("")
    (second / "tool").write_text("#!/bin/sh\n")
    (second / "tool").chmod(stat.S_IRWXU)
    path = f"{first}:{second}".encode()
    assert find_program(b"tool", path) == str(second / "tool").encode()
    with pytest.raises(PermissionError):
        find_program(b"tool", str(first).encode())


def lowest_free_fds(count: int) -> list[int]:
    """The fd numbers the next *count* opens will get."""
    probes = [os.open(os.devnull, os.O_RDONLY) for _ in range(count)]
    for fd in probes:
        os.close(fd)
    return sorted(probes)


@needs_root
@pytest.mark.parametrize("offset", [1, 2])
async def test_the_trampolines_pipes_survive_any_fd_layout(
    tmp_path: Path, offset: int
) -> None:
    """The trampoline's status pipe may land right above the child's highest
    fd, where its payload pipe is moved: an exec failure is still reported
    (here: a script whose interpreter is missing)."""
    script = tmp_path / "script"
    script.write_text("#!/no/such/interpreter\n")
    script.chmod(0o755)
    held = os.open(os.devnull, os.O_RDONLY)
    try:
        # The payload pipe is opened first, then the status pipe: put the
        # status pipe's write end (the 4th new fd) at top + offset.
        top = lowest_free_fds(4)[3] - offset
        with pytest.raises(FileNotFoundError, match="script"):
            async with trioproc.spawn(
                [script], Recorder(), uid=os.getuid(), child_fds={top: held}
            ):
                pytest.fail("the block must not run")
    finally:
        os.close(held)
