"""Checking and normalizing what a caller passes to `trioproc.spawn`.

Everything here runs at the call to ``spawn()`` itself, so a bad argument
raises there, naming the argument, before any fd or child exists.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeAlias, final

import attrs

if TYPE_CHECKING:
    from ._interfaces import IProcessProtocol
    from ._ssh._options import RemoteOptions

from ._arguments import (
    DEFAULT_CHILD_FDS,
    STD_NAMES,
    check_argv,
    check_child_fds,
    check_env,
    check_identity,
    check_path,
    check_pty,
    check_standard_fds,
    check_water_marks,
)

__all__ = [
    "DEFAULT_CHILD_FDS",
    "DEFAULT_HIGH_WATER",
    "DEFAULT_KILL_AFTER",
    "DEFAULT_LOW_WATER",
    "DEFAULT_MAX_RESTARTS",
    "DEFAULT_MAX_SECONDS",
    "DEFAULT_READY_TIMEOUT",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "NOT_GIVEN",
    "PORTS",
    "ChildFDs",
    "NotGiven",
    "Redirect",
    "SpawnOptions",
    "StrOrBytesPath",
    "is_port",
]

StrOrBytesPath: TypeAlias = "str | bytes | os.PathLike[str] | os.PathLike[bytes]"
ChildFDs: TypeAlias = "Mapping[int, Literal['r', 'w'] | int]"

#: Seconds between SIGTERM and SIGKILL when a child is stopped.
DEFAULT_KILL_AFTER: Final = 5.0
#: Bytes queued for a child's stdin at which a streaming producer is paused...
DEFAULT_HIGH_WATER: Final = 64 * 1024
#: ...and below which it is resumed.
DEFAULT_LOW_WATER: Final = 16 * 1024
#: Seconds a supervised child's ready check may take.
DEFAULT_READY_TIMEOUT: Final = 10.0
#: A supervisor's restart intensity: more than this many restarts...
DEFAULT_MAX_RESTARTS: Final = 3
#: ...within this many seconds, and it gives up.
DEFAULT_MAX_SECONDS: Final = 5.0
#: Seconds a supervisor's shutdown may take in all.
DEFAULT_SHUTDOWN_TIMEOUT: Final = 60.0
#: The TCP ports a child can listen on (a ready check, a ``PORT``).
PORTS: Final = range(1, 65536)


def is_port(value: object) -> bool:
    """Whether *value* is a TCP port number, 1 to 65535 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value in PORTS


class HasFileno(Protocol):
    """A file object: anything whose ``fileno()`` gives an open fd."""

    def fileno(self) -> int: ...


#: What ``stdin=``, ``stdout=`` and ``stderr=`` take, as in `subprocess`:
#: ``subprocess.PIPE``, ``subprocess.DEVNULL``, ``subprocess.STDOUT``
#: (stderr only), an open parent fd, a file object, or ``None`` (the
#: parent's own fd 0, 1 or 2).
Redirect: TypeAlias = "int | HasFileno | None"


@final
class NotGiven(enum.Enum):
    """The type of `NOT_GIVEN`, the default of arguments where ``None`` has
    a meaning of its own (``stdout=None``: the parent's stdout)."""

    NOT_GIVEN = "NOT_GIVEN"

    def __repr__(self) -> str:
        return "NOT_GIVEN"


#: An argument the caller left out.
NOT_GIVEN: Final = NotGiven.NOT_GIVEN

_PROTOCOL_CALLBACKS: Final = (
    "makeConnection",
    "childDataReceived",
    "childConnectionLost",
    "processExited",
    "processEnded",
)


if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TypedDict

    class SpawnKeywords(TypedDict, total=False):
        """The keyword arguments every overload of `trioproc.spawn` takes alike."""

        executable: StrOrBytesPath | None
        env: Mapping[str, str] | Mapping[bytes, bytes] | None
        cwd: StrOrBytesPath | None
        uid: int | str | None
        gid: int | str | None
        new_session: bool
        process_group: bool
        cgroup: bool
        kill_after: float
        high_water: int
        low_water: int
        host: str | None
        ssh_options: Sequence[str] | StrOrBytesPath | None


