"""Starting a child: pipes, the fd plan, and ``posix_spawn``.

Two paths, one contract (the child has exactly the fds it was given, default
signal dispositions, an empty signal mask):

* The everyday path -- pipes, any ``child_fds`` layout, ``env``, ``cwd``,
  ``new_session``, pseudo-terminals -- is one ``posix_spawn`` call. No Python
  runs in the child before ``exec``.
* Switching identity (``uid``/``gid``) is something ``posix_spawn`` cannot do,
  and CPython's own fork path (``_posixsubprocess``) remaps only fds 0-2. So
  ``posix_spawn`` starts a small trampoline (`trioproc._os._trampoline`) with the
  fds already in place, and the trampoline -- a fresh interpreter after
  ``exec``, so no threads and no locks inherited from us -- drops the
  supplementary groups, switches identity and ``exec``s the program. Its
  ``exec`` errors come back through a close-on-exec pipe, so a missing program
  still raises in the parent. It costs a Python start-up (see the README).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import marshal
import os
import signal
import stat
import sys
from typing import TYPE_CHECKING, Final, final

import attrs
import trio

from . import _posix_spawn, _trampoline
from ._cgroup import CgroupUnavailableError
from ._posix_spawn import FileActions, posix_spawn
from ._pty import open_pty
from ._reader import F_SETPIPE_SZ

if TYPE_CHECKING:
    from .._options import SpawnOptions
    from ._cgroup import ChildCgroup

__all__ = ["Launch", "find_program", "prepare"]

_TRAMPOLINE: Final = os.fsencode(os.path.abspath(_trampoline.__file__))
_PAYLOAD_LIMIT: Final = 1 << 20
_DEVNULL: Final = os.fsencode(os.devnull)


@final
@attrs.define(eq=False)
class Launch:
    """One child's pipes and fd plan, made by `prepare`, started by `start`.

    Ownership: the parent's ends (`readers`, `writers`, `pty_master`) are
    non-blocking and close-on-exec, and belong to the caller from `prepare`
    on (`close_parent_ends` closes them when the child did not start). The
    child's ends and the plan belong to this object until `start` (or
    `discard`) releases them.
    """

    #: child fd -> the parent's read end, for each ``"r"`` fd (and the pty).
    readers: dict[int, int]
    #: child fd -> the parent's write end, for each ``"w"`` fd (and the pty).
    writers: dict[int, int]
    #: The pseudo-terminal's master, also in readers[1] and writers[0].
    pty_master: int | None
    _program: bytes
    _argv: tuple[bytes, ...]
    _env: tuple[bytes, ...] | None
    _cwd: bytes | None
    _setsid: bool
    _setpgroup: bool
    _actions: FileActions | None
    _to_close: list[int]
    #: The trampoline's status pipe, until `confirm` has read it.
    _status_fd: int | None
    pid: int | None = attrs.field(init=False, default=None)

    def start(self, cgroup: ChildCgroup | None = None) -> int:
        """Start the child; return its pid.

        Args:
          cgroup: the child is born in this cgroup (and so is every process
            it forks, from its first instruction on).

        Raises:
          FileNotFoundError, PermissionError, NotADirectoryError, OSError: the
            program or the working directory cannot be used. Nothing is
            started; the parent's ends stay the caller's to close.
          CgroupUnavailableError: the child cannot be placed in *cgroup*.
        """
        assert self._actions is not None
        placing = contextlib.nullcontext() if cgroup is None else cgroup.placing()
        try:
            with placing as cgroup_fd:
                self.pid = posix_spawn(
                    self._program,
                    self._argv,
                    self._env,
                    self._actions,
                    setsid=self._setsid,
                    setpgroup=self._setpgroup,
                    cgroup_fd=cgroup_fd,
                )
        except OSError as exc:
            if self._status_fd is not None:
                os.close(self._status_fd)
                self._status_fd = None
            if self.pid is not None:
                # The child started, but this process could not leave its
                # cgroup: end the child rather than hand back a pid with an
                # error. It is our own unreaped child, so its pid is its own.
                self._kill_and_reap()
                raise
            if isinstance(exc, CgroupUnavailableError):
                raise
            raise _explain(exc, self._program, self._cwd) from None
        finally:
            self.discard()
        return self.pid

    def close_parent_ends(self) -> None:
        """Close the parent's ends, for a child that did not start."""
        for fd in {*self.readers.values(), *self.writers.values()}:
            os.close(fd)
        self.readers.clear()
        self.writers.clear()
        self.pty_master = None

    def discard(self) -> None:
        """Release the child's ends and the plan (done by `start` itself)."""
        if self._actions is not None:
            self._actions.free()
            self._actions = None
        for fd in self._to_close:
            os.close(fd)
        self._to_close.clear()

    @property
    def needs_confirm(self) -> bool:
        """Whether `confirm` must be awaited after `start` (the trampoline path)."""
        return self._status_fd is not None

    async def confirm(self) -> None:
        """Wait until the program itself is running (the trampoline path).

        Raises:
          OSError: the trampoline could not switch identity or exec the
            program; the trampoline has been reaped.

        Cancellation: the trampoline (or the program) is killed and reaped.
        """
        status_fd = self._status_fd
        assert status_fd is not None
        self._status_fd = None
        report = b""
        try:
            while True:
                try:
                    chunk = os.read(status_fd, 4096)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(status_fd)
                    continue
                if not chunk:
                    break
                report += chunk
        except BaseException:
            self._kill_and_reap()
            raise
        finally:
            trio.lowlevel.notify_closing(status_fd)
            os.close(status_fd)
        if report:
            self._kill_and_reap()
            code, _, what = report.decode("ascii", "replace").partition(":")
            raise OSError(int(code), f"{os.strerror(int(code))} ({what})")
        # The program runs now and belongs to the caller: no checkpoint here
        # may leave it behind (the caller's entering checkpointed already).

    def _kill_and_reap(self) -> None:
        # The trampoline exits at once after reporting an error, and neither
        # it nor a program that has just started can block SIGKILL, so this
        # blocking wait is short. A program that already forked leaves
        # those in its process group, which it leads unless told otherwise.
        assert self.pid is not None
        if self._setsid or self._setpgroup:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):  # it may have exited
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.pid = None


