"""What can go wrong on the way to a remote program, and how ``ssh``'s own
words tell which."""

from __future__ import annotations

import errno
import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    pass


class RemoteError(OSError):
    """A child on another host (``spawn(..., host=...)``) could not be
    started: ssh could not log in, or the remote side failed before the
    program ran. The message names the host and says what failed.

    Attributes:
      host: the *host* given to ``spawn()``.
      detail: what ``ssh`` said about it (its last lines), or ``""``.
    """

    def __init__(self, code: int, message: str, host: str, detail: str = "") -> None:
        super().__init__(code, message)
        self.host = host
        self.detail = detail

    def __str__(self) -> str:
        return str(self.strerror)


class HostUnreachableError(RemoteError, ConnectionError):
    """ssh could not connect to the host: connection refused or timed out, no
    route, or a name that does not resolve."""


class AuthenticationError(RemoteError, PermissionError):
    """The host refused every way ssh had to log in (``Permission denied``)."""


class HostKeyError(RemoteError):
    """The host's key is not the one the known-hosts file holds (or it is not
    there, with strict host key checking): ssh refused to talk to it."""


# What ssh says, and what it means. The first that matches wins.
_CLASSES: Final[tuple[tuple[re.Pattern[str], type[RemoteError], int, str], ...]] = (
    (
        re.compile(r"host key verification failed|remote host identification has"),
        HostKeyError,
        errno.EPERM,
        "the host key does not match the known hosts",
    ),
    (
        re.compile(r"permission denied \(|too many authentication failures"),
        AuthenticationError,
        errno.EACCES,
        "authentication refused",
    ),
    (
        re.compile(r"connection refused"),
        HostUnreachableError,
        errno.ECONNREFUSED,
        "connection refused",
    ),
    (
        re.compile(r"could not resolve hostname|name or service not known"),
        HostUnreachableError,
        errno.EHOSTUNREACH,
        "host name does not resolve",
    ),
    (
        re.compile(r"timed out"),
        HostUnreachableError,
        errno.ETIMEDOUT,
        "connection timed out",
    ),
    (
        re.compile(r"no route to host|network is unreachable|host is down"),
        HostUnreachableError,
        errno.EHOSTUNREACH,
        "host unreachable",
    ),
)


def classify(host: str, said: str, returncode: int | None) -> RemoteError:
    """The error for an ``ssh`` that ended before the wrapper reported, from
    what it printed (*said*)."""
    lines = [line.strip() for line in said.splitlines() if line.strip()]
    detail = "; ".join(lines[-3:])
    lowered = said.lower()
    for pattern, kind, code, what in _CLASSES:
        if pattern.search(lowered):
            return kind(code, f"{host}: {what} ({detail})", host, detail)
    how = "" if returncode is None else f" with status {returncode}"
    return RemoteError(
        errno.EIO,
        f"{host}: ssh ended{how} before the remote program started"
        + (f" ({detail})" if detail else ""),
        host,
        detail,
    )
