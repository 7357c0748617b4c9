"""Checking each argument of `trioproc.spawn` on its own: argv, paths, env,
the pty size, the fds (``child_fds`` and ``stdin=``/``stdout=``/``stderr=``),
identities and water marks. `trioproc._options.SpawnOptions.check` puts them
together; every error names the argument.
"""

from __future__ import annotations

import errno
import io
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    pass


__all__ = [
    "DEFAULT_CHILD_FDS",
    "STD_NAMES",
    "check_argv",
    "check_child_fds",
    "check_env",
    "check_identity",
    "check_path",
    "check_pty",
    "check_standard_fds",
    "check_water_marks",
    "shell_argv",
]

DEFAULT_CHILD_FDS: Final[Mapping[int, Literal["r", "w"] | int]] = {
    0: "w",
    1: "r",
    2: "r",
}

#: The names of fds 0-2, as spawn()'s keywords.
STD_NAMES: Final = {0: "stdin", 1: "stdout", 2: "stderr"}
#: Shell syntax: a str argv holding any of these is a command line.
_SHELL_CHARACTERS: Final = frozenset(" \t\n|&;<>()$`\\\"'*?[#~=%")

_FS_ENCODING: Final = sys.getfilesystemencoding()
#: The highest uid or gid: ``(uid_t)-1``, one more, means "no change" to
#: ``setuid``/``setgid``, and the types are 32 bits wide on Linux.
_MAX_ID: Final = 2**32 - 2
#: Fd numbers above the child's highest that starting it may need below the
#: RLIMIT_NOFILE soft limit, besides one copy of each of its fds: the uid/gid
#: trampoline's payload and status fds, and their copies.
_FDS_ABOVE: Final = 4
#: fds are C ints.
_MAX_FD_LIMIT: Final = 2**31


