"""``trioproc check``, ``export`` and ``exec``."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .._export import export
from .._fleet import Fleet, Instance, program_warnings, read_dotenv
from ._args import Usage, env_files
from ._printer import complain


def check_command(path: Path, fleet: Fleet) -> int:
    for warning in program_warnings(fleet):
        complain(f"trioproc: {warning.render(path)}")
    names = ", ".join(p.name for p in fleet.processes)
    count = len(fleet.processes)
    print(f"{path}: ok: {count} process{'es' if count != 1 else ''} ({names})")
    return 0


def export_command(
    args: argparse.Namespace, path: Path, fleet: Fleet, instances: Sequence[Instance]
) -> int:
    root = Path(args.app_root) if args.app_root else path.parent
    app = args.app or root.resolve().name or "app"
    written, notes = export(
        args.format,
        fleet,
        instances,
        Path(args.location),
        app=app,
        user=args.user,
        log=args.log,
    )
    for note in notes:
        complain(f"trioproc: {note}")
    for file in written:
        print(f"wrote {file}")
    return 0


def exec_command(args: argparse.Namespace) -> int:
    """``trioproc exec -- CMD...``: honcho's ``run``. The command runs with
    this environment plus the ``.env`` files, on this terminal; Ctrl-C is
    the command's to handle (trioproc ignores it while waiting), and its
    exit status is trioproc's (128 + N for signal N)."""
    command = list(args.argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise Usage("exec needs a command: trioproc exec -- CMD [ARG...]")
    files = env_files(args) or [
        p for p in [Path(args.app_root or ".", ".env")] if p.is_file()
    ]
    env = dict(os.environ)
    for path in files:
        values, unread = read_dotenv(path.read_text(encoding="utf-8"))
        for problem in unread:
            complain(f"trioproc: {problem.render(path)}")
        env.update(values)
    try:
        child = subprocess.Popen(command, env=env)
    except OSError as exc:
        complain(f"trioproc exec: {exc}")
        return 127 if isinstance(exc, FileNotFoundError) else 126
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    return 128 - code if code < 0 else code
