"""What the command line names: the fleet file, its ``.env`` files, the
instances (``-c``, ``-p``), and `Usage` for a bad one.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from .._fleet import (
    DEFAULT_FILES,
    DEFAULT_PORT,
    Fleet,
    Instance,
    expand,
    find_fleet_file,
)
from .._options import is_port


class Usage(Exception):
    """A bad command line, found after parsing it: exit status 2."""


def fleet_path(args: argparse.Namespace) -> Path:
    """The fleet file: ``-f`` or FILE (relative to ``-d``), else
    ``trioproc.toml`` or ``Procfile`` in ``-d`` (default: here)."""
    root = Path(args.app_root or ".")
    given = getattr(args, "file", None)
    if given is not None and args.procfile is not None:
        raise Usage(f"give the fleet file once: {given!r} or -f {args.procfile!r}")
    name: str | None = args.procfile if args.procfile is not None else given
    if name is not None:
        return root / name
    found = find_fleet_file(root)
    if found is None:
        where = root.resolve()
        raise Usage(f"no {' or '.join(DEFAULT_FILES)} in {where}")
    return found


def env_files(args: argparse.Namespace) -> list[Path]:
    """The ``-e`` files (repeated, or comma-separated as honcho takes them),
    relative to ``-d``."""
    root = Path(args.app_root or ".")
    return [root / name.strip() for given in args.env for name in given.split(",")]


def _concurrency(specs: Sequence[str]) -> dict[str, int]:
    """``-c web=2,worker=3`` (repeatable) as counts."""
    counts: dict[str, int] = {}
    for spec in specs:
        for item in spec.split(","):
            name, equals, number = item.partition("=")
            try:
                counts[name.strip()] = int(number)
            except ValueError:
                raise Usage(
                    f"-c {spec}: each item is NAME=COUNT, like web=2; not {item!r}"
                ) from None
            if not equals or not name.strip():
                raise Usage(f"-c {spec}: each item is NAME=COUNT, like web=2")
    return counts


def _base_port(args: argparse.Namespace, fleet: Fleet) -> int:
    """honcho's base port: ``-p``, else ``PORT`` from the ``.env`` files,
    else ``$PORT``, else 5000."""
    for given, source in (
        (args.port, "-p"),
        (fleet.env.get("PORT"), "PORT in .env"),
        (os.environ.get("PORT"), "$PORT"),
    ):
        if given is None:
            continue
        try:
            port = int(given)
        except ValueError:
            raise Usage(f"{source}: not a port number: {given!r}") from None
        if not is_port(port):
            raise Usage(f"{source}: a port is from 1 to 65535, not {port}")
        return port
    return DEFAULT_PORT


def chosen_instances(args: argparse.Namespace, fleet: Fleet) -> tuple[Instance, ...]:
    try:
        return expand(
            fleet,
            getattr(args, "processes", ()),
            _concurrency(args.concurrency),
            _base_port(args, fleet),
        )
    except ValueError as exc:
        raise Usage(str(exc)) from None
