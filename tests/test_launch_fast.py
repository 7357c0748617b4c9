"""The cheap path to posix_spawn (#16): what each spawn no longer redoes,
and that the contract holds on it all the same."""

from __future__ import annotations

import collections
import os
import stat
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import trio

import trioproc
from trioproc import _arguments, _options, _run
from trioproc._os import _launch, _posix_spawn

#: For the tests of the Linux backend's posix_spawn plans.
posix_spawn_only = pytest.mark.linux_backend("starts children with posix_spawn")

#: Lists the child's open fds: 0, 1, 2 and ls's own fd of the listing, 3.
LIST_FDS = ["ls", "/proc/self/fd"]
EXACT_FDS = b"0\n1\n2\n3\n"


@posix_spawn_only
async def test_a_plan_seen_before_is_not_made_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """libc's file actions are made once per plan: spawn after spawn with
    the same layout (the same fd numbers come back) makes none, and every
    child still gets exactly its fds."""
    built: list[object] = []
    build = _posix_spawn._build

    def counting(plan: Any) -> Any:
        built.append(plan)
        return build(plan)

    monkeypatch.setattr(_posix_spawn, "_made", {})  # not full of others' plans
    await trioproc.run(LIST_FDS)  # whatever Trio opens once is open by now
    monkeypatch.setattr(_posix_spawn, "_build", counting)
    outputs = [(await trioproc.run(LIST_FDS)).stdout for _ in range(5)]
    assert outputs == [EXACT_FDS] * 5
    assert built == []


@posix_spawn_only
def test_one_libc_object_serves_every_plan_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two plans with the same steps share libc's object, which freeing
    either leaves alone; another plan gets its own."""
    monkeypatch.setattr(_posix_spawn, "_made", {})
    first, second, other = (_posix_spawn.FileActions() for _ in range(3))
    for actions in (first, second):
        actions.dup2(5, 1)
        actions.closefrom(3)
    other.dup2(5, 2)
    other.closefrom(3)
    for actions in (first, second, other):
        actions.make()
    try:
        assert first._actions is second._actions
        assert other._actions is not first._actions
        assert first._actions is _posix_spawn._made[((0, 5, 1), (4, 3))]
    finally:
        for actions in (first, second, other):
            actions.free()
    assert ((0, 5, 1), (4, 3)) in _posix_spawn._made  # still there for the next


@posix_spawn_only
async def test_plans_beyond_the_bound_are_their_spawns_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once the cache is full, a new plan is made for its spawn, works, and
    is freed with it (never kept)."""
    monkeypatch.setattr(_posix_spawn, "_made", {})
    monkeypatch.setattr(_posix_spawn, "_MADE_LIMIT", 0)
    actions = _posix_spawn.FileActions()
    actions.open(0, b"/dev/null", os.O_RDWR)
    actions.closefrom(1)
    actions.make()
    assert actions._owned
    try:
        pid = _posix_spawn.posix_spawn(
            b"/bin/true", (b"/bin/true",), None, actions, setsid=False
        )
    finally:
        actions.free()
    assert not actions._owned
    assert os.waitpid(pid, 0)[1] == 0  # noqa: ASYNC222 - true exits at once
    assert _posix_spawn._made == {}
    # And through spawn(): the whole path, nothing kept.
    assert (await trioproc.run(LIST_FDS)).stdout == EXACT_FDS
    assert _posix_spawn._made == {}


@posix_spawn_only
def test_a_step_libc_refuses_is_named_when_the_plan_is_made() -> None:
    """libc's refusal of a step raises OSError naming the step, from make()
    (inside prepare(), which then closes what it opened), and the refused
    plan is not kept."""
    actions = _posix_spawn.FileActions()
    actions.dup2(-1, 5)
    with pytest.raises(OSError, match=r"dup2\(-1, 5\): Bad file descriptor"):
        actions.make()
    actions.free()
    assert ((0, -1, 5),) not in _posix_spawn._made


@posix_spawn_only
async def test_threads_share_a_plan_safely(monkeypatch: pytest.MonkeyPatch) -> None:
    """Children started at once from several threads, each with its own Trio
    loop, all get exactly their fds, from libc objects the threads share."""
    monkeypatch.setattr(_posix_spawn, "_made", {})
    built: list[object] = []
    build = _posix_spawn._build

    def counting(plan: Any) -> Any:
        built.append(plan)
        return build(plan)

    monkeypatch.setattr(_posix_spawn, "_build", counting)
    outputs: list[bytes] = []
    errors: list[BaseException] = []

    def spawner() -> None:
        async def main() -> None:
            with trio.fail_after(20):
                for _ in range(20):
                    outputs.append((await trioproc.run(LIST_FDS)).stdout)

        try:
            trio.run(main)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=spawner) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        await trio.to_thread.run_sync(thread.join)
    assert errors == []
    assert outputs == [EXACT_FDS] * 60
    # The fd numbers, so the plans, vary with how the threads interleave;
    # each is kept, and made again only by a thread that raced to make it.
    assert set(built) == set(_posix_spawn._made)
    assert max(collections.Counter(built).values()) <= len(threads)


