"""What ``lines()`` and ``expect()`` of an `OutputStream` use besides its
buffer: their errors, the default line bound, and pattern handling."""

from __future__ import annotations

import re
from typing import Final, Union

__all__ = [
    "MAX_LINE",
    "LineTooLong",
    "Pattern",
    "UnexpectedEOF",
    "check_window",
    "compile_patterns",
    "describe",
    "earliest",
]


class LineTooLong(ValueError):
    """A line of output is longer than ``lines(max_line=...)`` allows.

    Raised instead of buffering without bound. The bytes stay buffered in
    the stream, so ``receive_some()`` can still read (or skip) them.
    """


class UnexpectedEOF(EOFError):
    """The output ended before ``expect()`` found its pattern.

    Attributes:
      output: the output received since the previous match (at most the
        search window), which this error takes out of the stream.
    """

    def __init__(self, message: str, output: bytes) -> None:
        super().__init__(message)
        self.output = output


#: lines()'s default bound on the length of one line.
MAX_LINE: Final = 1 << 20

Pattern = Union[bytes, "re.Pattern[bytes]"]


def check_window(window: object) -> None:
    """Raise unless *window* (``expect()``'s) is an int >= 1, not a bool."""
    if isinstance(window, bool) or not isinstance(window, int):
        raise TypeError("window must be an integer >= 1")
    if window < 1:
        raise ValueError("window must be an integer >= 1")


def compile_patterns(pattern: object) -> list[re.Pattern[bytes]]:
    """*pattern* (bytes, a compiled bytes pattern, or a list) as a list."""
    given = list(pattern) if isinstance(pattern, (list, tuple)) else [pattern]
    if not given:
        raise ValueError("expect() needs at least one pattern")
    patterns = []
    for item in given:
        if isinstance(item, (bytes, bytearray)):
            patterns.append(re.compile(bytes(item)))
        elif isinstance(item, re.Pattern) and isinstance(item.pattern, bytes):
            patterns.append(item)
        else:
            raise TypeError(
                f"expect() patterns are bytes or compiled bytes patterns, not {item!r}"
            )
    return patterns


def earliest(patterns: list[re.Pattern[bytes]], data: bytes) -> re.Match[bytes] | None:
    """The match of *patterns* in *data* that starts first (the earlier
    pattern on a tie), or ``None``."""
    best = None
    for pattern in patterns:
        found = pattern.search(data)
        if found is not None and (best is None or found.start() < best.start()):
            best = found
    return best


def describe(patterns: list[re.Pattern[bytes]]) -> str:
    """*patterns* as an error message names them."""
    return " or ".join(repr(pattern.pattern) for pattern in patterns)