@final
@attrs.frozen
class SpawnOptions:
    """A checked, normalized request to start one child."""

    argv: tuple[bytes, ...]
    executable: bytes | None
    env: tuple[bytes, ...] | None
    search_path: bytes | None
    cwd: bytes | None
    child_fds: Mapping[int, Literal["r", "w"] | int]
    pty: tuple[int, int] | None
    uid: int | None
    gid: int | None
    new_session: bool
    process_group: bool
    cgroup: bool
    kill_after: float
    high_water: int
    low_water: int
    #: Child fds opened on ``os.devnull`` (read and write), not parent fds.
    devnull: frozenset[int] = frozenset()
    #: child fd -> the child fd whose pipe it shares (``stderr=STDOUT``
    #: with stdout a pipe: the child writes both into one pipe, in order).
    shared: Mapping[int, int] = attrs.field(factory=dict)
    #: ``host=`` and ``ssh_options=``, checked (`trioproc._ssh.check_remote`).
    remote: RemoteOptions | None = None

    @property
    def program(self) -> bytes:
        """The name to run: *executable* if given, else ``argv[0]``."""
        return self.executable if self.executable is not None else self.argv[0]

    @classmethod
    def check(
        cls,
        argv: Iterable[StrOrBytesPath],
        *,
        executable: StrOrBytesPath | None = None,
        env: Mapping[Any, Any] | None = None,
        cwd: StrOrBytesPath | None = None,
        child_fds: Mapping[int, Literal["r", "w"] | int] | None = None,
        pty: bool | tuple[int, int] = False,
        uid: int | str | None = None,
        gid: int | str | None = None,
        new_session: bool = False,
        process_group: bool = True,
        cgroup: bool = False,
        kill_after: float = DEFAULT_KILL_AFTER,
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int = DEFAULT_LOW_WATER,
        stdin: Redirect | NotGiven = NOT_GIVEN,
        stdout: Redirect | NotGiven = NOT_GIVEN,
        stderr: Redirect | NotGiven = NOT_GIVEN,
    ) -> SpawnOptions:
        """Check every argument of `trioproc.spawn` and normalize it.

        Raises:
          TypeError: an argument has the wrong type.
          ValueError: an argument has a value that cannot work.
        """
        checked_env = check_env(env)
        search_path: bytes | None = None
        if checked_env is not None:
            search_path = os.defpath.encode()
            for entry in checked_env:
                if entry.startswith(b"PATH="):
                    search_path = entry[5:]
        high, low = check_water_marks(high_water, low_water)
        pty_size = check_pty(pty)
        fds = check_child_fds(child_fds)
        if pty_size is not None and child_fds is not None and fds != DEFAULT_CHILD_FDS:
            raise ValueError(
                "child_fds cannot be combined with pty: the child's fds 0, 1 and 2 "
                f"are the pseudo-terminal (got child_fds={dict(child_fds)!r})"
            )
        given = {
            fd: value
            for fd, value in enumerate((stdin, stdout, stderr))
            if value is not NOT_GIVEN
        }
        devnull: frozenset[int] = frozenset()
        shared: dict[int, int] = {}
        if pty_size is not None:
            if given:
                raise ValueError(
                    f"{'=, '.join(STD_NAMES[fd] for fd in given)}= cannot be "
                    "combined with pty: the child's fds 0, 1 and 2 are the "
                    "pseudo-terminal"
                )
        else:
            fds, devnull, shared = check_standard_fds(
                fds, None if child_fds is None else fds, given
            )
        for name, flag in (
            ("new_session", new_session),
            ("process_group", process_group),
            ("cgroup", cgroup),
        ):
            if not isinstance(flag, bool):
                raise TypeError(
                    f"{name} must be True or False, not {type(flag).__name__}"
                )
        return cls(
            argv=check_argv(argv),
            executable=(
                None
                if executable is None
                else check_path("executable", executable, allow_empty=False)
            ),
            env=checked_env,
            search_path=search_path,
            cwd=None if cwd is None else check_path("cwd", cwd, allow_empty=False),
            child_fds=fds,
            pty=pty_size,
            uid=check_identity("uid", uid, _uid_of_name),
            gid=check_identity("gid", gid, _gid_of_name),
            new_session=new_session or pty_size is not None,
            process_group=process_group or new_session or pty_size is not None,
            cgroup=cgroup,
            kill_after=check_kill_after(kill_after),
            high_water=high,
            low_water=low,
            devnull=devnull,
            shared=shared,
        )


def check_protocol(protocol: object) -> IProcessProtocol | None:
    """*protocol* if it has every callback of the contract.

    Raises:
      TypeError: a callback is missing or not callable.
    """
    if protocol is None:
        return None
    if isinstance(protocol, type):
        # Its callbacks are there, unbound: they would fail at the first call.
        raise TypeError(
            f"protocol must be a ProcessProtocol instance, not the class "
            f"{protocol.__name__} (write {protocol.__name__}())"
        )
    missing = [
        name
        for name in _PROTOCOL_CALLBACKS
        if not callable(getattr(protocol, name, None))
    ]
    if missing:
        raise TypeError(
            f"protocol must be a ProcessProtocol or None; {type(protocol).__name__} "
            f"has no {', '.join(missing)}"
        )
    return protocol  # type: ignore[return-value]  # checked by hand just above


def check_kill_after(kill_after: object) -> float:
    """*kill_after* as a float, refusing what is negative, infinite or not a number.

    Raises:
      TypeError: not a real number.
      ValueError: negative, infinite or NaN.
    """
    if isinstance(kill_after, bool) or not isinstance(kill_after, (int, float)):
        raise TypeError(
            f"kill_after must be a number of seconds, not {type(kill_after).__name__}"
        )
    try:
        seconds = float(kill_after)
    except OverflowError:
        raise ValueError(
            "kill_after must be a finite number of seconds >= 0, not an int too "
            "large for a float"
        ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(
            f"kill_after must be a finite number of seconds >= 0, not {kill_after!r}"
        )
    return seconds


def _uid_of_name(name: str) -> int:
    """The uid of a user name (``pwd`` is POSIX-only: imported where used)."""
    import pwd

    return pwd.getpwnam(name).pw_uid


def _gid_of_name(name: str) -> int:
    """The gid of a group name (``grp`` is POSIX-only: imported where used)."""
    import grp

    return grp.getgrnam(name).gr_gid
