"""A child's whole tree in a cgroup-v2 cgroup: born inside, ended as a whole.

These run real processes in real cgroups, as root; they skip, naming why,
only where this machine has no writable cgroup-v2 subtree.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from trioproc._options import SpawnOptions
from trioproc._os import _cgroup
from trioproc._os._cgroup import ChildCgroup
from trioproc._os._cgroupfs import (
    CgroupUnavailableError,
    locate,
    own_cgroup,
    parse_membership,
    parse_mounts,
)
from trioproc._os._launch import prepare

from .helpers import SLEEP, alive, python

NOBODY = 65534
MARK = "TRIOPROC_CGROUP_TEST"

#: Forks as its first statements; the first child leaves the session and
#: process group (setsid) and forks the daemon, then exits: a classic
#: double-fork daemon, which kill(-pgid) never reaches.
PY_DAEMON = python(
    "import os, time\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        time.sleep(60)\n"
    "    os._exit(0)\n"
    "time.sleep(60)\n"
)
#: The same from a shell, which forks within a millisecond of starting.
SH_DAEMON = ["/bin/sh", "-c", '(setsid sh -c "sleep 60; :" &) ; sleep 60']


def _v2_available() -> str | None:
    """Why no cgroup can be made here, or ``None`` when one can."""
    try:
        probe = ChildCgroup.create()
    except CgroupUnavailableError as exc:
        return str(exc)
    try:
        with probe.placing():
            pass
    except CgroupUnavailableError as exc:
        return str(exc)
    finally:
        probe.remove()
    return None


_UNAVAILABLE = _v2_available()
needs_v2 = pytest.mark.skipif(
    _UNAVAILABLE is not None,
    reason=f"no writable cgroup-v2 subtree on this machine: {_UNAVAILABLE}",
)


def _ours() -> set[str]:
    """The cgroups this process made that still exist next to it."""
    try:
        home = own_cgroup()
    except CgroupUnavailableError:
        return set()
    prefix = f"trioproc-{os.getpid()}-"
    return {name for name in os.listdir(home) if name.startswith(prefix)}


@pytest.fixture(autouse=True)
def _no_cgroup_left_behind() -> Iterator[None]:
    """Fail a test that leaves a cgroup of ours behind."""
    before = _ours()
    yield
    assert _ours() - before == set(), "cgroups left behind"


@pytest.fixture
def cgroup() -> Iterator[ChildCgroup]:
    """A new cgroup; whatever a failing test left in it is killed, and it goes."""
    cg = ChildCgroup.create()
    try:
        yield cg
    finally:
        if cg.populated():
            (cg.path / "cgroup.kill").write_text("1")
            deadline = time.monotonic() + 5
            while cg.populated() and time.monotonic() < deadline:
                time.sleep(0.01)
        cg.remove()


def _start(
    argv: list[str], cgroup: ChildCgroup | None, env: dict[str, str] | None = None
) -> int:
    """Start *argv* through trioproc's posix_spawn path, born in *cgroup*."""
    launch = prepare(SpawnOptions.check(argv, child_fds={}, env=env))
    return launch.start(cgroup=cgroup)


async def _reap(pid: int) -> int:
    """Reap our child *pid*; return its wait status (bounded by the test)."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 - never blocks
        if done:
            return status
        await trio.sleep(0.005)


def _membership(pid: int | str) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        return parse_membership(f.read())


def _relative(cgroup: ChildCgroup) -> str:
    """*cgroup*'s path as /proc/<pid>/cgroup shows it."""
    return "/" + str(cgroup.path.relative_to(_cgroup.find_v2_root()))


def _marked(token: str) -> set[int]:
    """Live processes (not zombies) whose environment holds MARK=token."""
    needle = f"{MARK}={token}".encode()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if needle in environ and alive(int(entry)):
            found.add(int(entry))
    return found


def _membership_or_none(pid: int) -> str | None:
    """*pid*'s cgroup, or ``None`` once it has been reaped."""
    try:
        return _membership(pid)
    except FileNotFoundError:
        return None


def _daemon_in(tree: set[int]) -> bool:
    """Whether *tree* holds a process that has left this process's session
    and does not lead the session it is in: the daemon of a double fork."""
    return any(_sid(p) not in (None, os.getsid(0), p) for p in tree)


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except ProcessLookupError:
        return None


