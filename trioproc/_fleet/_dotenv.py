r"""``.env`` files, read as honcho reads them (and what it would drop, kept as
`Problem`\ s).
"""

from __future__ import annotations

import re
import shlex
from typing import Final

from ._problems import Problem

_VARIABLE: Final = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def parse_dotenv(text: str) -> dict[str, str]:
    """The variables of a ``.env`` file, as honcho reads them."""
    return read_dotenv(text)[0]


def read_dotenv(text: str) -> tuple[dict[str, str], list[Problem]]:
    """The variables of a ``.env`` file, and its lines that set none.

    honcho's reading (``shlex`` words ``NAME = value...``, ``\\n`` and
    ``\\t`` in values), plus a leading ``export``; what honcho would drop
    silently -- a line without ``=``, an unclosed quote, a name no process
    could be given -- comes back as a `Problem` with its line number.
    """
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            tokens = list(shlex.shlex(line, posix=True))
        except ValueError as exc:  # an unclosed quote
            problems.append(Problem(number, f"not read: {exc} in {line.strip()!r}"))
            continue
        if not tokens:
            continue  # blank, or a comment
        if tokens[0] == "export" and len(tokens) > 1 and tokens[1] != "=":
            tokens = tokens[1:]
        if len(tokens) < 2 or tokens[1] != "=":
            problems.append(
                Problem(number, f"not read: not a NAME=value line: {line.strip()!r}")
            )
            continue
        name = tokens[0]
        value = "".join(tokens[2:]).replace(r"\n", "\n").replace(r"\t", "\t")
        if not _VARIABLE.fullmatch(name):
            problems.append(
                Problem(number, f"not read: {name!r} is not a variable name")
            )
            continue
        if "\0" in value:
            problems.append(Problem(number, f"not read: a NUL in the value of {name}"))
            continue
        values[name] = value
    return values, problems
