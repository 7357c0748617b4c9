"""SPEC section 8: every bad input raises a clear error at the call that made it."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
from typing import Any

import pytest
import trio

import trioproc

from .helpers import CAT, SLEEP, Recorder


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"argv": "ls -l"},
            TypeError,
            r"not a single str .*shlex.split\('ls -l'\) == \['ls', '-l'\]",
        ),
        ({"argv": b"ls"}, TypeError, "not a single bytes"),
        ({"argv": []}, ValueError, "argv must not be empty"),
        ({"argv": 42}, TypeError, "sequence of arguments"),
        (
            {"argv": ["ls", 3]},
            TypeError,
            r"argv\[1\] must be str, bytes or os.PathLike, not int",
        ),
        ({"argv": ["ls", "a\0b"]}, ValueError, r"argv\[1\] contains a NUL byte"),
        ({"argv": [""]}, ValueError, r"argv\[0\] must not be empty"),
        ({"executable": 3}, TypeError, "executable must be"),
        ({"cwd": 3.5}, TypeError, "cwd must be"),
        ({"env": [("A", "1")]}, TypeError, "env must be a mapping"),
        ({"env": {"A=B": "1"}}, ValueError, "env key 'A=B'"),
        ({"env": {"": "1"}}, ValueError, "env key ''"),
        ({"env": {"A": 1}}, TypeError, r"env\['A'\] must be"),
        ({"env": {"A": "x\0"}}, ValueError, "NUL"),
        ({"child_fds": [0, 1]}, TypeError, "child_fds must be a mapping"),
        ({"child_fds": {"1": "r"}}, TypeError, "child_fds keys must be fd numbers"),
        ({"child_fds": {-1: "r"}}, ValueError, "not a valid fd number"),
        ({"child_fds": {1: "rw"}}, ValueError, r"child_fds\[1\] must be 'r'"),
        ({"child_fds": {1: True}}, ValueError, r"child_fds\[1\] must be 'r'"),
        (
            {"child_fds": {3: 987}},
            ValueError,
            r"child_fds\[3\] = 987: fd 987 is not open",
        ),
        ({"child_fds": {3: 1 << 40}}, ValueError, "is not open"),
        ({"pty": "yes"}, TypeError, "pty must be True, False or"),
        ({"pty": (0, 80)}, ValueError, "pty size must be"),
        (
            {"pty": True, "child_fds": {1: "r"}},
            ValueError,
            "cannot be combined with pty",
        ),
        ({"uid": "no-such-user-here"}, ValueError, "uid: no such user"),
        ({"gid": "no-such-group-here"}, ValueError, "gid: no such group"),
        ({"uid": "no\0body"}, ValueError, "uid: no such user"),
        ({"gid": "no\0body"}, ValueError, "gid: no such group"),
        ({"uid": -1}, ValueError, r"uid must be from 0 to 4294967294 \(2\*\*32 - 2\)"),
        ({"gid": -1}, ValueError, "gid must be from 0 to 4294967294"),
        ({"uid": 2**40}, ValueError, "uid must be from 0 to 4294967294"),
        ({"gid": 2**40}, ValueError, "gid must be from 0 to 4294967294"),
        # (uid_t)-1: setuid() and setgid() take it as "no change".
        ({"uid": 2**32 - 1}, ValueError, "uid must be from 0 to 4294967294"),
        ({"gid": 2**32 - 1}, ValueError, "gid must be from 0 to 4294967294"),
        ({"gid": 1.5}, TypeError, "gid must be an int"),
        ({"new_session": 1}, TypeError, "new_session must be True or False"),
        ({"kill_after": -1}, ValueError, "kill_after must be a finite number"),
        ({"kill_after": float("inf")}, ValueError, "kill_after must be a finite"),
        ({"kill_after": float("nan")}, ValueError, "kill_after must be a finite"),
        ({"kill_after": 2**2000}, ValueError, "kill_after .* too large for a float"),
        ({"low_water": 0}, ValueError, "1 <= low_water <= high_water"),
        ({"env": {"A": "1", b"A": "2"}}, ValueError, "name the same variable"),
        ({"kill_after": "5"}, TypeError, "kill_after must be a number"),
        ({"protocol": object()}, TypeError, "has no makeConnection"),
        (
            {"protocol": trioproc.ProcessProtocol},
            TypeError,
            r"instance, not the class ProcessProtocol \(write ProcessProtocol\(\)\)",
        ),
    ],
)
def test_spawn_rejects_bad_arguments_at_the_call(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """A bad argument raises at spawn() itself, naming the argument, before
    anything is opened or started (the leak guard checks the latter)."""
    argv = kwargs.pop("argv", ["true"])
    protocol = kwargs.pop("protocol", None)
    with pytest.raises(error, match=match):
        trioproc.spawn(argv, protocol, **kwargs)


async def test_write_rejects_non_bytes_and_unknown_fds() -> None:
    """write() takes bytes only; writeToChild() only the child's "w" fds."""
    async with trioproc.spawn(CAT, Recorder()) as transport:
        with pytest.raises(TypeError, match="data must be bytes, not str"):
            transport.write("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not bytes"):
            transport.writeSequence(b"abc")
        with pytest.raises(TypeError, match="data must be bytes, not int"):
            transport.writeSequence([b"a", 1])  # type: ignore[list-item]
        with pytest.raises(
            KeyError, match="child fd 1 is not one the parent writes to"
        ):
            transport.writeToChild(1, b"x")
        with pytest.raises(KeyError, match="child fd 7 is not one of this child's"):
            transport.closeChildFD(7)
        transport.write(b"still fine\n")
    assert transport.returncode == 0


