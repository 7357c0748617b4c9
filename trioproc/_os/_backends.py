"""Which backend starts children here: the one place that decides.

``TRIOPROC_BACKEND`` names it (``"linux"`` or ``"portable"``); unset, it is
the Linux backend (`trioproc._os._linux`) on Linux and the portable one
(`trioproc._os._portable`) everywhere else -- with the POSIX hooks on macOS
and the BSDs, with the Windows hooks (`trioproc._os._windows`) on Windows.
Each backend's modules are imported the first time it is chosen, so nothing
Linux-only is imported on macOS and nothing Windows-only on POSIX.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import TYPE_CHECKING, Final

from ._cgroupfs import CgroupUnavailableError

if TYPE_CHECKING:
    from .._options import SpawnOptions
    from ._linux import LinuxBackend
    from ._platform import PlatformHooks
    from ._portable import PortableBackend

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "check_options",
    "current_backend",
    "unavailable",
]

#: The environment variable that picks the backend.
ENV_VAR: Final = "TRIOPROC_BACKEND"
#: The backends it may name.
BACKENDS: Final = ("linux", "portable")

_made: dict[str, LinuxBackend | PortableBackend] = {}


def default_backend_name() -> str:
    """The backend of this platform when ``TRIOPROC_BACKEND`` is unset."""
    return "linux" if sys.platform.startswith("linux") else "portable"


def current_backend() -> LinuxBackend | PortableBackend:
    """The backend a child started now uses (``TRIOPROC_BACKEND``, else this
    platform's default).

    Raises:
      ValueError: ``TRIOPROC_BACKEND`` names no backend, or ``linux`` off
        Linux.
    """
    name = os.environ.get(ENV_VAR) or default_backend_name()
    backend = _made.get(name)
    if backend is None:
        backend = _made[name] = _make(name)
    return backend


def check_options(options: SpawnOptions) -> None:
    """Refuse, at ``spawn()``, what the current backend cannot honour.

    Raises:
      ValueError: an option the backend cannot honour, or a bad
        ``TRIOPROC_BACKEND``.
    """
    current_backend().refuse(options)


def unavailable() -> CgroupUnavailableError | None:
    """Why a child started now cannot get a cgroup of its own, or ``None`` if
    it can: for callers that use cgroups wherever they exist (the Supervisor,
    the ``trioproc`` command). See `trioproc._os._cgroup.unavailable`.

    Raises:
      ValueError: a bad ``TRIOPROC_BACKEND``.
    """
    if current_backend().name != "linux":
        return CgroupUnavailableError(
            errno.EOPNOTSUPP, "the portable backend has no cgroups"
        )
    from ._cgroup import unavailable

    return unavailable()


def _make(name: str) -> LinuxBackend | PortableBackend:
    if name == "linux":
        if not sys.platform.startswith("linux"):
            raise ValueError(
                f"{ENV_VAR}=linux: the linux backend runs on Linux only, not on "
                f"{sys.platform}; use {ENV_VAR}=portable or leave it unset"
            )
        from ._linux import LINUX

        return LINUX
    if name == "portable":
        from ._portable import PortableBackend

        return PortableBackend(
            _windows_hooks() if sys.platform == "win32" else _posix()
        )
    raise ValueError(
        f"{ENV_VAR}={name!r} names no trioproc backend: use one of "
        f"{', '.join(repr(b) for b in BACKENDS)} (or leave it unset for this "
        f"platform's default, {default_backend_name()!r})"
    )


def _posix() -> PlatformHooks:
    from ._platform import POSIX

    return POSIX


def _windows_hooks() -> PlatformHooks:  # pragma: no cover - Windows only
    # The hook point of the Windows backend: `trioproc._os._windows` (Job
    # Objects, CREATE_NEW_PROCESS_GROUP, CTRL_BREAK_EVENT, signal mapping)
    # provides ``HOOKS``, a `trioproc._os._platform.PlatformHooks`.
    try:
        from . import _windows
    except ImportError as exc:
        raise ImportError(
            "trioproc's Windows hooks (trioproc._os._windows) are missing: "
            "children cannot be started on Windows"
        ) from exc
    hooks: PlatformHooks = _windows.HOOKS  # type: ignore[attr-defined,unused-ignore]
    return hooks
