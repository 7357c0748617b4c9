"""Procfiles, read as foreman and honcho read them: every process ``transient``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from .._supervision._spec import ChildSpec
from ._config import Fleet, ProcessConfig, shell_argv
from ._problems import Problem

# honcho's own pattern for a Procfile line (foreman's is the same).
_PROCFILE_LINE: Final = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def parse_procfile(
    path: Path, root: Path, text: str, problems: list[Problem]
) -> Fleet | None:
    processes: list[ProcessConfig] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _PROCFILE_LINE.match(line)
        if match is None:
            problems.append(
                Problem(number, f"not a 'name: command' line: {line.strip()!r}")
            )
            continue
        name, command = match.group(1), match.group(2).strip()
        if "\0" in command:
            problems.append(Problem(number, f"process {name!r}: a NUL in its command"))
            continue
        if name in seen:
            problems.append(
                Problem(
                    number,
                    f"process {name!r} is defined again (first on line {seen[name]})",
                )
            )
            continue
        seen[name] = number
        processes.append(
            ProcessConfig(
                name,
                ChildSpec(
                    name,
                    argv=shell_argv(command),
                    restart="transient",
                    cwd=str(root),
                ),
                number,
            )
        )
    if not processes and not problems:
        problems.append(Problem(None, "no processes defined"))
    return Fleet(path, tuple(processes))
