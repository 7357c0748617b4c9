"""The ``trioproc`` command: run a Procfile or TOML fleet under a Supervisor.

``trioproc run [FILE]`` starts every process (dependencies first, each ready
before the next), prints their output prefixed with their names, and on
Ctrl-C (SIGINT), SIGTERM or SIGHUP (a closed terminal, a lost ssh session;
not under ``nohup``) stops them all in reverse order (or all at once, as the
file's ``shutdown`` says); a second signal kills them at once.
``trioproc check [FILE]`` lists every problem in the file.

When its output goes away the fleet is stopped the same graceful way, and
nothing more is printed: a closed pipe (``trioproc run | head``) ends the run
quietly, as it ends ``cat``; a hung-up terminal (EIO) ends it as SIGHUP does;
any other write error (a full disk) is reported on stderr.

Exit status: 0 after a clean stop (``--for``, or a signal); 1 if the
supervisor gave up (restart intensity), a process failed to start, or the
output could not be written; 2 for a bad command line or fleet file; 141
(128 + SIGPIPE, what a shell reports for ``cat``) when the output pipe was
closed and the run had not failed otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO, final

import attrs
import trio

from . import __version__
from ._cgroup import unavailable
from ._errors import ChildNotReady, RestartIntensityExceeded
from ._fleet import (
    DEFAULT_FILES,
    Fleet,
    FleetError,
    ProcessConfig,
    find_fleet_file,
    load,
)
from ._supervisor import (
    ChildSpec,
    ReadyCheck,
    Supervisor,
    SupervisorEvent,
    ready_on_output,
    ready_on_port,
)

__all__ = ["main"]

_COLOURS = ("36", "33", "32", "35", "34", "31", "96", "93", "92", "95", "94", "91")
_SYSTEM = "trioproc"


@final
class Printer:
    """Writes prefixed lines: ``[time ]name | text``, coloured on a terminal.

    A write that fails (the reader of a pipe went away, the terminal hung
    up, the disk is full) does not raise into the supervisor, whose callbacks
    call this: the error is kept in `lost`, nothing more is written, and
    `on_lost` is called once, so that the fleet can be stopped.
    """

    def __init__(
        self, names: Sequence[str], out: TextIO, *, colour: bool, timestamps: bool
    ) -> None:
        self.out = out
        self.timestamps = timestamps
        self.width = max([len(_SYSTEM), *(len(n) for n in names)])
        self.colours = (
            {name: _COLOURS[i % len(_COLOURS)] for i, name in enumerate(names)}
            if colour
            else {}
        )
        if colour:
            self.colours[_SYSTEM] = "1"
        self.lost: OSError | None = None
        self.on_lost: Callable[[], None] = _nothing

    def write(self, name: str, text: str, mark: str = "|") -> None:
        if self.lost is not None:
            return
        prefix = f"{name:<{self.width}} {mark}"
        if self.timestamps:
            prefix = time.strftime("%H:%M:%S ") + prefix
        colour = self.colours.get(name)
        if colour is not None:
            prefix = f"\x1b[{colour}m{prefix}\x1b[0m"
        try:
            self.out.write(f"{prefix} {text}\n")
            self.out.flush()
        except OSError as exc:
            self._lose(exc)

    def output(self, name: str, fd: int, line: bytes) -> None:
        self.write(name, line.decode(errors="replace"), "|" if fd == 1 else "!")

    def event(self, event: SupervisorEvent) -> None:
        self.write(_SYSTEM, event.message)

    def _lose(self, error: OSError) -> None:
        self.lost = error
        # What failed stays in the stream's buffer, and the interpreter
        # flushes it again at exit ("Exception ignored ... BrokenPipeError"):
        # let that flush, and any other write to the fd, go to /dev/null.
        with contextlib.suppress(OSError, ValueError):
            fd = self.out.fileno()
            null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            os.dup2(null, fd)
            os.close(null)
        self.on_lost()

    def status(self, status: int) -> int:
        """The exit status of a run that ended with *status*, given the fate
        of the output: 141 (128 + SIGPIPE) for a closed pipe after a clean
        stop; 1, reported on stderr, for a write error other than a closed
        pipe or a hung-up terminal's EIO."""
        if self.lost is None:
            return status
        if self.lost.errno not in (errno.EPIPE, errno.EIO):
            _complain(f"trioproc: cannot write the output: {self.lost}")
            return 1
        if self.lost.errno == errno.EPIPE and status == 0:
            return 128 + signal.SIGPIPE
        return status


