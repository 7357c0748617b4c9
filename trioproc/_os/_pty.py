"""The pseudo-terminal of a ``pty=True`` child: opening one of a given
size, setting its window size, and reading its end-of-file character."""

from __future__ import annotations

import fcntl
import os
import struct
import termios

__all__ = ["open_pty", "set_window_size", "terminal_eof"]


def open_pty(size: tuple[int, int]) -> tuple[int, int]:
    """A new pseudo-terminal of *size* (rows, cols): its master, non-blocking,
    and its slave, both close-on-exec (PEP 446)."""
    master, slave = os.openpty()
    try:
        set_window_size(slave, *size)
        os.set_blocking(master, False)
    except BaseException:  # pragma: no cover - ioctl on a new terminal
        os.close(master)
        os.close(slave)
        raise
    return master, slave


def set_window_size(fd: int, rows: int, cols: int) -> None:
    """Set the window size of the terminal *fd* (the child gets SIGWINCH)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def terminal_eof(master: int) -> bytes:
    """The terminal's end-of-file character (VEOF, ^D unless changed)."""
    try:
        return bytes(termios.tcgetattr(master)[6][termios.VEOF])
    except (termios.error, OSError):  # pragma: no cover - not a terminal
        return b"\x04"
