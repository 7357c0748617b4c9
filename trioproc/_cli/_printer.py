"""The run's output: each process's lines prefixed with its name, and what
becomes of them when the output goes away.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Final, TextIO, final

from .._supervision._spec import SupervisorEvent

_COLOURS = ("36", "33", "32", "35", "34", "31", "96", "93", "92", "95", "94", "91")
SYSTEM = "trioproc"


@final
class Printer:
    """Writes prefixed lines: ``[time ]name | text``, coloured on a terminal.

    A write that fails (the reader of a pipe went away, the terminal hung
    up, the disk is full) does not raise into the supervisor, whose callbacks
    call this: the error is kept in `lost`, nothing more is written, and
    `on_lost` is called once, so that the fleet can be stopped.
    """

    def __init__(
        self, names: Sequence[str], out: TextIO, *, colour: bool, timestamps: bool
    ) -> None:
        self.out = out
        self.timestamps = timestamps
        self.width = max([len(SYSTEM), *(len(n) for n in names)])
        self.colours = (
            {name: _COLOURS[i % len(_COLOURS)] for i, name in enumerate(names)}
            if colour
            else {}
        )
        if colour:
            self.colours[SYSTEM] = "1"
        self.lost: OSError | None = None
        self.on_lost: Callable[[], None] = _nothing
        # Processes without a ready check: their supervisor's "ready" (being
        # running) is already said by "started".
        self.unchecked: set[str] = set()
        self.on_event: Callable[[SupervisorEvent], str] = _as_is

    def write(self, name: str, text: str, mark: str = "|") -> None:
        if self.lost is not None:
            return
        prefix = f"{name:<{self.width}} {mark}"
        if self.timestamps:
            prefix = time.strftime("%H:%M:%S ") + prefix
        colour = self.colours.get(name)
        if colour is not None:
            prefix = f"\x1b[{colour}m{prefix}\x1b[0m"
        try:
            self.out.write(f"{prefix} {text}\n")
            self.out.flush()
        except OSError as exc:
            self._lose(exc)

    def output(self, name: str, fd: int, line: bytes) -> None:
        self.write(name, line.decode(errors="replace"), "|" if fd == 1 else "!")

    def event(self, event: SupervisorEvent) -> None:
        if event.kind == "ready" and event.name in self.unchecked:
            return
        self.write(SYSTEM, self.on_event(event))

    def _lose(self, error: OSError) -> None:
        self.lost = error
        # What failed stays in the stream's buffer, and the interpreter
        # flushes it again at exit ("Exception ignored ... BrokenPipeError"):
        # let that flush, and any other write to the fd, go to /dev/null.
        with contextlib.suppress(OSError, ValueError):
            fd = self.out.fileno()
            null = os.open(os.devnull, os.O_WRONLY)  # not inherited (PEP 446)
            os.dup2(null, fd)
            os.close(null)
        self.on_lost()

    def status(self, status: int) -> int:
        """The exit status of a run that ended with *status*, given the fate
        of the output: 141 (128 + SIGPIPE) for a closed pipe after a clean
        stop; 1, reported on stderr, for a write error other than a closed
        pipe or a hung-up terminal's EIO."""
        if self.lost is None:
            return status
        if self.lost.errno not in (errno.EPIPE, errno.EIO):
            complain(f"trioproc: cannot write the output: {self.lost}")
            return 1
        if self.lost.errno == errno.EPIPE and status == 0:
            return 128 + _SIGPIPE
        return status


def _nothing() -> None:
    """What a `Printer` calls when its output is lost, until told otherwise."""


def _as_is(event: SupervisorEvent) -> str:
    """How a `Printer` words an event, until told otherwise."""
    return event.message


#: What a shell reports for ``cat`` on a closed pipe is 128 + SIGPIPE (13);
#: Windows has no SIGPIPE, and the same status tells the same story there.
_SIGPIPE: Final = getattr(signal, "SIGPIPE", 13)


def complain(message: str) -> None:
    """Print *message* on stderr, unless stderr is gone too."""
    with contextlib.suppress(OSError):
        print(message, file=sys.stderr)


def wants_colour(out: TextIO, disabled: bool) -> bool:
    """Whether to colour what goes to *out*: on a terminal, unless disabled
    (``--no-color``, ``NO_COLOR``); on Windows, once its console is set to
    interpret the colour sequences."""
    if disabled or os.environ.get("NO_COLOR") or not out.isatty():
        return False
    if sys.platform == "win32":  # pragma: no cover - Windows only
        from .._os._windows import enable_console_colours

        return enable_console_colours(out.fileno())
    return True