def prepare(options: SpawnOptions) -> Launch:
    """Make the pipes and the fd plan for the child *options* describe.

    Raises:
      FileNotFoundError, PermissionError: the program is not on ``PATH``.
      OSError: out of fds or pipes, or (EBADF) a parent fd in ``child_fds``
        is no longer open; nothing is left open.
    """
    program = find_program(options.program, options.search_path)
    kept: list[int] = []  # the parent's ends, closed here only on failure
    to_close: list[int] = []  # the child's ends and temporary copies
    readers: dict[int, int] = {}
    writers: dict[int, int] = {}
    sources: dict[int, int] = {}
    pty_master = status_fd = None
    top = (
        2
        if options.pty is not None
        else max((*options.child_fds, *options.devnull, *options.shared), default=-1)
    )
    actions = FileActions()
    try:
        # The caller's fds are copied first, before any pipe exists: a number
        # the caller closed since spawn() is then reported, not silently
        # reused by one of our pipes, and the child gets our copy, which no
        # close by another thread can pull away before posix_spawn runs.
        for child_fd, how in options.child_fds.items():
            if isinstance(how, int):  # never with a pty
                sources[child_fd] = _copy_parent_fd(child_fd, how, top)
                to_close.append(sources[child_fd])
        if options.pty is not None:
            pty_master, slave = open_pty(options.pty)
            kept.append(pty_master)
            # Held open until the child has the terminal: a master with no
            # slave open reads as end of output.
            to_close.append(slave)
            readers[1] = writers[0] = pty_master
        else:
            for child_fd, how in options.child_fds.items():
                if how == "r":
                    parent_end, sources[child_fd] = os.pipe2(os.O_CLOEXEC)
                    readers[child_fd] = parent_end
                elif how == "w":
                    sources[child_fd], parent_end = os.pipe2(os.O_CLOEXEC)
                    writers[child_fd] = parent_end
                else:
                    continue
                kept.append(parent_end)
                to_close.append(sources[child_fd])
                os.set_blocking(parent_end, False)
            for child_fd, other in options.shared.items():
                sources[child_fd] = sources[other]  # one pipe, two child fds
        trampoline = options.uid is not None or options.gid is not None
        trampoline = trampoline or (
            options.cwd is not None and not _posix_spawn.HAS_ADDCHDIR
        )
        if options.cwd is not None and _posix_spawn.HAS_ADDCHDIR:
            actions.chdir(options.cwd)
        if options.pty is not None:
            # Opening the terminal after setsid() makes it the child's
            # controlling terminal (Linux: the first terminal a session leader
            # opens without O_NOCTTY), so posix_spawn does it all and no
            # Python runs in the child before exec.
            actions.open(0, os.ttyname(slave).encode(), os.O_RDWR)
            actions.dup2(0, 1)
            actions.dup2(0, 2)
        for child_fd, source in sources.items():
            if source <= top:
                # A copy above every target, so that no dup2 overwrites a
                # source another target still needs ({0: 1, 1: 0} swaps).
                source = fcntl.fcntl(source, fcntl.F_DUPFD_CLOEXEC, top + 1)
                to_close.append(source)
            actions.dup2(source, child_fd)
        if options.pty is None:
            for fd in range(top + 1):
                if fd not in sources and fd not in options.devnull:
                    actions.close(fd)
            for fd in sorted(options.devnull):
                actions.open(fd, _DEVNULL, os.O_RDWR)
        argv, env = options.argv, options.env
        if trampoline:
            status_fd, argv, env = _plan_trampoline(
                options, program, actions, top, to_close
            )
            kept.append(status_fd)
            program = sys.executable.encode()
        actions.closefrom(top + (3 if trampoline else 1))
        actions.make()
    except BaseException:
        actions.free()
        for fd in kept + to_close:
            os.close(fd)
        raise
    return Launch(
        readers,
        writers,
        pty_master,
        program,
        argv,
        env,
        options.cwd,
        options.new_session,
        options.process_group,
        actions,
        to_close,
        status_fd,
    )