def check_water_marks(high: object, low: object) -> tuple[int, int]:
    for name, value in (("high_water", high), ("low_water", low)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be a number of bytes, not {value!r}")
    assert isinstance(high, int)
    assert isinstance(low, int)
    # A producer is resumed, and stdin.send_all() woken, when the queue drains
    # *below* low_water: with 0 that never happens.
    if not 1 <= low <= high:
        raise ValueError(
            f"water marks need 1 <= low_water <= high_water (the queue must be able "
            f"to drain below low_water; got high_water={high}, low_water={low})"
        )
    return high, low


def _encode(what: str, value: object) -> bytes:
    if type(value) is str:  # the common case, without the ABC check below
        encoded = value.encode(_FS_ENCODING, "surrogateescape")
    elif isinstance(value, (str, bytes, os.PathLike)):
        encoded = os.fsencode(value)
    else:
        raise TypeError(
            f"{what} must be str, bytes or os.PathLike, not {type(value).__name__}"
        )
    if b"\0" in encoded:
        raise ValueError(f"{what} contains a NUL byte: {value!r}")
    return encoded


def check_path(what: str, value: object, *, allow_empty: bool) -> bytes:
    encoded = _encode(what, value)
    if not encoded and not allow_empty:
        raise ValueError(f"{what} must not be empty")
    return encoded


def check_argv(argv: object) -> tuple[bytes, ...]:
    if type(argv) is not list and type(argv) is not tuple:  # the common cases
        if isinstance(argv, (str, bytes, bytearray, os.PathLike)):
            raise TypeError(
                "argv must be a sequence of arguments, not a single "
                f"{type(argv).__name__} ({_argv_hint(argv)})"
            )
        if not isinstance(argv, Iterable):
            raise TypeError(f"argv must be a sequence of arguments, not {argv!r}")
    encoded = []
    for index, arg in enumerate(argv):
        if type(arg) is str and arg:  # the common case, checked without a name
            word = arg.encode(_FS_ENCODING, "surrogateescape")
            if b"\0" not in word:
                encoded.append(word)
                continue
        encoded.append(check_path(f"argv[{index}]", arg, allow_empty=index > 0))
    if not encoded:
        raise ValueError("argv must not be empty: argv[0] names the program")
    return tuple(encoded)


def _argv_hint(argv: str | bytes | bytearray | os.PathLike[Any]) -> str:
    """What the caller of a single-string argv most likely meant."""
    if isinstance(argv, os.PathLike):
        return f"did you mean [{argv!r}]?"
    text = argv if isinstance(argv, str) else bytes(argv).decode(errors="replace")
    if not _SHELL_CHARACTERS.intersection(text):
        return f"did you mean [{argv!r}]?"
    try:
        words = shlex.split(text)
    except ValueError:  # unbalanced quotes: no split to offer
        split = "shlex.split()"
    else:
        split = f"shlex.split({text!r}) == {words!r}"
    return (
        f"a command line: did you mean {split}, or run({argv!r}, shell=True) "
        "to have /bin/sh run it?"
    )


def check_env(env: object) -> tuple[bytes, ...] | None:
    if env is None:
        return None
    if not isinstance(env, Mapping):
        raise TypeError(f"env must be a mapping or None, not {type(env).__name__}")
    entries = []
    seen: dict[bytes, object] = {}
    for key, value in env.items():
        name = _encode(f"env key {key!r}", key)
        if not name or b"=" in name:
            raise ValueError(f"env key {key!r} must be non-empty and contain no '='")
        if name in seen:
            raise ValueError(
                f"env keys {seen[name]!r} and {key!r} name the same variable"
            )
        seen[name] = key
        entries.append(name + b"=" + _encode(f"env[{key!r}]", value))
    return tuple(entries)


def check_pty(pty: object) -> tuple[int, int] | None:
    if pty is False:
        return None
    if pty is True:
        return (24, 80)
    if isinstance(pty, tuple) and len(pty) == 2:
        rows, cols = pty
        if all(isinstance(n, int) and not isinstance(n, bool) for n in pty):
            if 0 < rows <= 0xFFFF and 0 < cols <= 0xFFFF:
                return (rows, cols)
            raise ValueError(f"pty size must be two numbers from 1 to 65535, not {pty}")
    raise TypeError(f"pty must be True, False or (rows, cols), not {pty!r}")


def check_child_fds(
    child_fds: object,
) -> Mapping[int, Literal["r", "w"] | int]:
    if child_fds is None:
        return DEFAULT_CHILD_FDS
    if not isinstance(child_fds, Mapping):
        raise TypeError(
            f"child_fds must be a mapping of child fd to 'r', 'w' or a parent fd, "
            f"not {type(child_fds).__name__}"
        )
    checked: dict[int, Literal["r", "w"] | int] = {}
    if not child_fds:
        return checked
    limit = _fd_limit()
    room = len(child_fds) + _FDS_ABOVE
    for child_fd, how in child_fds.items():
        if isinstance(child_fd, bool) or not isinstance(child_fd, int):
            raise TypeError(f"child_fds keys must be fd numbers, not {child_fd!r}")
        if child_fd < 0:
            raise ValueError(f"child_fds key {child_fd} is not a valid fd number")
        if child_fd >= limit - room:
            raise ValueError(
                f"child_fds key {child_fd} is too high: the RLIMIT_NOFILE soft limit "
                f"is {limit}, and starting the child needs up to {room} free fd "
                f"numbers above its highest fd (one per child_fds entry and "
                f"{_FDS_ABOVE} more), so child fds must be below {limit - room}"
            )
        if how == "r" or how == "w":
            checked[child_fd] = how
        elif isinstance(how, int) and not isinstance(how, bool):
            _check_parent_fd(child_fd, how)
            checked[child_fd] = how
        else:
            raise ValueError(
                f"child_fds[{child_fd}] must be 'r' (the child writes), 'w' (the "
                f"parent writes) or an open parent fd, not {how!r}"
            )
    return checked


def check_standard_fds(
    layout: Mapping[int, Literal["r", "w"] | int],
    child_fds: Mapping[int, Literal["r", "w"] | int] | None,
    given: Mapping[int, object],
) -> tuple[dict[int, Literal["r", "w"] | int], frozenset[int], dict[int, int]]:
    """Merge ``stdin=``/``stdout=``/``stderr=`` (*given*: fd -> value) into
    the checked *layout*, and give fds 0-2 that nothing names /dev/null.

    Returns the child_fds layout, the fds to open on /dev/null and the fds
    that share another fd's pipe.

    Raises:
      TypeError, ValueError: a bad value, or an fd named twice.
    """
    checked = dict(layout)
    devnull: set[int] = set()
    shared: dict[int, int] = {}
    for fd, value in given.items():
        name = STD_NAMES[fd]
        if child_fds is not None and fd in child_fds:
            raise ValueError(
                f"{name}= and child_fds[{fd}] both say what the child's fd {fd} "
                "is: give one of them"
            )
        checked.pop(fd, None)
        if value is None:
            value = fd  # the parent's own fd 0, 1 or 2
        elif isinstance(value, bool):
            raise TypeError(
                f"{name} must be subprocess.PIPE, DEVNULL, a file object, an fd "
                f"or None, not {value!r}"
            )
        elif not isinstance(value, int):
            value = _fileno(name, value)
        if value == subprocess.PIPE:
            checked[fd] = "w" if fd == 0 else "r"
        elif value == subprocess.DEVNULL:
            devnull.add(fd)
        elif value == subprocess.STDOUT:
            if fd != 2:
                raise ValueError(
                    f"{name}=subprocess.STDOUT: only stderr can be merged into stdout"
                )
        elif value < 0:
            raise ValueError(f"{name}={value}: not an fd nor a subprocess constant")
        elif not _is_open(value):
            raise ValueError(f"{name}={value}: fd {value} is not open in the parent")
        else:
            checked[fd] = value
    for fd in (0, 1, 2):
        # A program started with fd 0, 1 or 2 closed writes its errors into
        # whatever file it opens next, which takes the lowest free number; so,
        # as libc does for set-uid programs, such an fd is /dev/null instead.
        if fd not in checked and given.get(fd) != subprocess.STDOUT:
            devnull.add(fd)
    if given.get(2) == subprocess.STDOUT:
        stdout = checked.get(1)
        if stdout is None:
            devnull.add(2)
        elif isinstance(stdout, int):
            checked[2] = stdout  # the same open file, so writes stay in order
        else:
            shared[2] = 1
    return checked, frozenset(devnull), shared


def _fileno(name: str, value: object) -> int:
    """The fd of the file object *value* given as ``stdin=`` (or ...)."""
    fileno = getattr(value, "fileno", None)
    if not callable(fileno):
        raise TypeError(
            f"{name} must be subprocess.PIPE, DEVNULL, a file object, an fd or "
            f"None, not {type(value).__name__}"
        )
    try:
        fd = fileno()
    except (io.UnsupportedOperation, OSError, ValueError) as exc:
        raise ValueError(
            f"{name}: {type(value).__name__} has no fd to hand to a child ({exc})"
        ) from None
    if isinstance(fd, bool) or not isinstance(fd, int) or fd < 0:
        raise ValueError(f"{name}: {type(value).__name__}.fileno() gave {fd!r}")
    return fd


def _fd_limit() -> int:
    """The RLIMIT_NOFILE soft limit, read now: the child inherits it, and no
    fd of the child (nor any the launch needs) can be at or above it.
    Windows has no such limit (its children get fds 0-2 only)."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return _MAX_FD_LIMIT
    import resource  # POSIX-only: imported where used

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return _MAX_FD_LIMIT if soft == resource.RLIM_INFINITY else min(soft, _MAX_FD_LIMIT)


def _check_parent_fd(child_fd: int, fd: int) -> None:
    if not _is_open(fd):
        raise ValueError(
            f"child_fds[{child_fd}] = {fd}: fd {fd} is not open in the parent"
        )


def _is_open(fd: int) -> bool:
    """Whether *fd* is an open fd of this process."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        try:
            os.fstat(fd)
        except (OSError, OverflowError):
            return False
        return True
    import fcntl  # POSIX-only: imported where used

    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError as exc:
        if exc.errno != errno.EBADF:  # pragma: no cover - F_GETFD fails only so
            raise
        return False
    except OverflowError:
        return False
    return True


def check_identity(
    what: str, value: object, lookup: Callable[[str], int]
) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        kind = "user" if what == "uid" else "group"
        try:
            return lookup(value)
        except (KeyError, ValueError):  # ValueError: a NUL in the name
            raise ValueError(f"{what}: no such {kind} {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, a name or None, not {value!r}")
    if not 0 <= value <= _MAX_ID:
        # 2**32 - 1 is (uid_t)-1, which setuid() takes as "no change".
        raise ValueError(f"{what} must be from 0 to {_MAX_ID} (2**32 - 2), not {value}")
    return value


def shell_argv(command: str) -> list[str]:
    """The argv that runs the command line *command* with the system's
    shell: ``/bin/sh -c COMMAND`` on POSIX; ``%COMSPEC% /s /c COMMAND`` on
    Windows, which the Windows hooks hand to ``cmd`` verbatim
    (`trioproc._os._windows.WindowsHooks.command`), so that the command
    keeps its own quotes."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return [os.environ.get("COMSPEC", "cmd.exe"), "/s", "/c", command]
    return ["/bin/sh", "-c", command]