def _marked_env(token: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", os.defpath), MARK: token}


@needs_v2
async def test_the_child_is_born_in_its_cgroup(cgroup: ChildCgroup) -> None:
    """A child started with a cgroup is in it from the start, and the parent
    is back in its own cgroup as soon as the spawn returns."""
    home = _membership("self")
    pid = _start(SLEEP(30), cgroup)
    try:
        assert _membership(pid) == _relative(cgroup)
        assert _membership("self") == home
        assert cgroup.pids() == [pid]
        assert cgroup.populated()
    finally:
        await cgroup.kill()
        await cgroup.wait_empty()
        assert os.WTERMSIG(await _reap(pid)) == signal.SIGKILL
    assert not cgroup.populated()
    assert cgroup.pids() == []


@needs_v2
@pytest.mark.parametrize("method", ["cgroup.kill", "freeze"])
@pytest.mark.parametrize("argv", [PY_DAEMON, SH_DAEMON], ids=["python", "sh"])
async def test_a_daemon_forked_at_once_is_held_and_ended(
    cgroup: ChildCgroup, method: _cgroup.KillMethod, argv: list[str]
) -> None:
    """A program that double-forks and calls setsid() as its very first act
    leaves its session and process group but not its cgroup: every one of its
    processes is in the cgroup, and kill() ends them all."""
    token = uuid.uuid4().hex
    pid = _start(argv, cgroup, env=_marked_env(token))
    try:
        # Until one scan of /proc shows the daemon itself (a bounded poll):
        # a process outside the child's session that does not lead its own,
        # the last one either program forks. Not merely "something left the
        # session": that is the middle process, right after its setsid(), and
        # a scan begun before the daemon's fork and reaching the middle one
        # after its exit saw the child alone.
        while not _daemon_in(tree := _marked(token)):  # noqa: ASYNC110
            await trio.sleep(0.005)
        assert len(tree) >= 2
        # The middle process may end at any point from here on: what has
        # gone is not a process outside the cgroup.
        members = set(cgroup.pids())
        assert {p for p in tree - members if alive(p)} == set()
        assert {_membership_or_none(p) for p in tree} - {None} == {_relative(cgroup)}
        await cgroup.kill(method=method)
        await cgroup.wait_empty()
        assert _marked(token) == set()
        assert (cgroup.path / "cgroup.freeze").read_text().strip() == "0"
    finally:
        if cgroup.populated():  # a failed assertion: end the tree, then reap
            await cgroup.kill()
        status = await _reap(pid)
    assert os.WTERMSIG(status) == signal.SIGKILL


@needs_v2
async def test_a_frozen_cgroup_is_thawed_when_the_kill_is_cancelled(
    cgroup: ChildCgroup,
) -> None:
    """A kill cancelled while it waits for the freeze still kills what it
    sees and never leaves the cgroup frozen."""
    pid = _start(SLEEP(30), cgroup)
    try:
        with trio.CancelScope() as scope:
            scope.cancel()
            await cgroup.kill(method="freeze")
        assert scope.cancelled_caught
        assert (cgroup.path / "cgroup.freeze").read_text().strip() == "0"
        await cgroup.wait_empty()
    finally:
        assert os.WTERMSIG(await _reap(pid)) == signal.SIGKILL


@needs_v2
async def test_signal_all_reaches_every_process(cgroup: ChildCgroup) -> None:
    """signal_all() is the graceful step: SIGTERM to every process in the
    cgroup, daemons included."""
    token = uuid.uuid4().hex
    pid = _start(PY_DAEMON, cgroup, env=_marked_env(token))
    try:
        while len(_marked(token)) < 2 or len(cgroup.pids()) != 2:  # noqa: ASYNC110
            await trio.sleep(0.005)
        assert cgroup.signal_all(signal.SIGTERM) == 2
        await cgroup.wait_empty()
        assert _marked(token) == set()
    finally:
        status = await _reap(pid)
    assert os.WTERMSIG(status) == signal.SIGTERM


@needs_v2
async def test_signal_all_spares_a_pid_no_longer_listed(
    cgroup: ChildCgroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pid that was listed once but not when the pidfds are held (it
    exited, and the pid may now be a stranger's) gets no signal; nor does
    one that is gone."""
    stranger = _start(SLEEP(30), None)
    member = _start(SLEEP(30), cgroup)
    gone = _start(["/bin/true"], None)
    await _reap(gone)
    real = ChildCgroup.pids
    calls = 0

    def first_listing_has_a_stranger(self: ChildCgroup) -> list[int]:
        nonlocal calls
        calls += 1  # 1: is the parent inside? 2: the listing; 3: the check
        return [gone, stranger, member] if calls == 2 else real(self)

    monkeypatch.setattr(ChildCgroup, "pids", first_listing_has_a_stranger)
    try:
        assert cgroup.signal_all(signal.SIGTERM) == 1
        assert os.WTERMSIG(await _reap(member)) == signal.SIGTERM
        assert alive(stranger)
    finally:
        os.kill(stranger, signal.SIGKILL)
        await _reap(stranger)


@needs_v2
async def test_the_parent_comes_back_when_the_spawn_fails(
    cgroup: ChildCgroup,
) -> None:
    """A program that cannot start raises as usual, and the parent is back in
    its own cgroup: it never stays in the child's."""
    home = _membership("self")
    with pytest.raises(FileNotFoundError):
        _start(["/nonexistent/program"], cgroup)
    assert _membership("self") == home
    assert cgroup.pids() == []


@needs_v2
async def test_a_child_is_not_born_in_the_cgroup_another_thread_uses() -> None:
    """Spawns from several threads at once, each into its own cgroup, each
    put their children in their own cgroup (the moves never interleave)."""
    groups = [ChildCgroup.create() for _ in range(2)]
    started: list[list[int]] = [[], []]

    def spawn_many(index: int) -> None:
        for _ in range(10):
            started[index].append(_start(["/bin/sleep", "30"], groups[index]))

    try:
        threads = [threading.Thread(target=spawn_many, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            await trio.to_thread.run_sync(thread.join)
        for group, pids in zip(groups, started, strict=True):
            assert sorted(group.pids()) == sorted(pids)
    finally:
        for group in groups:
            await group.kill()
        for group in groups:
            await group.wait_empty()
            group.remove()
        for pid in started[0] + started[1]:
            await _reap(pid)


@needs_v2
async def test_the_uid_trampoline_is_born_in_the_cgroup(cgroup: ChildCgroup) -> None:
    """With uid/gid (the trampoline path), the trampoline and so the program
    are born in the cgroup too."""
    launch = prepare(SpawnOptions.check(["/bin/sleep", "30"], child_fds={}, uid=NOBODY))
    pid = launch.start(cgroup=cgroup)
    try:
        await launch.confirm()
        assert _membership(pid) == _relative(cgroup)
        assert os.stat(f"/proc/{pid}").st_uid == NOBODY
    finally:
        await cgroup.kill()
        await cgroup.wait_empty()
        await _reap(pid)


@needs_v2
async def test_a_parent_stuck_in_the_cgroup_is_never_killed(
    cgroup: ChildCgroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the parent cannot move back out, the child it just started is
    ended and reaped, and kill()/signal_all() refuse to end the parent."""
    home = own_cgroup()
    real_write = _cgroup._write

    def refuse_home(path: Path, data: bytes) -> None:
        if path == home / "cgroup.procs":
            raise PermissionError(errno.EACCES, "refused by the test", str(path))
        real_write(path, data)

    monkeypatch.setattr(_cgroup, "_write", refuse_home)
    try:
        with pytest.raises(PermissionError, match="refused by the test"):
            _start(SLEEP(30), cgroup)
        assert cgroup.pids() == [os.getpid()]
        with pytest.raises(RuntimeError, match="refusing to end it"):
            await cgroup.kill()
        with pytest.raises(RuntimeError, match="refusing to end it"):
            cgroup.signal_all(signal.SIGTERM)
    finally:
        real_write(home / "cgroup.procs", str(os.getpid()).encode())
    assert cgroup.pids() == []


@needs_v2
async def test_remove_leaves_nothing_and_is_idempotent(cgroup: ChildCgroup) -> None:
    """remove() takes the cgroup and any cgroup made inside it; again, it
    does nothing; a removed cgroup reads as empty and kill() is a no-op."""
    (cgroup.path / "inner" / "deeper").mkdir(parents=True)
    cgroup.remove()
    assert not cgroup.path.exists()
    assert cgroup.path.name not in os.listdir(cgroup.path.parent)
    cgroup.remove()
    assert cgroup.pids() == []
    assert not cgroup.populated()
    await cgroup.kill()
    await cgroup.wait_empty()
    with pytest.raises(RuntimeError, match="already ended or removed"):
        _start(SLEEP(1), cgroup)


@needs_v2
async def test_remove_refuses_a_cgroup_with_processes(cgroup: ChildCgroup) -> None:
    """remove() on a cgroup that still holds processes says which."""
    pid = _start(SLEEP(30), cgroup)
    try:
        with pytest.raises(OSError, match=f"still holds processes \\[{pid}\\]") as info:
            cgroup.remove()
        assert info.value.errno == errno.EBUSY
        assert cgroup.path.exists()
    finally:
        await cgroup.kill()
        await cgroup.wait_empty()
        await _reap(pid)


@needs_v2
def test_a_cgroup_removed_by_someone_else(cgroup: ChildCgroup) -> None:
    """A cgroup removed behind our back cannot be entered, says why, and
    removing it again is quiet."""
    os.rmdir(cgroup.path)
    with pytest.raises(CgroupUnavailableError, match="refused to move") as info:
        _start(SLEEP(1), cgroup)
    assert info.value.errno == errno.ENOENT
    cgroup.remove()


@needs_v2
def test_a_name_left_by_an_earlier_process_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cgroup of the same name left by an earlier process with this pid
    (pids are reused) does not stop a new one from being made."""
    monkeypatch.setattr(_cgroup, "_names", itertools.count(10**6))
    stale = own_cgroup() / f"trioproc-{os.getpid()}-{10**6}"
    stale.mkdir()
    try:
        fresh = ChildCgroup.create()
        assert fresh.path.name == f"trioproc-{os.getpid()}-{10**6 + 1}"
        fresh.remove()
    finally:
        stale.rmdir()


@needs_v2
def test_a_limit_on_cgroups_is_named(cgroup: ChildCgroup) -> None:
    """A parent that may have no more cgroups below it
    (cgroup.max.descendants) is reported with the kernel's reason."""
    (cgroup.path / "cgroup.max.descendants").write_text("0")
    with pytest.raises(CgroupUnavailableError, match="cannot make a cgroup in"):
        ChildCgroup.create(cgroup.path)


@needs_v2
async def test_placing_is_refused_once_ended_and_when_nested(
    cgroup: ChildCgroup,
) -> None:
    """A cgroup serves one tree: after kill() it takes no new child; and
    placing() inside placing() is an error, not a deadlock."""
    with (
        cgroup.placing(),
        pytest.raises(RuntimeError, match="reentrant"),
        cgroup.placing(),
    ):
        pass
    await cgroup.kill()
    with pytest.raises(RuntimeError, match="already ended"):
        _start(SLEEP(1), cgroup)


@needs_v2
def test_a_directory_that_is_no_cgroup_is_refused(tmp_path: Path) -> None:
    """A writable directory that is not a cgroup-v2 one is named as such, and
    nothing is left in it."""
    with pytest.raises(CgroupUnavailableError, match="is not a cgroup-v2 directory"):
        ChildCgroup.create(tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(CgroupUnavailableError, match="does not exist") as info:
        ChildCgroup.create(tmp_path / "missing")
    assert info.value.errno == errno.ENOENT
    assert isinstance(info.value, OSError)
    assert not isinstance(info.value, FileNotFoundError)


@contextlib.contextmanager
def _as_nobody() -> Iterator[None]:
    """This process's effective uid is nobody's inside (the real one stays
    root, so that it can come back)."""
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


@needs_v2
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody")
def test_without_root_or_delegation_the_error_names_what_is_missing(
    cgroup: ChildCgroup,
) -> None:
    """Without root, making a cgroup in a directory one may not write says
    it needs root or a delegated subtree; with a directory one may write but
    no right to move into it, placing() says which cgroup.procs it needs, and
    the process stays where it was."""
    os.chown(cgroup.path, NOBODY, NOBODY)  # a subtree delegated to nobody...
    home = _membership("self")
    where = own_cgroup()
    with _as_nobody():
        with pytest.raises(CgroupUnavailableError) as info:
            ChildCgroup.create()
        inner = ChildCgroup.create(cgroup.path)
        try:
            # ...but this process is in a cgroup outside it: the move needs
            # the common ancestor's cgroup.procs too.
            with pytest.raises(CgroupUnavailableError) as refused, inner.placing():
                pass
            with pytest.raises(CgroupUnavailableError, match="may not move"):
                _start(SLEEP(1), inner)
        finally:
            inner.remove()
        with pytest.raises(PermissionError):
            cgroup.remove()  # in the root cgroup, which nobody may not write
    assert info.value.errno == errno.EACCES
    assert str(info.value) == (
        f"[Errno {errno.EACCES}] cgroup-v2 directory {where} is not writable "
        "(needs root or a delegated subtree)"
    )
    message = str(refused.value)
    assert refused.value.errno == errno.EACCES
    assert f"may not move into cgroup {inner.path}: it needs write access" in message
    assert f"{inner.path}/cgroup.procs" in message
    assert f"common ancestor of {where} and {inner.path}" in message
    assert "needs root or a delegated subtree" in message
    assert _membership("self") == home
    assert os.listdir(cgroup.path).count(inner.path.name) == 0


def test_no_cgroup2_mount_is_named() -> None:
    """Without a cgroup2 filesystem the error says so."""
    v1_only = (
        "22 1 0:20 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
        "23 22 0:21 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    )
    mounts = parse_mounts(v1_only)
    assert mounts == []
    with pytest.raises(
        CgroupUnavailableError, match="no cgroup2 filesystem is mounted"
    ):
        locate("/", mounts)
    with pytest.raises(CgroupUnavailableError, match="no '0::' line"):
        parse_membership("4:memory:/a\n1:cpu:/\n")


def test_the_own_cgroup_is_found_under_the_mount_that_shows_it() -> None:
    """The caller's cgroup is joined to the mount whose root contains it (a
    mount may show a subtree only); escaped mount points are decoded."""
    mountinfo = (
        "30 1 0:26 /other /mnt/other rw - cgroup2 cgroup2 rw\n"
        "31 1 0:26 /a /mnt/cg\\040v2 rw,relatime shared:9 - cgroup2 none rw\n"
        "garbage line\n"
    )
    mounts = parse_mounts(mountinfo)
    assert locate("/a/b/c", mounts) == Path("/mnt/cg v2/b/c")
    assert locate("/a", mounts) == Path("/mnt/cg v2")
    assert locate("/other", mounts) == Path("/mnt/other")
    with pytest.raises(CgroupUnavailableError, match="/elsewhere is under no cgroup2"):
        locate("/elsewhere", mounts)
    assert parse_membership("1:cpu:/\n0::/a/b\n") == "/a/b"


@pytest.mark.skipif(sys.platform != "linux", reason="cgroups are Linux's")
def test_this_machine_is_found() -> None:
    """find_v2_root() is a cgroup2 mount, and own_cgroup() lies under it."""
    try:
        root = _cgroup.find_v2_root()
    except CgroupUnavailableError as exc:  # pragma: no cover - no cgroup v2
        pytest.skip(f"no cgroup v2 here: {exc}")
    assert (root / "cgroup.procs").exists()
    own = own_cgroup()
    assert own == root or root in own.parents
    assert str(os.getpid()) in (own / "cgroup.procs").read_text().split()


def test_empty_cgroups_of_a_dead_process_are_swept() -> None:
    """A process killed before its clean-up leaves empty cgroups behind; the
    next process that makes a cgroup there removes them, and leaves those of
    live processes (and anything not ours) alone."""
    cgroup_module = _cgroup
    home = cgroup_module.own_cgroup()
    gone = 2**22 + 7  # above pid_max here: no such process
    stale = home / f"trioproc-{gone}-1"
    live = home / f"trioproc-{os.getpid()}-999999"
    stale.mkdir()
    live.mkdir()
    try:
        cgroup_module._swept.discard(home)
        made = ChildCgroup.create()
        made.remove()
        assert not stale.exists()
        assert live.exists()
    finally:
        for path in (stale, live):
            if path.exists():
                path.rmdir()
