"""`run`: start a child, feed it, collect its output, wait for it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from ._options import StrOrBytesPath
from ._protocol import ProcessProtocol
from ._spawn import spawn

__all__ = ["run"]


class _Collector(ProcessProtocol):
    """Keeps every chunk each fd delivers, in order."""

    def __init__(self) -> None:
        self.chunks: dict[int, list[bytes]] = {}

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self.chunks.setdefault(childFD, []).append(data)


async def run(
    argv: Iterable[StrOrBytesPath],
    *,
    input: bytes | bytearray | memoryview | None = None,
    capture_output: bool = True,
    check: bool = True,
    **spawn_kwargs: Any,
) -> subprocess.CompletedProcess[bytes]:
    """Run a child to completion and return what it wrote and how it ended.

    Args:
      argv: as for `spawn`.
      input: bytes written to the child's stdin, which is then closed. With
        ``None`` the child's stdin is at end of file from the start (it does
        not share the parent's terminal).
      capture_output: collect fds 1 and 2; otherwise the child writes to the
        parent's own stdout and stderr.
      check: raise `subprocess.CalledProcessError` for a non-zero exit.
      **spawn_kwargs: any keyword argument of `spawn` but *protocol*. With
        *child_fds*, every ``"r"`` fd is collected, and ``stdout`` / ``stderr``
        of the result are those of fds 1 and 2 when they are ``"r"``.

    Returns:
      A `subprocess.CompletedProcess` with ``args``, ``returncode`` (``-signum``
      after a signal), ``stdout`` and ``stderr`` (bytes, or ``None`` when not
      collected).

    Raises:
      subprocess.CalledProcessError: with *check*, for a non-zero exit.
      TypeError, ValueError, OSError: as `spawn` raises them.

    Cancellation: the child is stopped and reaped before the cancellation
    propagates, as when any ``spawn()`` block is cancelled.
    """
    if "protocol" in spawn_kwargs:
        raise TypeError("run() collects output itself and takes no protocol")
    if input is not None and not isinstance(input, (bytes, bytearray, memoryview)):
        raise TypeError(f"input must be bytes or None, not {type(input).__name__}")
    args = list(argv) if not isinstance(argv, (str, bytes)) else argv
    child_fds = spawn_kwargs.pop("child_fds", None)
    null_fd = None
    layout: Mapping[int, int | Literal["r", "w"]]
    if spawn_kwargs.get("pty", False) is not False:
        # A terminal is fds 0, 1 and 2 at once; what it shows arrives as fd 1.
        layout = {0: "w", 1: "r"}
        if child_fds is not None:
            spawn_kwargs["child_fds"] = child_fds  # spawn() explains the clash
    else:
        if child_fds is None:
            stdin: int | Literal["w"] = "w"
            if input is None:
                # End of file from the start, without a pipe and a writer task.
                null_fd = stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            out: list[int | Literal["r", "w"]] = (
                ["r", "r"] if capture_output else [1, 2]
            )
            child_fds = {0: stdin, 1: out[0], 2: out[1]}
        layout = spawn_kwargs["child_fds"] = child_fds
    if input is not None and layout.get(0) != "w":
        raise ValueError("input needs child fd 0 to be 'w' in child_fds")
    collector = _Collector()
    try:
        async with spawn(args, collector, **spawn_kwargs) as transport:
            if null_fd is not None:
                os.close(null_fd)
                null_fd = None
            if input is not None:
                transport.write(bytes(input))
            transport.closeStdin()
    finally:
        if null_fd is not None:
            os.close(null_fd)
    returncode = transport.returncode
    assert returncode is not None
    stdout, stderr = (
        b"".join(collector.chunks.get(fd, ())) if layout.get(fd) == "r" else None
        for fd in (1, 2)
    )
    if check and returncode:
        raise subprocess.CalledProcessError(returncode, args, stdout, stderr)
    return subprocess.CompletedProcess(args, returncode, stdout, stderr)
