"""``host=`` and ``ssh_options=``, checked at the call."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, final

import attrs

from .._options import SpawnOptions

if TYPE_CHECKING:
    pass


@final
@attrs.frozen
class RemoteOptions:
    """The checked remote part of a ``spawn()`` call.

    Attributes:
      host: the destination, as ``ssh`` takes it (``user@host``, an alias
        of the ssh configuration, ``ssh://user@host:port``).
      ssh_args: the ``ssh`` options that ``ssh_options=`` stands for.
    """

    host: str
    ssh_args: tuple[str, ...]


def check_remote(
    host: object,
    ssh_options: object,
    options: SpawnOptions,
    *,
    child_fds_given: bool,
) -> RemoteOptions:
    """Check *host* and *ssh_options*, and the rest of *options* against what
    a remote child can do.

    Raises:
      TypeError: *host* or *ssh_options* has the wrong type.
      ValueError: a bad host or option, or an argument a remote child cannot
        honour (*child_fds* beyond 0-2, *uid*/*gid*, *cgroup*, *executable*).
    """
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    if not host or host.startswith("-") or any(c.isspace() for c in host):
        raise ValueError(f"host must be an ssh destination, not {host!r}")
    if ssh_options is None:
        ssh_args: tuple[str, ...] = ()
    elif isinstance(ssh_options, (str, os.PathLike)):
        ssh_args = ("-F", os.fsdecode(ssh_options))
    elif isinstance(ssh_options, Sequence) and not isinstance(ssh_options, bytes):
        args: list[str] = []
        for option in ssh_options:
            if not isinstance(option, str):
                raise TypeError(
                    f"ssh_options must be 'Key=Value' strings, not {option!r}"
                )
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*[ =]\S.*", option) or (
                "\n" in option or "\0" in option
            ):
                raise ValueError(
                    f"ssh_options entries must read 'Key=Value' (as ssh -o "
                    f"takes them), not {option!r}"
                )
            args += ("-o", option)
        ssh_args = tuple(args)
    else:
        raise TypeError(
            "ssh_options must be a list of 'Key=Value' strings or the path of "
            f"an ssh_config file, not {type(ssh_options).__name__}"
        )
    refused = [
        name
        for name, given in (
            ("uid", options.uid is not None),
            ("gid", options.gid is not None),
            ("cgroup", options.cgroup),
            ("executable", options.executable is not None),
        )
        if given
    ]
    if refused:
        raise ValueError(
            f"{', '.join(refused)} cannot be used with host=: a remote child runs "
            "as the ssh user, in the remote login's own session"
        )
    fds = options.child_fds
    if options.pty is None and child_fds_given:
        stdin = fds.get(0, "w")
        if not set(fds) <= {0, 1, 2} or not (
            stdin == "w" or (isinstance(stdin, int) and not isinstance(stdin, bool))
        ):
            raise ValueError(
                "a remote child (host=) has only fds 0, 1 and 2, carried by ssh; "
                f"got child_fds={dict(fds)!r}"
            )
        if fds.get(1) != "r" and fds.get(2) != "r":
            raise ValueError(
                "a remote child (host=) needs fd 1 or fd 2 to be 'r': the remote "
                "side reports the program's start there"
            )
    if options.env is not None and any(b"=" in arg for arg in options.argv[:1]):
        raise ValueError("with env= and host=, argv[0] cannot contain '='")
    return RemoteOptions(host, ssh_args)


def host_name(destination: str) -> str:
    """The host name in an ssh destination: ``user@host``, ``host``, or
    ``ssh://user@host:port`` (``[v6]`` brackets removed)."""
    rest = destination.removeprefix("ssh://")
    rest = rest.rpartition("@")[2]
    if rest.startswith("["):
        return rest[1:].partition("]")[0]
    if destination.startswith("ssh://"):
        rest = rest.partition(":")[0]
    return rest
