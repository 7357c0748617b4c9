"""``trioproc ctl`` and ``trioproc status``: the client side of the control
channel, and its commands on the ``trioproc`` command line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .._fleet import DEFAULT_FILES, find_fleet_file
from ._protocol import (
    CONNECT_TIMEOUT,
    MAX_REPLY,
    REPLY_TIMEOUT,
    ControlError,
    encode,
    socket_path,
)
from ._socket import check_owner, connect, open_directory


def _requests(
    path: Path, requests: Sequence[dict[str, Any]], timeout: float | None
) -> Iterator[dict[str, Any]]:
    """Send *requests* to the fleet at *path*; yield every reply message."""
    try:
        directory = open_directory(path)
    except OSError as exc:
        raise ControlError(f"cannot open {path.parent}: {exc}") from exc
    try:
        if check_owner(path, directory) is None:
            raise ControlError(f"no trioproc run is running here (no {path})")
        try:
            sock = connect(path, directory, CONNECT_TIMEOUT)
        except ConnectionRefusedError:
            raise ControlError(
                f"no trioproc run is listening on {path} (left by one that was killed)"
            ) from None
        except OSError as exc:
            raise ControlError(f"cannot connect to {path}: {exc}") from exc
    finally:
        os.close(directory)
    with sock, sock.makefile("rb") as replies:
        sock.settimeout(timeout)
        for request in requests:
            # Refused (too many clients): the reply waits to be read anyway.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(encode(request))
            while True:
                line = replies.readline(MAX_REPLY + 1)
                if not line.endswith(b"\n"):
                    raise ControlError("the fleet closed the connection")
                reply = json.loads(line)
                yield reply
                if "ok" in reply:
                    break


def _fleet_file(given: str | None, root: Path) -> Path:
    """The fleet file: *given* (relative to *root*), else the one in *root*."""
    if given is not None:
        return root / given
    found = find_fleet_file(root)
    if found is None:
        raise ControlError(f"no {' or '.join(DEFAULT_FILES)} in {root.resolve()}")
    return found


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02}:{whole % 60:02}"


def _exit(code: int | None) -> str:
    if code is None:
        return "-"
    if code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
        return f"signal {-code}"
    return f"exit {code}"


def _print_status(reply: dict[str, Any]) -> None:
    rows = [
        ("NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "READY", "STATUS")
    ]
    for p in reply["processes"]:
        rows.append(
            (
                p["name"],
                p["state"],
                "-" if p["pid"] is None else str(p["pid"]),
                _uptime(p["uptime"]),
                str(p["restarts"]),
                _exit(p["last_exit"]),
                "yes" if p["ready"] else "no",
                p["status"] or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [
            cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)
        ]
        print("  ".join([*cells, row[-1]]).rstrip())


def _run_client(args: argparse.Namespace) -> int:
    """``trioproc ctl ...`` and ``trioproc status``; returns the exit status.

    A closed output pipe (``trioproc ctl logs -f | head``) ends it quietly
    with 141 (128 + SIGPIPE), as it ends ``cat``.
    """
    try:
        return _client(args)
    except BrokenPipeError:
        null = os.open(os.devnull, os.O_WRONLY)  # not inherited (PEP 446)
        os.dup2(null, sys.stdout.fileno())  # the interpreter flushes at exit
        os.close(null)
        return 128 + getattr(signal, "SIGPIPE", 13)  # none on Windows


def _client(args: argparse.Namespace) -> int:
    command = args.ctl_command
    try:
        if sys.platform == "win32":
            raise ControlError(
                f"trioproc {command}: there is no control socket on Windows "
                "(trioproc run serves none there); stop the run with Ctrl-C"
            )
        # -f after ctl, or before it (with -d, as for the other commands).
        given = args.file if args.file is not None else args.procfile
        path = socket_path(_fleet_file(given, Path(args.app_root or ".")))
        if command == "status":
            (reply,) = list(_requests(path, [{"command": "status"}], REPLY_TIMEOUT))
            if not reply.get("ok"):
                raise ControlError(reply.get("error", "failed"))
            if args.json:
                print(json.dumps(reply["processes"], indent=2))
            else:
                _print_status(reply)
            return 0
        if command == "logs":
            request = {
                "command": "logs",
                "name": args.name,
                "lines": args.lines,
                "follow": args.follow,
            }
            try:
                for reply in _requests(
                    path, [request], None if args.follow else REPLY_TIMEOUT
                ):
                    if "log" in reply:
                        entry = reply["log"]
                        mark = "|" if entry["fd"] == 1 else "!"
                        print(
                            f"{entry['name']} {mark} {entry['line']}", flush=args.follow
                        )
                    elif "lost" in reply:
                        lost = reply["lost"]
                        print(
                            f"trioproc: {lost['lines']} lines of "
                            f"{lost['name']} were lost",
                            file=sys.stderr,
                        )
                    elif not reply["ok"]:
                        raise ControlError(reply.get("error", "failed"))
            except KeyboardInterrupt:
                return 130
            return 0
        failed = False
        requests = [{"command": command, "name": name} for name in args.names]
        for reply in _requests(path, requests, None):
            if reply.get("ok"):
                print(reply.get("message", "ok"))
            else:
                print(f"trioproc: {reply.get('error', 'failed')}", file=sys.stderr)
                failed = True
        return 1 if failed else 0
    except BrokenPipeError:
        raise
    except (ControlError, OSError, ValueError) as exc:
        print(f"trioproc: {exc}", file=sys.stderr)
        return 1


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``ctl`` and ``status`` with the ``trioproc`` command's parser."""
    ctl = commands.add_parser(
        "ctl",
        help="ask the running fleet: status, restart, stop, start, logs",
        description="Talk to the `trioproc run` of this directory's fleet, "
        "through its control socket (.trioproc.sock beside the fleet file).",
    )
    ctl.set_defaults(control=_run_client)
    ctl.add_argument("-f", "--file", help="the fleet file (default: look in .)")
    sub = ctl.add_subparsers(dest="ctl_command", required=True, metavar="COMMAND")
    status = sub.add_parser("status", help="each process's state, pid, uptime, ...")
    status.add_argument("--json", action="store_true", help="print JSON")
    for name, what in (
        ("restart", "restart"),
        ("stop", "stop (for good)"),
        ("start", "start again (after stop)"),
    ):
        parser = sub.add_parser(name, help=f"{what} processes")
        parser.add_argument("names", nargs="+", metavar="NAME")
    logs = sub.add_parser("logs", help="recent output lines; -f to follow")
    logs.add_argument(
        "name", nargs="?", metavar="NAME", help="one process (default: all)"
    )
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new lines"
    )
    logs.add_argument(
        "-n", "--lines", type=int, default=50, help="how many recent lines (50)"
    )
    shortcut = commands.add_parser("status", help="short for `trioproc ctl status`")
    shortcut.set_defaults(control=_run_client, ctl_command="status")
    shortcut.add_argument("-f", "--file", help="the fleet file (default: look in .)")
    shortcut.add_argument("--json", action="store_true", help="print JSON")