def test_no_child_fds_read_no_fd_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """child_fds={} has no fd to hold to RLIMIT_NOFILE: the limit is not read."""

    def no_limit() -> int:
        raise AssertionError("the fd limit was read")

    monkeypatch.setattr(_arguments, "_fd_limit", no_limit)
    options = _options.SpawnOptions.check(["true"], child_fds={})
    assert options.child_fds == {}
    assert options.devnull == {0, 1, 2}


def test_argv_of_plain_strings_is_encoded_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Plain str arguments take a fast path (no per-argument name made) that
    gives what os.fsencode gives, and what it refused is still refused,
    naming the argument."""
    named: list[str] = []
    check_path = _arguments.check_path

    def counting(what: str, value: object, *, allow_empty: bool) -> bytes:
        named.append(what)
        return check_path(what, value, allow_empty=allow_empty)

    monkeypatch.setattr(_arguments, "check_path", counting)
    argv = ["prog", "", "caf\u00e9", "\udcff", "a b"]
    assert _arguments.check_argv(argv) == tuple(map(os.fsencode, argv))
    assert named == ["argv[1]"]  # the empty one only
    assert _arguments.check_argv(tuple(argv)) == tuple(map(os.fsencode, argv))
    with pytest.raises(ValueError, match=r"argv\[2\] contains a NUL byte"):
        _arguments.check_argv(["prog", "x", "a\0b"])
    with pytest.raises(ValueError, match=r"argv\[0\] must not be empty"):
        _arguments.check_argv(["", "x"])
    with pytest.raises(TypeError, match=r"argv\[1\] must be str, bytes"):
        _arguments.check_argv(["prog", 1])


async def test_run_without_a_timeout_opens_no_cancel_scope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run() with no timeout costs no cancel scope, and stays cancellable
    from outside (the child is stopped and reaped)."""
    opened: list[float] = []

    class Trio:
        """trio as run() sees it, counting its cancel scopes."""

        @staticmethod
        def move_on_after(seconds: float) -> trio.CancelScope:
            opened.append(seconds)
            return trio.move_on_after(seconds)

    monkeypatch.setattr(_run, "trio", Trio)
    await trioproc.run(["true"])
    assert opened == []
    with trio.move_on_after(0.2) as outer:
        await trioproc.run(["sleep", "10"])
    assert outer.cancelled_caught
    with pytest.raises(subprocess.TimeoutExpired):
        await trioproc.run(["sleep", "10"], timeout=0.1)
    assert opened == [0.1]


def test_path_search_stats_only_the_program_it_finds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Entries that lack the program cost a failed access() each, not a
    stat() and its exception; the answers are os.path.join's as before."""
    bins = [tmp_path / name for name in ("a", "b", "c")]
    for directory in bins:
        directory.mkdir()
    (bins[0] / "tool").mkdir()  # a directory of that name: not a program
    program = bins[2] / "tool"
    program.write_text("#!/bin/sh\n")
    program.chmod(stat.S_IRWXU)
    path = b":".join(os.fsencode(d) for d in bins[:2]) + b":" + os.fsencode(bins[2])
    stats: list[bytes] = []
    real_stat = os.stat

    def counting(candidate: Any, *args: Any, **kwargs: Any) -> Any:
        stats.append(candidate)
        return real_stat(candidate, *args, **kwargs)

    monkeypatch.setattr(_launch.os, "stat", counting)
    assert _launch.find_program(b"tool", path) == os.fsencode(program)
    assert stats == [os.fsencode(bins[0] / "tool"), os.fsencode(program)]
    monkeypatch.undo()
    # A trailing slash and an empty entry (the current directory) join as
    # os.path.join joins them.
    slashed = os.fsencode(bins[2]) + b"/"
    assert _launch.find_program(b"tool", slashed) == os.fsencode(program)
    monkeypatch.chdir(bins[2])
    assert _launch.find_program(b"tool", b"/nonexistent::") == b"./tool"
    # No executable: PermissionError names the first entry that is there,
    # even a directory; nothing at all is FileNotFoundError.
    program.chmod(stat.S_IRUSR)
    with pytest.raises(PermissionError) as denied:
        _launch.find_program(b"tool", path)
    assert denied.value.filename == os.fsencode(bins[0] / "tool")
    with pytest.raises(FileNotFoundError, match="on PATH"):
        _launch.find_program(b"nothing-here", path)