def _nothing() -> None:
    """What a `Printer` calls when its output is lost, until told otherwise."""


def _complain(message: str) -> None:
    """Print *message* on stderr, unless stderr is gone too."""
    with contextlib.suppress(OSError):
        print(message, file=sys.stderr)


def _wants_colour(out: TextIO, disabled: bool) -> bool:
    if disabled or os.environ.get("NO_COLOR"):
        return False
    return out.isatty()


def _ready(config: ProcessConfig) -> ReadyCheck | None:
    if config.ready is None:
        return None
    kind, value = config.ready
    if kind == "port":
        assert isinstance(value, int)
        return ready_on_port(value)
    assert isinstance(value, str)
    return ready_on_output(value.encode())


def spec_for(config: ProcessConfig, fleet_env: dict[str, str]) -> ChildSpec:
    """The supervisor's ChildSpec for one configured process."""
    env: dict[str, str] | None = {
        **os.environ,
        **fleet_env,
        **config.env,
        "TRIOPROC_PROCESS_NAME": config.name,
    }
    if config.host is not None:
        # Never the local environment: the remote login's own, or exactly
        # what the file gives.
        given = {**fleet_env, **config.env}
        env = {**given, "TRIOPROC_PROCESS_NAME": config.name} if given else None
    return ChildSpec(
        config.name,
        argv=list(config.argv),
        restart=config.restart,
        ready=_ready(config),
        ready_timeout=config.ready_timeout,
        kill_after=config.kill_after,
        backoff=config.backoff,
        env=env,
        cwd=config.cwd,
        cgroup=config.cgroup,
        host=config.host,
        ssh_options=config.ssh_options,
    )


def _cgroups_here(fleet: Fleet, printer: Printer) -> bool:
    """Whether processes that leave ``cgroup`` unset get a cgroup of their
    own: wherever one can be made; else say once why not."""
    if all(config.cgroup is not None for config in fleet.processes):
        return False
    why = unavailable()
    if why is None:
        return True
    printer.write(
        _SYSTEM,
        f"no cgroups here ({why.strerror or why}): stopping process groups "
        "instead (a daemon that leaves its group would escape)",
    )
    return False


async def run_fleet(fleet: Fleet, printer: Printer, duration: float | None) -> int:
    """Run *fleet* until a signal, *duration* seconds, or the supervisor gives up."""
    supervisor = Supervisor(
        fleet.strategy,
        fleet.max_restarts,
        fleet.max_seconds,
        shutdown=fleet.shutdown,
        shutdown_timeout=fleet.shutdown_timeout,
        on_output=printer.output,
        on_event=printer.event,
    )
    status = 0
    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as running:
            printer.on_lost = running.cancel
            nursery.start_soon(_watch_signals, running, supervisor, printer)
            try:
                async with supervisor:
                    printer.write(
                        _SYSTEM,
                        f"starting {len(fleet.processes)} processes from {fleet.path}",
                    )
                    cgroups = _cgroups_here(fleet, printer)
                    for config in fleet.processes:
                        if config.cgroup is None:
                            config = attrs.evolve(config, cgroup=cgroups)
                        await supervisor.start(spec_for(config, dict(fleet.env)))
                    if duration is None:
                        await trio.sleep_forever()
                    await trio.sleep(duration)
                    printer.write(_SYSTEM, f"stopping after {duration:g}s")
            except RestartIntensityExceeded as exc:
                _complain(f"trioproc: gave up: {exc}")
                status = 1
            except (ChildNotReady, OSError) as exc:
                _complain(f"trioproc: a process failed to start: {exc}")
                status = 1
        printer.write(_SYSTEM, "all processes stopped")
        nursery.cancel_scope.cancel()
    return printer.status(status)