async def test_signal_process_rejects_unknown_signals() -> None:
    """An unknown signal name or number is a ValueError, and no signal is sent."""
    protocol = Recorder()
    async with trioproc.spawn(SLEEP(30), protocol) as transport:
        with pytest.raises(ValueError, match="unknown signal name 'NOPE'"):
            transport.signalProcess("NOPE")
        with pytest.raises(ValueError, match="999 is not a valid signal number"):
            transport.signalProcess(999)
        with pytest.raises(TypeError, match="a signal is a name or a number"):
            transport.signalProcess(2.0)  # type: ignore[arg-type]
        transport.signalProcess("KILL")
    assert transport.returncode == -9


async def test_stop_rejects_a_negative_grace() -> None:
    """stop(kill_after=...) is checked like spawn(kill_after=...)."""
    async with trioproc.spawn(SLEEP(30), Recorder()) as transport:
        with pytest.raises(ValueError, match="kill_after"):
            await transport.stop(kill_after=-3)
        await transport.stop()


async def test_resize_without_a_pty_is_a_clear_error() -> None:
    """resize() names what it needs instead of failing obscurely."""
    async with trioproc.spawn(CAT, Recorder()) as transport:
        with pytest.raises(ValueError, match=r"resize\(\) needs a pseudo-terminal"):
            transport.resize(24, 80)


async def test_entering_a_spawn_block_twice_is_refused() -> None:
    """A spawn() object starts one child; reusing it is an error, not a second child."""
    block = trioproc.spawn(CAT, Recorder())
    async with block:
        with pytest.raises(RuntimeError, match="already entered"):
            await block.__aenter__()


async def test_run_rejects_protocol_and_bad_input() -> None:
    """run() refuses what it cannot honour."""
    with pytest.raises(TypeError, match="takes no protocol"):
        await trioproc.run(["true"], protocol=Recorder())
    with pytest.raises(TypeError, match="input must be bytes"):
        await trioproc.run(["true"], input="text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input needs child fd 0"):
        await trioproc.run(["true"], input=b"x", child_fds={1: "r"})


async def test_stdin_send_all_after_close_raises_closed() -> None:
    """send_all() after closeStdin() is ClosedResourceError (write() is silent)."""
    async with trioproc.spawn(CAT) as transport:
        assert transport.stdin is not None
        transport.closeStdin()
        transport.write(b"dropped quietly")
        with pytest.raises(trio.ClosedResourceError):
            await transport.stdin.send_all(b"x")
        with pytest.raises(trio.ClosedResourceError):
            await transport.stdin.send_all(b"")


async def test_stdin_send_all_after_the_child_closed_it_raises_broken() -> None:
    """send_all() once the child closed its stdin is BrokenResourceError."""
    closes_stdin = [*CAT[:-1], "import os, time; os.close(0); time.sleep(30)"]
    async with trioproc.spawn(closes_stdin) as transport:
        assert transport.stdin is not None
        with trio.fail_after(5):
            while True:
                try:
                    await transport.stdin.send_all(b"x" * 1000)
                except trio.BrokenResourceError:
                    break
                await trio.sleep(0.01)
        transport.write(b"dropped quietly")
        await transport.stop()


def test_run_error_is_called_process_error() -> None:
    """check=True raises the error subprocess users already catch."""

    async def main() -> None:
        with pytest.raises(subprocess.CalledProcessError) as info:
            await trioproc.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert info.value.returncode == 3
        assert info.value.stdout == b"out\n"
        assert info.value.stderr == b"err\n"

    trio.run(main)


