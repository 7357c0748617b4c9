"""The ``trioproc`` command line: its commands, options and help texts."""

from __future__ import annotations

import argparse

from .. import __version__, _control
from .._export import EXPORTERS

_STATUS = """\
exit status: 0 after a clean stop (--for, a signal, or every process done
with exit code 0); 1 if the supervisor gave up, a process failed to start, a
finished process had failed, or the output could not be written; 2 for a bad
command line or fleet file; 141 (128+SIGPIPE) when the output pipe was
closed.
"""

_RUN_EPILOG = (
    """\
signals: Ctrl-C (SIGINT), SIGTERM and SIGHUP (a closed terminal, a lost ssh
session; not under nohup) stop every process gracefully, in reverse order
unless the file's shutdown says parallel; a second one kills them at once. A
closed output pipe (trioproc run | head) stops them the same way, quietly.

processes: in a Procfile, a process that exits 0 is done (not restarted) and
one that fails is restarted with backoff (restart = "transient"); once every
process is done the run ends. Each instance gets PORT (base -p, or $PORT, or
5000; +100 per process type, +1 per -c instance), PYTHONUNBUFFERED=1 unless
set, and TRIOPROC_PROCESS_NAME.

"""
    + _STATUS
)

_MAIN_EPILOG = (
    """\
honcho and foreman users: honcho start [PROCESS...] is trioproc start
[PROCESS...]; honcho run CMD is trioproc exec -- CMD; honcho check and export
are trioproc check and export. -f, -e, -d, -p and -c mean what they mean to
honcho. See trioproc COMMAND --help.

"""
    + _STATUS
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trioproc",
        description="Run a fleet of processes from a Procfile or trioproc.toml, "
        "restarting them as told and stopping them cleanly.",
        epilog=_MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"trioproc {__version__}"
    )
    # -d, -e and -f go after the command or, where honcho has them, before
    # it (`merge_before` combines the two).
    _add_where(parser, before=True)
    _add_procfile(parser, before=True)
    where = argparse.ArgumentParser(add_help=False)
    _add_where(where, before=False)
    fleet = argparse.ArgumentParser(add_help=False, parents=[where])
    _add_procfile(fleet, before=False)
    fleet.add_argument(
        "-p",
        "--port",
        metavar="N",
        help="the base PORT (default: PORT from .env, else $PORT, else 5000)",
    )
    fleet.add_argument(
        "-c",
        "--concurrency",
        action="append",
        default=[],
        metavar="NAME=N,...",
        help="how many instances of a process to run (web=2 runs web.1 and "
        "web.2; 0 runs none); repeatable",
    )
    running = argparse.ArgumentParser(add_help=False)
    running.add_argument(
        "--for",
        dest="duration",
        type=float,
        metavar="SECONDS",
        help="stop cleanly after SECONDS (default: run until Ctrl-C, or until "
        "every process is done)",
    )
    running.add_argument(
        "-t", "--timestamps", action="store_true", help="prefix lines with the time"
    )
    running.add_argument(
        "--no-color",
        "--no-colour",
        dest="no_color",
        action="store_true",
        help="no colours, even on a terminal (also: NO_COLOR=1)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        parents=[fleet, running],
        help="start the fleet in FILE and supervise it",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "file", nargs="?", help="trioproc.toml or Procfile (default: look in .)"
    )
    start = commands.add_parser(
        "start",
        parents=[fleet, running],
        help="start the fleet, or only PROCESS... (and what they depend on)",
        description="honcho's and foreman's start: run the fleet file (-f, "
        "default: trioproc.toml, then Procfile) and supervise it.",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    start.add_argument(
        "processes",
        nargs="*",
        metavar="PROCESS",
        help="the processes to start (default: all of them)",
    )
    check = commands.add_parser(
        "check",
        parents=[fleet],
        help="check a fleet file and list its problems",
        description="List every problem in the fleet file with its line "
        "(exit 2 if there is one), and warn about programs not found.",
    )
    check.add_argument(
        "file", nargs="?", help="trioproc.toml or Procfile (default: look in .)"
    )
    exporting = commands.add_parser(
        "export",
        parents=[fleet],
        help="write the fleet out as systemd units or a supervisord file",
        description="Write one systemd .service per process instance and a "
        ".target that wants them all (systemd), or one [program:] section per "
        "instance and a [group:] (supervisord), from the same fleet file.",
    )
    exporting.add_argument("format", choices=sorted(EXPORTERS), metavar="FORMAT")
    exporting.add_argument("location", metavar="DIR", help="the directory to write")
    exporting.add_argument(
        "-a",
        "--app",
        help="the app's name, the units' prefix (default: the app root's name)",
    )
    exporting.add_argument("-u", "--user", help="the user the processes run as")
    exporting.add_argument(
        "-l",
        "--log",
        metavar="DIR",
        help="supervisord: the log directory (default: /var/log/APP)",
    )
    execute = commands.add_parser(
        "exec",
        parents=[where],
        help="run one command with the fleet's environment (honcho run)",
        description="Run CMD with this environment plus the .env file (or the "
        "-e files), as honcho run does; its exit status is trioproc's.",
    )
    execute.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    _control.add_commands(commands)
    return parser


def command_parser(
    parser: argparse.ArgumentParser, name: str
) -> argparse.ArgumentParser:
    """The parser of *parser*'s command *name* (*parser* itself if none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser | None = action.choices.get(name)
            return parser if found is None else found
    return parser


def merge_before(args: argparse.Namespace) -> None:
    """Fold the -d, -e and -f given before the command into the command's:
    what the command was given wins, and -e files add up (those given
    before the command first)."""
    if getattr(args, "app_root", None) is None:
        args.app_root = args.before_app_root
    args.env = [*args.before_env, *getattr(args, "env", [])]
    if getattr(args, "procfile", None) is None:
        args.procfile = args.before_procfile


def _add_where(parser: argparse.ArgumentParser, *, before: bool) -> None:
    """-d and -e, on the main parser (*before* the command) or a command's."""
    prefix = "before_" if before else ""
    parser.add_argument(
        "-d",
        "--app-root",
        dest=f"{prefix}app_root",
        metavar="DIR",
        help="the app's directory: where the fleet file and .env are looked "
        "for, -f and -e are relative to, and processes run (default: the "
        "fleet file's directory)",
    )
    parser.add_argument(
        "-e",
        "--env",
        dest=f"{prefix}env",
        action="append",
        default=[],
        metavar="FILE",
        help="a .env file to read instead of the one beside the fleet file; "
        "repeatable, or comma-separated (honcho's -e a.env,b.env); later "
        "files win",
    )


def _add_procfile(parser: argparse.ArgumentParser, *, before: bool) -> None:
    """-f, on the main parser (*before* the command) or a command's."""
    parser.add_argument(
        "-f",
        "--procfile",
        dest="before_procfile" if before else "procfile",
        metavar="FILE",
        help="the Procfile or trioproc.toml (default: trioproc.toml, then "
        "Procfile, in the app root)",
    )
