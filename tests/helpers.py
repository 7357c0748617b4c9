"""Test helpers: small child programs behind names, and a recording protocol."""

from __future__ import annotations

import os
import sys
import time

from trioproc.testing import RecordingProtocol

PY = sys.executable


def python(code: str) -> list[str]:
    """argv of a Python child running *code*, quickly (no site, isolated)."""
    return [PY, "-I", "-S", "-c", code]


#: Copies stdin to stdout until end of file.
CAT = python("import os\nwhile data := os.read(0, 65536):\n    os.write(1, data)\n")


def EXIT(code: int) -> list[str]:
    """Exits with *code* at once."""
    return python(f"import os; os._exit({code})")


def SLEEP(seconds: float) -> list[str]:
    """Sleeps, then exits 0."""
    return python(f"import time; time.sleep({seconds})")


#: Prints "ready", then ignores SIGTERM and sleeps for a long time.
IGNORES_TERM = python(
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(100)\n"
)


Recorder = RecordingProtocol


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def children() -> set[int]:
    """Pids whose parent is this process (running or zombie)."""
    me = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[1].decode() == me:
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    """Whether *pid* exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != b"Z"


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    """Whether *pid* is gone (or a zombie) within *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def marked(mark: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """*env* (default: ours) with ``TRIOPROC_TEST_MARK=mark``, which every
    descendant inherits, so `marked_alive` finds them wherever they went."""
    return {**(os.environ if env is None else env), "TRIOPROC_TEST_MARK": mark}


def marked_alive(mark: str) -> list[int]:
    """Live (non-zombie) processes whose environment holds *mark*, whoever
    their parent is now (reparented grandchildren included)."""
    needle = f"TRIOPROC_TEST_MARK={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if needle not in environ.read().split(b"\0"):
                    continue
        except OSError:
            continue
        if alive(int(entry)):
            found.append(int(entry))
    return found


def kill_marked(mark: str) -> None:
    """Clean up after a test that failed: SIGKILL every process with *mark*."""
    import contextlib
    import signal

    for pid in marked_alive(mark):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