def test_no_fd_leaks_from_rejected_int_fds() -> None:
    """A child_fds entry naming a closed fd fails without opening anything."""
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(ValueError, match=f"fd {fd} is not open"):
        trioproc.spawn(["true"], child_fds={0: fd})


def _highest_child_fd(entries: int) -> int:
    """The highest child fd spawn() accepts in a child_fds of *entries* entries."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft - entries - 4 - 1


@pytest.mark.parametrize(
    "child_fd",
    [
        pytest.param(_highest_child_fd(1) + 1, id="just-too-high"),
        pytest.param(resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1, id="soft-1"),
        pytest.param(resource.getrlimit(resource.RLIMIT_NOFILE)[0], id="soft"),
        pytest.param(2**31, id="2**31"),
        pytest.param(2**40, id="2**40"),
    ],
)
def test_child_fds_at_the_fd_limit_are_refused_at_the_call(child_fd: int) -> None:
    """A child fd the child could never have (at or near RLIMIT_NOFILE's soft
    limit, or beyond a C int) is a ValueError at spawn() naming child_fds, the
    fd and the limit -- not a bare EINVAL on entering."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    with pytest.raises(
        ValueError, match=f"child_fds key {child_fd} is too high"
    ) as info:
        trioproc.spawn(["true"], child_fds={child_fd: "r"})
    assert f"soft limit is {soft}" in str(info.value)
    assert f"must be below {_highest_child_fd(1) + 1}" in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="posix_spawn"),
        pytest.param(
            {"uid": 0, "gid": 0},
            id="trampoline",
            marks=pytest.mark.skipif(
                os.geteuid() != 0, reason="switching uid/gid needs privilege"
            ),
        ),
    ],
)
async def test_the_highest_accepted_child_fds_work(kwargs: dict[str, Any]) -> None:
    """The bound spawn() checks is not stricter than it must be: the highest
    child fds it accepts start, with or without the uid/gid trampoline."""
    top = _highest_child_fd(3)
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        child_fds: dict[int, Any] = {top: "r", top - 1: "w", top - 2: fd}
        async with trioproc.spawn(["true"], Recorder(), child_fds=child_fds, **kwargs):
            pass
    finally:
        os.close(fd)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching uid/gid needs privilege")
async def test_uid_and_gid_by_name_still_work() -> None:
    """Names are looked up at the call, so uid="root" and gid="root" are not
    caught by the numeric range check."""
    result = await trioproc.run(["sh", "-c", "id -u; id -g"], uid="root", gid="root")
    assert result.stdout == b"0\n0\n"


@pytest.mark.parametrize(
    ("layout", "kwargs"),
    [
        # Below the child's highest fd: prepare() used to copy it (bare EBADF).
        pytest.param(lambda fd: {fd + 1: fd}, {}, id="copied"),
        # Above it: posix_spawn's dup2 used to fail, reported as the program's.
        pytest.param(lambda fd: {3: fd}, {}, id="dup2"),
        # Its number was free again: a pipe used to take it, silently handed
        # to the child in place of the caller's fd.
        pytest.param(lambda fd: {1: "r", 3: fd}, {}, id="reused-by-a-pipe"),
        pytest.param(
            lambda fd: {3: fd},
            {"uid": 0},
            id="trampoline",
            marks=pytest.mark.skipif(
                os.geteuid() != 0, reason="switching uid/gid needs privilege"
            ),
        ),
    ],
)
async def test_a_parent_fd_closed_before_entering_is_named(
    layout: Any, kwargs: dict[str, Any]
) -> None:
    """A child_fds parent fd closed between spawn() and entering raises EBADF
    on entering, naming child_fds, the child fd and the parent fd -- not the
    program -- and nothing is started or left open (the leak guard)."""
    fd = os.open(os.devnull, os.O_RDONLY)
    assert fd > 3
    child_fds = layout(fd)
    (child_fd,) = (key for key, how in child_fds.items() if how == fd)
    block = trioproc.spawn(["cat"], Recorder(), child_fds=child_fds, **kwargs)
    os.close(fd)
    with pytest.raises(OSError, match="is not open") as info:
        async with block:
            pytest.fail("the block must not run")
    assert info.value.errno == errno.EBADF
    assert str(info.value) == (
        f"[Errno {errno.EBADF}] child_fds[{child_fd}]: parent fd {fd} is not open"
    )
    assert info.value.filename is None