def _copy_parent_fd(child_fd: int, fd: int, top: int) -> int:
    """A close-on-exec copy of the caller's *fd* above *top*, to be the
    child's *child_fd*.

    Raises:
      OSError: EBADF naming ``child_fds``, when *fd* is not open (closed since
        ``spawn()`` checked it); EMFILE when out of fds.
    """
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, top + 1)
    except OSError as exc:
        if exc.errno != errno.EBADF:  # pragma: no cover - EMFILE: out of fds
            raise
        raise OSError(
            errno.EBADF, f"child_fds[{child_fd}]: parent fd {fd} is not open"
        ) from None


def find_program(name: bytes, search_path: bytes | None) -> bytes:
    """The path of the program *name*, searched on *search_path* like ``execvp``.

    *search_path* is the child's ``PATH`` (``None``: the parent's). A name with
    a slash is used as it is.

    Raises:
      FileNotFoundError: no directory on the path has it.
      PermissionError: only entries that cannot be executed were found.
    """
    if b"/" in name:
        return name
    if search_path is None:
        search_path = os.environb.get(b"PATH", os.defpath.encode())
    candidates = []
    for directory in search_path.split(b":"):
        # os.path.join(directory or b".", name), for a name without a slash.
        if not directory:
            directory = b"./"
        elif not directory.endswith(b"/"):
            directory += b"/"
        candidates.append(directory + name)
    for candidate in candidates:
        # Most directories lack the name: a failed access() says so at the
        # cost of one system call, with no exception to make.
        if os.access(candidate, os.X_OK):
            try:
                mode = os.stat(candidate).st_mode
            except OSError:  # gone since
                continue
            if stat.S_ISREG(mode):
                return candidate
    # No executable: the error names the first entry that is there at all.
    for candidate in candidates:
        try:
            os.stat(candidate)
        except OSError:
            continue
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), candidate)
    raise FileNotFoundError(
        errno.ENOENT, f"{os.strerror(errno.ENOENT)} on PATH", os.fsdecode(name)
    )


def _explain(exc: OSError, program: bytes, cwd: bytes | None) -> OSError:
    """*exc* from posix_spawn, naming the path that caused it."""
    code = exc.errno or errno.EINVAL
    message = os.strerror(code)
    if cwd is not None and code in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
        # exec and chdir fail with the same errnos; blame cwd only if it is bad.
        try:
            cwd_ok = stat.S_ISDIR(os.stat(cwd).st_mode) and os.access(cwd, os.X_OK)
        except OSError:
            cwd_ok = False
        if not cwd_ok:
            return OSError(code, f"{message} (cwd)", os.fsdecode(cwd))
    return OSError(code, message, os.fsdecode(program))


def _plan_trampoline(
    options: SpawnOptions,
    program: bytes,
    actions: FileActions,
    top: int,
    to_close: list[int],
) -> tuple[int, tuple[bytes, ...], tuple[bytes, ...]]:
    """Arrange for the trampoline; return its status fd, argv and environment."""
    env = options.env
    if env is None:
        env = tuple(key + b"=" + value for key, value in os.environb.items())
    cwd = None if _posix_spawn.HAS_ADDCHDIR else options.cwd
    payload = marshal.dumps((program, options.argv, env, cwd, options.uid, options.gid))
    payload_read, payload_write = os.pipe2(os.O_CLOEXEC)
    to_close += (payload_read, payload_write)
    if len(payload) > 65536:
        with contextlib.suppress(OSError):
            fcntl.fcntl(payload_write, F_SETPIPE_SZ, min(len(payload), _PAYLOAD_LIMIT))
    os.set_blocking(payload_write, False)
    try:
        written = os.write(payload_write, payload)
    except BlockingIOError:
        written = 0
    if written < len(payload):
        raise OSError(
            errno.E2BIG, "argv and env are too large to hand to the uid/gid trampoline"
        )
    status_read, status_write = os.pipe2(os.O_CLOEXEC)
    to_close.append(status_write)
    try:
        os.set_blocking(status_read, False)
        # Copies above both targets, so that neither dup2 overwrites the
        # other's source (a pipe end may itself be top + 1 or top + 2).
        for source, target in ((payload_read, top + 1), (status_write, top + 2)):
            copy = fcntl.fcntl(source, fcntl.F_DUPFD_CLOEXEC, top + 3)
            to_close.append(copy)
            actions.dup2(copy, target)
    except BaseException:
        os.close(status_read)
        raise
    argv = (
        sys.executable.encode(),
        b"-I",
        b"-S",
        _TRAMPOLINE,
        str(top + 1).encode(),
        str(top + 2).encode(),
    )
    return status_read, argv, ()
