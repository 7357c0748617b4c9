"""The ``trioproc`` command: parse, load the fleet, run the command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from .._export import ExportError
from .._fleet import FleetError, load
from ._args import Usage, chosen_instances, env_files, fleet_path
from ._commands import check_command, exec_command, export_command
from ._parser import build_parser, command_parser, merge_before
from ._printer import Printer, complain, wants_colour
from ._run import run_fleet


def not_a_fleet_file(args: argparse.Namespace) -> str | None:
    """For ``trioproc run WORD...`` where WORD is not a file: what a honcho
    user, for whom ``run`` runs a command, should type instead."""
    words = [args.file, *args.extra] if args.file is not None else []
    if not words or (
        len(words) == 1 and Path(args.app_root or ".", words[0]).is_file()
    ):
        return None
    typed = " ".join(words)
    lines = [f"trioproc run: {words[0]!r} is not a fleet file (run takes FILE)."]
    try:
        default = fleet_path(argparse.Namespace(app_root=args.app_root, procfile=None))
        known = load(default).processes
    except (Usage, FleetError, OSError):
        known = ()
    names = [c.name for c in known]
    if all(w in names for w in words):
        lines.append(f"  to start only these processes: trioproc start {typed}")
    else:
        lines.append(
            f"  to run a command with the fleet's environment (honcho run): "
            f"trioproc exec -- {typed}"
        )
        lines.append("  to start some processes of the fleet: trioproc start NAME...")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``trioproc`` command; returns its exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    args.extra = extra
    merge_before(args)
    if getattr(args, "control", None) is not None:
        return int(args.control(args))
    try:
        if args.command == "exec":
            return exec_command(args)
        if args.command == "run" and (hint := not_a_fleet_file(args)) is not None:
            raise Usage(hint)
        if extra:
            # The usual usage error (exit 2), with the command's own usage.
            command_parser(parser, args.command).error(
                f"unrecognized arguments: {' '.join(extra)}"
            )
        duration = getattr(args, "duration", None)
        # (Written so that NaN fails it too.)
        if duration is not None and not duration >= 0:
            raise Usage(f"--for needs a number of seconds >= 0, not {duration}")
        path = fleet_path(args)
        root = Path(args.app_root) if args.app_root else None
        fleet = load(path, env_files(args), root=root)
        for warning in fleet.warnings:
            complain(f"trioproc: {warning.render(path)}")
        instances = chosen_instances(args, fleet)
        if not instances and args.command != "check":
            raise Usage("nothing to run: every process has a -c count of 0")
        if args.command == "check":
            return check_command(path, fleet)
        if args.command == "export":
            return export_command(args, path, fleet, instances)
    except FleetError as exc:
        for problem in exc.problems:
            complain(problem.render(exc.path))
        complain(f"trioproc: {len(exc.problems)} problem(s) in {exc.path}")
        return 2
    except (Usage, ExportError) as exc:
        complain(str(exc) if str(exc).startswith("trioproc") else f"trioproc: {exc}")
        return 2
    except OSError as exc:
        complain(f"trioproc: {exc}")
        return 2
    printer = Printer(
        [i.name for i in instances],
        sys.stdout,
        colour=wants_colour(sys.stdout, args.no_color),
        timestamps=args.timestamps,
    )
    return trio.run(run_fleet, fleet, printer, args.duration, instances)
