"""Where the cgroup-v2 hierarchy is mounted, and which cgroup a process is in.

Nothing is assumed: the v2 hierarchy is at ``/sys/fs/cgroup`` on a pure-v2
system and elsewhere (``/sys/fs/cgroup/unified``) on a hybrid one, and a
container may see only a subtree. So the mount comes from
``/proc/self/mountinfo`` (type ``cgroup2``) and the membership from the
``0::`` line of ``/proc/<pid>/cgroup``. The parsers are pure, for tests.
"""

from __future__ import annotations

import errno
import functools
from pathlib import Path
from typing import final

import attrs

__all__ = [
    "CgroupUnavailableError",
    "find_v2_root",
    "locate",
    "own_cgroup",
    "parse_membership",
    "parse_mounts",
]


class CgroupUnavailableError(OSError):
    """No cgroup-v2 cgroup can be made and entered here.

    The message names what is missing: a cgroup2 mount, the caller's
    cgroup-v2 membership, write access to a directory (root, or a subtree
    delegated to the user), or kernel support. It is an `OSError` because an
    OS refusal is what it reports (``errno`` is the refusal's, e.g.
    ``EACCES`` or ``ENOENT``), and because that is how ``spawn()`` reports
    every other reason a child cannot start, so one ``except OSError`` on
    entering covers them all. It is not a `PermissionError` (or a
    `FileNotFoundError`): those already mean that the *program* cannot be run.
    """


@final
@attrs.frozen
class _Mount:
    """One cgroup2 mount: where it is, and which cgroup is its top."""

    point: Path
    root: str


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    for escaped, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n")):
        field = field.replace(escaped, char)
    return field.replace("\\134", "\\")


def parse_mounts(mountinfo: str) -> list[_Mount]:
    """The cgroup2 mounts in the text of a ``/proc/<pid>/mountinfo``."""
    mounts = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        after = fields[fields.index("-") + 1 :]
        if after and after[0] == "cgroup2" and len(fields) > 4:
            mounts.append(_Mount(Path(_unescape(fields[4])), _unescape(fields[3])))
    return mounts


def parse_membership(cgroup_file: str) -> str:
    """The cgroup-v2 path in the text of a ``/proc/<pid>/cgroup`` (``0::`` line).

    Raises:
      CgroupUnavailableError: there is no ``0::`` line (a cgroup-v1-only
        system).
    """
    for line in cgroup_file.splitlines():
        if line.startswith("0::"):
            return line[3:]
    raise CgroupUnavailableError(
        errno.ENOENT,
        "this process is in no cgroup-v2 cgroup (/proc/self/cgroup has no "
        "'0::' line: cgroup v1 only)",
    )


def locate(path: str, mounts: list[_Mount]) -> Path:
    """The directory of the cgroup-v2 cgroup *path* under one of *mounts*.

    *path* is as ``/proc/<pid>/cgroup`` shows it (relative to the cgroup
    namespace); a mount shows the subtree from its root down.

    Raises:
      CgroupUnavailableError: no cgroup2 filesystem is mounted, or no mount
        shows *path*.
    """
    if not mounts:
        raise CgroupUnavailableError(
            errno.ENOENT,
            "no cgroup2 filesystem is mounted (/proc/self/mountinfo lists none)",
        )
    for mount in mounts:
        root = mount.root.rstrip("/")
        if path == mount.root or path.startswith(root + "/"):
            return mount.point / path[len(root) :].lstrip("/")
    shown = ", ".join(f"{m.point} (shows {m.root})" for m in mounts)
    raise CgroupUnavailableError(
        errno.ENOENT,
        f"this process's cgroup-v2 cgroup {path} is under no cgroup2 mount: {shown}",
    )


@functools.lru_cache(maxsize=1)
def _mounts() -> list[_Mount]:
    # Mounts change rarely; /proc/self/cgroup is read afresh each time.
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return parse_mounts(f.read())


def _membership(pid: int | str = "self") -> str:
    with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="surrogateescape") as f:
        return parse_membership(f.read())


def own_cgroup() -> Path:
    """The directory of the calling process's own cgroup-v2 cgroup.

    Found from ``/proc/self/cgroup`` and the cgroup2 mounts in
    ``/proc/self/mountinfo``; no path is assumed (the v2 hierarchy is at
    ``/sys/fs/cgroup`` on a pure-v2 system, elsewhere on a hybrid one).

    Raises:
      CgroupUnavailableError: no cgroup2 mount, or no cgroup-v2 membership.
    """
    return locate(_membership(), _mounts())


def find_v2_root() -> Path:
    """The mount point of the cgroup-v2 hierarchy that holds this process.

    Raises:
      CgroupUnavailableError: no cgroup2 mount, or no cgroup-v2 membership.
    """
    own = own_cgroup()
    for mount in _mounts():
        if own == mount.point or mount.point in own.parents:
            return mount.point
    raise AssertionError(f"{own} is under no mount")  # pragma: no cover
