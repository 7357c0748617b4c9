"""Let Trio's Windows IOCP manager start under Wine (test harness, not product).

Wine 8 answers ``WSAIoctl(SIO_BASE_HANDLE)`` but not ``SIO_BSP_HANDLE_SELECT`` /
``SIO_BSP_HANDLE_POLL`` (WSAEOPNOTSUPP, 10045), which Trio's IOCP manager asks for at
start-up only to check that no layered service provider hooks ``select()``. Wine has no
such providers, so answering with ``SIO_BASE_HANDLE`` is faithful. Installed by the
conftest beside this file, before any ``trio.run()``.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any


def running_under_wine() -> bool:
    """Whether this Windows process runs under Wine (ntdll exports wine_get_version)."""
    if sys.platform != "win32":
        return False
    try:
        return hasattr(ctypes.WinDLL("ntdll"), "wine_get_version")
    except (OSError, AttributeError):
        return False


def install() -> bool:
    """Patch Trio's socket ioctl lookup under Wine; return whether it was needed."""
    if not running_under_wine():
        return False
    from trio._core import _io_windows as iow

    real = iow._get_underlying_socket
    base = iow.WSAIoctls.SIO_BASE_HANDLE

    def patched(sock: Any, *, which: Any = base) -> Any:
        try:
            return real(sock, which=which)
        except OSError as exc:
            if getattr(exc, "winerror", None) == 10045 and which != base:
                return real(sock, which=base)
            raise

    iow._get_underlying_socket = patched
    return True
