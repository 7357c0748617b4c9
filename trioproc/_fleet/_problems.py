"""What is wrong with a fleet file: `Problem`, `FleetError`, and "did you mean"."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import final

import attrs


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a misspelled *word*,
    else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@final
@attrs.frozen
class Problem:
    """One thing wrong with a fleet file, and the line it is on (if known).

    *path* names the file when it is not the fleet file itself (a ``.env``).
    """

    line: int | None
    message: str
    path: Path | None = None

    def render(self, path: Path | str) -> str:
        path = self.path if self.path is not None else path
        where = f"{path}:{self.line}" if self.line is not None else str(path)
        return f"{where}: {self.message}"


def _in_line_order(problems: Iterable[Problem]) -> list[Problem]:
    """*problems* file by file, each file's by line (those without a line
    first), as an editor would want to visit them."""
    return sorted(
        problems,
        key=lambda p: (
            p.path is not None,
            str(p.path or ""),
            p.line is not None,
            p.line or 0,
        ),
    )


class FleetError(ValueError):
    """A fleet file has problems; ``problems`` lists them all."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = _in_line_order(problems)
        super().__init__("\n".join(p.render(path) for p in self.problems))
