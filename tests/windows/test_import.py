"""``import trioproc`` on Windows imports no POSIX-only module."""

from __future__ import annotations

import subprocess
import sys

# Each of these exists only on POSIX systems; importing one on Windows fails.
_POSIX_ONLY = ("fcntl", "termios", "resource", "pwd", "grp", "tty", "pty", "posix")


def test_import_pulls_in_no_posix_only_module() -> None:
    code = (
        "import sys, trioproc, trioproc.testing, trioproc._cli\n"
        f"print(sorted(set({_POSIX_ONLY!r}) & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_public_names_are_there() -> None:
    import trioproc

    for name in trioproc.__all__:
        assert hasattr(trioproc, name), name
