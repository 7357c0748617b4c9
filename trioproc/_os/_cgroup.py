"""A cgroup-v2 cgroup of its own for one child's whole process tree.

A process group or a session does not hold a daemon: a program that forks,
calls ``setsid()`` and forks again leaves both, and ``kill(-pgid)`` misses
it. A cgroup does hold it -- every descendant is born in its parent's cgroup
and only a write to some ``cgroup.procs`` moves it -- so a cgroup of the
child's own, entered *before* the child runs a single instruction, lets the
parent end the child's whole tree, however it forks.

Being born inside matters: moving the child in after ``posix_spawn`` returns
leaves a window in which a program that forks at once has children outside.
So the child is born inside (`ChildCgroup.placing`):

* where libc has ``posix_spawnattr_setcgroup_np`` (glibc 2.39+), the kernel
  starts the child in the cgroup (``CLONE_INTO_CGROUP``);
* elsewhere the calling process moves itself into the cgroup for the
  ``posix_spawn`` call and back out right after, under a process-wide lock.
  ``posix_spawn``'s clone inherits the caller's cgroup, and no Python runs in
  the child. A move costs a write to ``cgroup.procs`` (microseconds; see
  ``benchmarks/cgroup_spawn.py``). While the parent is inside, a child that
  *another thread* forks without trioproc is born in the cgroup too.

Ending the tree (`ChildCgroup.kill`) is one write to ``cgroup.kill`` where the
kernel has it (5.14+); otherwise the cgroup is frozen, every process in it is
sent SIGKILL, and it is thawed. Signals to the pids listed in
``cgroup.procs`` never reach a stranger that reused a pid (see
`ChildCgroup.signal_all`).

Where no cgroup can be made and entered -- no cgroup2 mount, no root, no
delegated subtree -- the error is `CgroupUnavailableError`, whose message
names what is missing.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final, Literal, final

import attrs
import trio

from ._cgroupfs import (
    CgroupUnavailableError,
    find_v2_root,
    own_cgroup,
)
from ._pidfds import signal_listed

__all__ = [
    "CgroupUnavailableError",
    "ChildCgroup",
    "KillMethod",
    "find_v2_root",
    "own_cgroup",
]

#: How `ChildCgroup.kill` ends the processes: one write to ``cgroup.kill``
#: (Linux 5.14+), or freeze, SIGKILL each process, thaw (Linux 5.2+).
KillMethod = Literal["cgroup.kill", "freeze"]

_NOT_WRITABLE: Final = "needs root or a delegated subtree"
#: The longest pause between two looks at ``cgroup.events``.
_POLL_CAP: Final = 0.02

# Serialises every move of this process into a cgroup and back, so that
# concurrent spawns from several threads cannot interleave (a child must be
# born in its own cgroup, not in another thread's), and so that `kill` never
# runs while this process is inside the cgroup it ends. Reentrant only so
# that nesting is reported instead of deadlocking.
_placing_lock: Final = threading.RLock()
_placing_depth = 0
_names: Final = itertools.count(1)


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _read(path: Path) -> str:
    with open(path, encoding="ascii") as f:
        return f.read()


@final
@attrs.define(eq=False)
class ChildCgroup:
    """A cgroup-v2 cgroup made for one child's process tree.

    Made by `create`; the child is born in it inside `placing`; its tree is
    ended with `signal_all` (the graceful step) and `kill`, awaited with
    `wait_empty`, and the cgroup goes with `remove`. A cgroup serves one
    tree: once `kill` has begun, `placing` refuses it.

    Attributes:
      path: the cgroup's directory.
    """

    path: Path
    _ending: bool = attrs.field(init=False, default=False)
    _removed: bool = attrs.field(init=False, default=False)

    @classmethod
    def create(cls, parent: Path | None = None) -> ChildCgroup:
        """Make a new, empty cgroup under *parent*.

        Args:
          parent: a cgroup-v2 directory; default: the caller's own cgroup
            (`own_cgroup`). The new cgroup is named
            ``trioproc-<parent pid>-<counter>``.

        Raises:
          CgroupUnavailableError: *parent* is missing, is not writable (no
            root, no delegation), is not a cgroup-v2 directory, or the kernel
            can neither kill nor freeze a cgroup (before Linux 5.2). Nothing
            is left behind.
        """
        if parent is None:
            parent = own_cgroup()
        _sweep_stale(parent)
        while True:
            path = parent / f"trioproc-{os.getpid()}-{next(_names)}"
            try:
                os.mkdir(path)
            except FileExistsError:  # left by an earlier process with our pid
                continue
            except OSError as exc:
                raise _unavailable_mkdir(parent, exc) from exc
            break
        problem = None
        if not (path / "cgroup.events").exists():
            problem = f"{parent} is not a cgroup-v2 directory (no cgroup.events)"
        elif not (
            (path / "cgroup.kill").exists() or (path / "cgroup.freeze").exists()
        ):  # pragma: no cover - kernels before 5.2
            problem = "this kernel has neither cgroup.kill (5.14+) nor cgroup.freeze"
        if problem is not None:
            os.rmdir(path)
            raise CgroupUnavailableError(errno.EOPNOTSUPP, problem)
        return cls(path)

    @contextlib.contextmanager
    def placing(self) -> Iterator[int | None]:
        """Make the children that the calling thread spawns inside be born here.

        ::

            with cgroup.placing() as cgroup_fd:
                pid = posix_spawn(..., cgroup_fd=cgroup_fd)

        Yields the cgroup's directory fd where libc can start a child in a
        cgroup itself (``posix_spawnattr_setcgroup_np``): the spawn must pass
        it on. Elsewhere it yields ``None`` with this whole process moved into
        the cgroup, under a process-wide lock, and moves it back to the cgroup
        it came from on the way out, whatever happens inside. Keep the body to
        the spawn call: every thread of the process is inside meanwhile.

        Raises:
          CgroupUnavailableError: this process may not move into the cgroup
            (it needs write access to the ``cgroup.procs`` of the cgroup and
            of the common ancestor: root, or a delegated subtree). Nothing
            was moved.
          OSError: moving back failed; this process is still in the cgroup,
            which `kill` then refuses to end.
          RuntimeError: the cgroup was ended or removed, or ``placing`` is
            nested.
        """
        global _placing_depth
        from . import _posix_spawn  # Linux-only: imported where used

        if _posix_spawn.HAS_SPAWN_CGROUP:  # pragma: no cover - glibc 2.39+
            yield from self._placing_by_libc()
            return
        with _placing_lock:
            if _placing_depth:
                raise RuntimeError("ChildCgroup.placing() is not reentrant")
            self._check_open()
            home = own_cgroup()
            me = str(os.getpid()).encode()
            try:
                _write(self.path / "cgroup.procs", me)
            except OSError as exc:
                raise _unavailable_move(self.path, home, exc) from exc
            _placing_depth += 1
            try:
                yield None
            finally:
                _placing_depth -= 1
                _write(home / "cgroup.procs", me)

    def _placing_by_libc(self) -> Iterator[int]:  # pragma: no cover - glibc 2.39+
        self._check_open()
        home = own_cgroup()
        # The kernel checks what a move checks; access() says it in advance,
        # so that a refusal is not taken for the program's own EACCES.
        for procs in (self.path / "cgroup.procs", home / "cgroup.procs"):
            if not os.access(procs, os.W_OK):
                raise _unavailable_move(
                    self.path, home, PermissionError(errno.EACCES, "")
                )
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)

    def pids(self) -> list[int]:
        """The processes in the cgroup now (not its zombies); ``[]`` once removed."""
        if self._removed:
            return []
        return [int(pid) for pid in _read(self.path / "cgroup.procs").split()]

    def populated(self) -> bool:
        """Whether a live process is in the cgroup (zombies do not count)."""
        return self._event("populated")

    def signal_all(self, signum: int) -> int:
        """Send *signum* to every process in the cgroup; return how many got it.

        Pid reuse cannot misdirect it: each listed pid is pinned with a pidfd,
        the listing is read again, and only pids listed both times are
        signalled through their pidfd -- a pidfd taken before the second
        listing names the process that second listing saw, or a dead one. A
        process forked meanwhile may be missed; `kill` misses none.

        Raises:
          RuntimeError: this process itself is in the cgroup.
        """
        with _placing_lock:
            self._refuse_if_inside()
            return signal_listed(self.pids, signum)

    async def kill(self, *, method: KillMethod | None = None) -> None:
        """End every process in the cgroup with SIGKILL, forks in flight too.

        With ``"cgroup.kill"`` (the default where the kernel has it, 5.14+)
        the kernel kills the whole cgroup at once, and kills any child forked
        meanwhile. With ``"freeze"`` (the default before 5.14) the cgroup is
        frozen, and once the kernel reports every process frozen -- none can
        fork or exit, so the listing is complete and no pid can be reused --
        each is sent SIGKILL and the cgroup is thawed. A frozen process dies
        of SIGKILL at once. `wait_empty` then waits for the exits.

        After ``kill`` has begun, `placing` refuses this cgroup.

        Raises:
          RuntimeError: this process itself is in the cgroup (a failed move
            back): ending it would end the caller.

        Cancellation: only the freeze method waits (for the freeze). A
        cancelled wait still sends SIGKILL to every process listed then and
        thaws the cgroup before `trio.Cancelled` propagates.
        """
        with _placing_lock:
            self._refuse_if_inside()
            self._ending = True
        if self._removed:
            await trio.lowlevel.checkpoint()
            return
        if method is None:
            has_kill = (self.path / "cgroup.kill").exists()
            method = "cgroup.kill" if has_kill else "freeze"
        if method == "cgroup.kill":
            _write(self.path / "cgroup.kill", b"1")
            await trio.lowlevel.checkpoint()
            return
        freeze = self.path / "cgroup.freeze"
        _write(freeze, b"1")
        try:
            await self._wait_for("frozen", True)
        finally:
            # Also when cancelled: SIGKILL whatever is listed, then thaw --
            # a cgroup left frozen would hold its processes forever.
            try:
                signal_listed(self.pids, signal.SIGKILL)
            finally:
                _write(freeze, b"0")

    async def wait_empty(self) -> None:
        """Wait until no live process is left in the cgroup.

        It polls ``cgroup.events`` (every 20 ms at most); bound it with a
        cancel scope.

        Cancellation: safe; nothing changes.
        """
        await self._wait_for("populated", False)

    def remove(self) -> None:
        """Remove the cgroup (and any cgroup the child made inside it).

        Idempotent: removing a removed cgroup does nothing.

        Raises:
          OSError: ``EBUSY`` if a live process is still in it (`kill` and
            `wait_empty` first).
        """
        if self._removed:
            return
        self._ending = True
        # The kernel refuses rmdir on a cgroup with child cgroups (the child
        # may have made some), and populated covers them all: deepest first.
        inner = [Path(top) for top, _, _ in os.walk(self.path)][1:]
        inner.sort(key=lambda path: len(path.parts), reverse=True)
        for path in [*inner, self.path]:
            self._rmdir(path)
        self._removed = True

    def _rmdir(self, path: Path) -> None:
        for attempt in range(50):
            try:
                os.rmdir(path)
            except FileNotFoundError:  # removed by someone else
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                if self.populated():
                    raise OSError(
                        errno.EBUSY,
                        f"cgroup {self.path} still holds processes {self.pids()}",
                    ) from None
                if attempt == 49:  # pragma: no cover - see below
                    raise
            else:
                return
            # Emptied, but the kernel is still finishing the last exit (not
            # seen on Linux 6.x; bounded at 50 ms).
            time.sleep(0.001)  # pragma: no cover

    def _check_open(self) -> None:
        if self._removed or self._ending:
            raise RuntimeError(f"cgroup {self.path} was already ended or removed")

    def _refuse_if_inside(self) -> None:
        if os.getpid() in self.pids():
            raise RuntimeError(
                f"this process is itself in cgroup {self.path}; refusing to end it"
            )

    def _event(self, key: str) -> bool:
        if self._removed:
            return False
        lines = _read(self.path / "cgroup.events").splitlines()
        return dict(line.split(" ", 1) for line in lines)[key].strip() == "1"

    async def _wait_for(self, key: str, value: bool) -> None:
        delay = 0.0005
        await trio.lowlevel.checkpoint()
        while self._event(key) != value:
            await trio.sleep(delay)
            delay = min(delay * 2, _POLL_CAP)


_swept: set[Path] = set()


def _sweep_stale(parent: Path) -> None:
    """Remove, once per process and directory, the empty cgroups that a
    process which died without its clean-up (SIGKILL) left in *parent*.

    Only cgroups named for a pid that no longer exists are tried, and rmdir
    refuses one that still holds a process, so nothing running is touched.
    """
    if parent in _swept:
        return
    _swept.add(parent)
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        owner = name.split("-")[1] if name.startswith("trioproc-") else ""
        if not owner.isdigit() or os.path.exists(f"/proc/{owner}"):
            continue
        with contextlib.suppress(OSError):
            os.rmdir(parent / name)


def _unavailable_mkdir(parent: Path, exc: OSError) -> CgroupUnavailableError:
    code = exc.errno or errno.EACCES
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = f"cgroup-v2 directory {parent} is not writable ({_NOT_WRITABLE})"
    elif code == errno.ENOENT:
        what = f"cgroup-v2 directory {parent} does not exist"
    else:
        what = f"cannot make a cgroup in {parent}: {os.strerror(code)}"
    return CgroupUnavailableError(code, what)


def _unavailable_move(path: Path, home: Path, exc: OSError) -> CgroupUnavailableError:
    code = exc.errno or errno.EACCES
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = (
            f"this process may not move into cgroup {path}: it needs write "
            f"access to {path}/cgroup.procs and to the cgroup.procs of the "
            f"common ancestor of {home} and {path} ({_NOT_WRITABLE})"
        )
    else:
        what = f"the kernel refused to move this process into {path}: " + (
            os.strerror(code)
        )
    return CgroupUnavailableError(code, what)


_available: CgroupUnavailableError | bool | None = False  # False: not probed


def unavailable() -> CgroupUnavailableError | None:
    """Why no child can get a cgroup of its own here, or ``None`` if one can.

    Probed once per process (a cgroup is made, entered, left and removed),
    for callers that use cgroups wherever they exist and fall back to
    process groups elsewhere (the Supervisor, the ``trioproc`` command).
    """
    global _available
    if _available is False:
        try:
            probe = ChildCgroup.create()
            try:
                with probe.placing():
                    pass
            finally:
                probe.remove()
        except CgroupUnavailableError as exc:
            _available = exc
        else:
            _available = None
    assert _available is not True
    return _available
