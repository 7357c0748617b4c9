"""The control socket on disk: whose it is, whether a live fleet listens on
it, and taking it safely (under a lock, bound under a temporary name, made
0600, renamed into place).
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import struct
import sys
import time
from pathlib import Path
from typing import Final

import trio

from ._protocol import ControlError

_LOCK_TIMEOUT: Final = 5.0
_LINUX: Final = sys.platform.startswith("linux")
# sockaddr_un.sun_path, less its NUL: 108 bytes on Linux, 104 on macOS and
# the BSDs.
_SUN_PATH_MAX: Final = 107 if _LINUX else 103
_PEERCRED: Final = struct.Struct("3i")  # struct ucred: pid, uid, gid


def open_directory(path: Path) -> int:
    return os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def address(path: Path, directory: int) -> str:
    """An address for *path* that fits ``sun_path``: the path itself, or,
    when it is too long, the same file through the open *directory* (Linux).

    Raises:
      ControlError: the path is too long and this platform has no
        ``/proc/self/fd`` to shorten it through.
    """
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return str(path)
    if not _LINUX:
        raise ControlError(
            f"{path}: the control socket's path is longer than the "
            f"{_SUN_PATH_MAX} bytes a Unix socket address holds on {sys.platform}; "
            "keep the fleet file in a directory with a shorter path"
        )
    return f"/proc/self/fd/{directory}/{path.name}"


def peer(
    sock: socket.socket | trio.socket.SocketType,
) -> tuple[int | None, int | None]:
    """The (pid, uid) of the process at the other end of *sock*, as Linux's
    ``SO_PEERCRED`` reports them; ``(None, None)`` where the platform has no
    such option (macOS, the BSDs): there the socket's mode (0600, its owner
    checked) is what keeps other users out."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None, None
    pid, uid, _ = _PEERCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, option, _PEERCRED.size)
    )
    return pid, uid


def check_owner(path: Path, directory: int) -> os.stat_result | None:
    """The existing socket at *path*, if any, once it is known to be ours."""
    try:
        found = os.lstat(path.name, dir_fd=directory)
    except FileNotFoundError:
        return None
    if not stat.S_ISSOCK(found.st_mode):
        raise ControlError(f"{path} exists and is not a socket: remove it first")
    if found.st_uid != os.geteuid():
        raise ControlError(
            f"{path} belongs to uid {found.st_uid}, not to you: refusing to use it"
        )
    return found


def connect(path: Path, directory: int, timeout: float) -> socket.socket:
    """A connected socket to *path*; ``ConnectionRefusedError`` if stale."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock.connect(address(path, directory))
                break
            except BlockingIOError:
                # A Unix socket's full backlog: EAGAIN, not a wait. Retry.
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path}: the fleet does not answer") from None
                time.sleep(0.01)
    except BaseException:
        sock.close()
        raise
    return sock


async def bind(path: Path) -> tuple[socket.socket, int, tuple[int, int]]:
    """Take the control socket: refuse a live or foreign one, replace a
    stale one; return it listening, the directory's fd and its inode."""
    import fcntl  # POSIX-only (a Unix socket's directory lock): imported here

    try:
        directory = open_directory(path)
    except OSError as exc:
        raise ControlError(f"cannot open {path.parent}: {exc}") from exc
    try:
        with trio.fail_after(_LOCK_TIMEOUT):
            while True:
                try:
                    fcntl.flock(directory, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    # Another trioproc is taking a socket here right now.
                    await trio.sleep(0.01)
        try:
            sock, identity = _take(path, directory)
        finally:
            fcntl.flock(directory, fcntl.LOCK_UN)
    except trio.TooSlowError:
        os.close(directory)
        raise ControlError(f"{path.parent} stays locked by another process") from None
    except BaseException:
        os.close(directory)
        raise
    return sock, directory, identity


def _take(path: Path, directory: int) -> tuple[socket.socket, tuple[int, int]]:
    """`bind`'s work, under the directory's lock."""
    if check_owner(path, directory) is not None:
        try:
            probe = connect(path, directory, 1.0)
        except ConnectionRefusedError:
            os.unlink(path.name, dir_fd=directory)  # stale: nobody listens
        except OSError as exc:
            raise ControlError(f"cannot check {path}: {exc}") from exc
        else:
            with probe:
                pid, _ = peer(probe)
            who = "another trioproc run" + ("" if pid is None else f" (pid {pid})")
            raise ControlError(
                f"{who} is running a fleet from "
                f"{path.parent}: its control socket is {path}"
            )
    temporary = f"{path.name}.{os.getpid()}.new"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary, dir_fd=directory)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # Until it listens, a connection to it is refused: the moment
        # between bind and chmod exposes nothing.
        sock.bind(address(path.with_name(temporary), directory))
        os.chmod(temporary, 0o600, dir_fd=directory)
        os.rename(temporary, path.name, src_dir_fd=directory, dst_dir_fd=directory)
        found = os.lstat(path.name, dir_fd=directory)
        # The backlog is not the client limit (that is enforced once
        # accepted, with a reply): a full backlog makes a client's
        # connect fail with EAGAIN instead of waiting its turn.
        sock.listen(socket.SOMAXCONN)
    except BaseException:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=directory)
        raise
    return sock, (found.st_dev, found.st_ino)
