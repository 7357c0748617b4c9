"""Run Python code, or the ``trioproc`` command, as if on macOS.

``python tests/play_macos.py -c CODE [ARG...]`` or
``python tests/play_macos.py -m trioproc ARG...``. Trio is imported first
(its own platform choice is this machine's), then ``sys.platform`` says
``"darwin"``, the ``os`` and ``socket`` names macOS lacks are removed, and
importing a module of the Linux backend fails. What is left is what macOS
and the BSDs run: the portable backend with the POSIX hooks, and everything
above it. The tests in ``test_macos.py`` use it; no macOS machine is
available here.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import runpy
import socket
import subprocess  # noqa: F401 - imported before sys.platform changes
import sys
from collections.abc import Sequence

import trio  # noqa: F401 - imported before sys.platform changes

#: The modules only the Linux backend imports.
LINUX_ONLY = (
    "trioproc._os._linux",
    "trioproc._os._launch",
    "trioproc._os._posix_spawn",
    "trioproc._os._trampoline",
    "trioproc._os._cgroup",
    "trioproc._os._reader",
    "trioproc._os._writer",
    "trioproc._os._pty",
    "trioproc._os._pidfds",
)
# Names of os and socket that Linux has and macOS does not.
_OS_NAMES = (
    "pidfd_open",
    "P_PIDFD",
    "pipe2",
    "splice",
    "memfd_create",
    "eventfd",
    "copy_file_range",
    "posix_fallocate",
    "getresuid",
    "getresgid",
    "setresuid",
    "setresgid",
    "sched_getaffinity",
    "sched_setaffinity",
)
_SOCKET_NAMES = (
    "SOCK_CLOEXEC",
    "SOCK_NONBLOCK",
    "SO_PEERCRED",
    "SO_PASSCRED",
    "SCM_CREDENTIALS",
    "MSG_NOSIGNAL",
)


class _LinuxOnly(importlib.abc.MetaPathFinder):
    def find_spec(
        self, name: str, path: Sequence[str] | None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name in LINUX_ONLY:
            raise ImportError(f"{name} is Linux-only (this process plays macOS)")
        return None


def play_macos() -> None:
    """From now on, this process looks like macOS to trioproc."""
    sys.meta_path.insert(0, _LinuxOnly())
    sys.platform = "darwin"
    for module, names in ((os, _OS_NAMES), (socket, _SOCKET_NAMES)):
        for name in names:
            if hasattr(module, name):
                delattr(module, name)


if __name__ == "__main__":
    play_macos()
    how, what, *rest = sys.argv[1:]
    sys.argv = [what, *rest]
    if how == "-c":
        exec(compile(what, "<played on macOS>", "exec"), {"__name__": "__main__"})
    else:
        runpy.run_module(what, run_name="__main__", alter_sys=True)
