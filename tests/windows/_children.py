"""Child programs for the Windows tests, and a check that a process is gone."""

from __future__ import annotations

import ctypes
from ctypes import wintypes

import trio

from tests.helpers import CAT, EXIT, PY, SLEEP, python

__all__ = [
    "CAT",
    "EXIT",
    "PY",
    "SLEEP",
    "STARTS_GRANDCHILD",
    "alive",
    "python",
    "wait_gone",
]

_SYNCHRONIZE = 0x00100000
_QUERY_LIMITED_INFORMATION = 0x1000
_STILL_ACTIVE = 259


#: Starts a grandchild that sleeps, prints its pid, then sleeps itself.
STARTS_GRANDCHILD = python(
    "import subprocess, sys, time\n"
    "sleeper = [sys.executable, '-c', 'import time; time.sleep(60)']\n"
    "grandchild = subprocess.Popen(sleeper)\n"
    "print(grandchild.pid, flush=True)\n"
    "time.sleep(60)\n"
)


async def wait_gone(*pids: int) -> None:
    """Wait until none of *pids* runs (polling: a pid has nothing to wait on)."""
    with trio.fail_after(10):
        while any(alive(pid) for pid in pids):  # noqa: ASYNC110 - nothing to await
            await trio.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether process *pid* still runs (its exit code is STILL_ACTIVE)."""
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenProcess.restype = wintypes.HANDLE
    handle = kernel32.OpenProcess(_QUERY_LIMITED_INFORMATION | _SYNCHRONIZE, False, pid)
    if not handle:
        return False  # no such process any more
    try:
        code = wintypes.DWORD()
        assert kernel32.GetExitCodeProcess(wintypes.HANDLE(handle), ctypes.byref(code))
        return code.value == _STILL_ACTIVE
    finally:
        kernel32.CloseHandle(wintypes.HANDLE(handle))
