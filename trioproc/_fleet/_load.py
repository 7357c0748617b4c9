"""Finding and loading a fleet file: its format by its name, its ``.env`` files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Final

import attrs

from ._config import Fleet
from ._dotenv import read_dotenv
from ._problems import FleetError, Problem
from ._procfile import parse_procfile
from ._toml import parse_toml

DEFAULT_FILES: Final = ("trioproc.toml", "Procfile")


def find_fleet_file(directory: Path) -> Path | None:
    """``trioproc.toml``, else ``Procfile``, in *directory*; ``None`` if neither."""
    for name in DEFAULT_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def load(
    path: Path, env_files: Iterable[Path] = (), *, root: Path | None = None
) -> Fleet:
    """Read and check the fleet file at *path* (and its ``.env`` files).

    Args:
      path: the Procfile or ``.toml`` file.
      env_files: ``.env`` files to read instead of the one beside *path*,
        later ones winning (honcho's ``-e``).
      root: the directory processes run in, and relative ``cwd`` values are
        relative to (honcho's ``-d``); default: *path*'s directory.

    Raises:
      FleetError: every problem found, with its line.
      OSError: a file cannot be read.
    """
    text = path.read_text(encoding="utf-8")
    root = (root if root is not None else path.parent).resolve()
    problems: list[Problem] = []
    if path.suffix == ".toml":
        fleet = parse_toml(path, root, text, problems)
    else:
        fleet = parse_procfile(path, root, text, problems)
    env: dict[str, str] = {}
    warnings: list[Problem] = []
    files = list(env_files)
    if not files and (path.parent / ".env").is_file():
        files = [path.parent / ".env"]
    for env_file in files:
        values, unread = read_dotenv(env_file.read_text(encoding="utf-8"))
        env.update(values)
        warnings += [attrs.evolve(p, path=env_file) for p in unread]
    if problems or fleet is None:
        raise FleetError(path, problems)
    return attrs.evolve(fleet, env=env, warnings=tuple(warnings))