async def _watch_signals(
    running: trio.CancelScope, supervisor: Supervisor, printer: Printer
) -> None:
    """First SIGINT, SIGTERM or SIGHUP: stop gracefully. The next: kill at once.

    SIGHUP is a closed terminal or a lost ssh session: left to its default it
    would end this process at once and leave every child running. Under
    ``nohup`` (SIGHUP ignored when this process started) it stays ignored.
    """
    watched = [signal.SIGINT, signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        watched.append(signal.SIGHUP)
    with trio.open_signal_receiver(*watched) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if not running.cancel_called:
                printer.write(
                    _SYSTEM, f"{name}: stopping every process (again to kill)"
                )
                running.cancel()
                continue
            printer.write(_SYSTEM, f"{name} again: killing every process now")
            for child in supervisor.children:
                if child.running and child.pid is not None and not child.spec.host:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.pid, signal.SIGKILL)


def _fleet_path(given: str | None) -> Path:
    if given is not None:
        return Path(given)
    found = find_fleet_file(Path.cwd())
    if found is None:
        raise FileNotFoundError(f"no {' or '.join(DEFAULT_FILES)} in {Path.cwd()}")
    return found


_RUN_EPILOG = """\
signals: SIGINT (Ctrl-C), SIGTERM and SIGHUP (a closed terminal, a lost ssh
session; not under nohup) stop every process gracefully, in reverse order
unless the file's shutdown says parallel; a second one kills them at once. A
closed output pipe (trioproc run | head) stops them the same way, quietly.

exit status: 0 after a clean stop (--for, or a signal); 1 if the supervisor
gave up, a process failed to start, or the output could not be written; 2 for
a bad command line or fleet file; 141 (128+SIGPIPE) when the output pipe was
closed.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trioproc",
        description="Run a fleet of processes from a Procfile or trioproc.toml, "
        "restarting them as told and stopping them cleanly.",
    )
    parser.add_argument(
        "--version", action="version", version=f"trioproc {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="start the fleet and supervise it",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check = commands.add_parser(
        "check", help="check a fleet file and list its problems"
    )
    for sub in (run, check):
        sub.add_argument(
            "file", nargs="?", help="trioproc.toml or Procfile (default: look in .)"
        )
        sub.add_argument(
            "--env",
            action="append",
            default=[],
            metavar="FILE",
            help="a .env file to read (after FILE's own .env); repeatable",
        )
    run.add_argument(
        "--for",
        dest="duration",
        type=float,
        metavar="SECONDS",
        help="stop cleanly after SECONDS (default: run until Ctrl-C)",
    )
    run.add_argument(
        "-t", "--timestamps", action="store_true", help="prefix lines with the time"
    )
    run.add_argument(
        "--no-color", action="store_true", help="no colours, even on a terminal"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``trioproc`` command; returns its exit status."""
    args = _parser().parse_args(argv)
    try:
        path = _fleet_path(args.file)
        fleet = load(path, [Path(f) for f in args.env])
    except FleetError as exc:
        for problem in exc.problems:
            print(problem.render(exc.path), file=sys.stderr)
        print(
            f"trioproc: {len(exc.problems)} problem(s) in {exc.path}", file=sys.stderr
        )
        return 2
    except OSError as exc:
        print(f"trioproc: {exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        names = ", ".join(p.name for p in fleet.processes)
        print(f"{path}: ok: {len(fleet.processes)} processes ({names})")
        return 0
    if args.duration is not None and args.duration < 0:
        print("trioproc: --for needs a number of seconds >= 0", file=sys.stderr)
        return 2
    printer = Printer(
        [p.name for p in fleet.processes],
        sys.stdout,
        colour=_wants_colour(sys.stdout, args.no_color),
        timestamps=args.timestamps,
    )
    return trio.run(run_fleet, fleet, printer, args.duration)
