"""The ``trioproc`` command: run a Procfile or TOML fleet under a Supervisor.

``trioproc run [FILE]`` (or ``trioproc start [PROCESS...]``, as honcho and
foreman spell it) starts every process (dependencies first, each ready
before the next), prints their output prefixed with their names, and on
Ctrl-C (SIGINT), SIGTERM or SIGHUP (a closed terminal, a lost ssh session;
not under ``nohup``) stops them all in reverse order (or all at once, as the
file's ``shutdown`` says); a second signal kills them at once. When no
process is left running or waiting to restart (one-shot tasks that are
done) the run ends by itself.
``trioproc check [FILE]`` lists every problem in the file;
``trioproc export systemd|supervisord DIR`` writes the fleet out as units or
a supervisord file; ``trioproc exec -- CMD...`` runs one command with the
fleet's environment (what ``honcho run CMD`` does).

The honcho options work as in honcho: ``-f`` (the file), ``-d`` (the app
root, which ``-f`` and ``-e`` are relative to), ``-e`` (``.env`` files,
instead of the default), ``-p`` (the base ``PORT``), ``-c web=2`` (instances
``web.1`` and ``web.2``).

When its output goes away the fleet is stopped the same graceful way, and
nothing more is printed: a closed pipe (``trioproc run | head``) ends the run
quietly, as it ends ``cat``; a hung-up terminal (EIO) ends it as SIGHUP does;
any other write error (a full disk) is reported on stderr.

Exit status: 0 after a clean stop (``--for``, a signal, or every process
done with exit code 0); 1 if the supervisor gave up (restart intensity), a
process failed to start, a finished process had failed, or the output could
not be written; 2 for a bad command line or fleet file; 141 (128 + SIGPIPE,
what a shell reports for ``cat``) when the output pipe was closed and the
run had not failed otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO, final

import attrs
import trio

from . import __version__, _control
from ._errors import ChildNotReady, RestartIntensityExceeded
from ._export import EXPORTERS, ExportError, export
from ._fleet import (
    DEFAULT_FILES,
    DEFAULT_PORT,
    Fleet,
    FleetError,
    Instance,
    ProcessConfig,
    expand,
    find_fleet_file,
    load,
    process_env,
    program_warnings,
    read_dotenv,
)
from ._os._cgroup import unavailable
from ._supervision._readiness import (
    ReadyCheck,
    ready_on_notify,
    ready_on_output,
    ready_on_port,
)
from ._supervision._spec import ChildSpec, SupervisorEvent
from ._supervision._supervisor import Supervisor

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
        # Processes without a ready check: their supervisor's "ready" (being
        # running) is already said by "started".
        self.unchecked: set[str] = set()
        self.on_event: Callable[[SupervisorEvent], str] = _as_is

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
        if event.kind == "ready" and event.name in self.unchecked:
            return
        self.write(_SYSTEM, self.on_event(event))

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


def _as_is(event: SupervisorEvent) -> str:
    """How a `Printer` words an event, until told otherwise."""
    return event.message


@final
class _Fates:
    """What became of each instance of a run, from the supervisor's events.

    It tells when every process is done -- exited and not to be restarted,
    by its restart type: a ``transient`` one after exit code 0, a
    ``temporary`` one after any exit -- so that a fleet of one-shot tasks
    ends, and which processes were waiting to be restarted when the fleet
    stopped (no stop line says so otherwise).
    """

    def __init__(
        self, instances: Sequence[Instance], on_done: Callable[[], None]
    ) -> None:
        self.restart = {i.name: i.config.restart for i in instances}
        self.last: dict[str, str] = {}
        self.failed: set[str] = set()
        self.on_done = on_done

    def word(self, event: SupervisorEvent) -> str:
        """Note *event*; return the line to print for it."""
        self.last[event.name] = event.kind
        if event.kind != "exited":
            return event.message
        restart = self.restart.get(event.name, "permanent")
        failed = event.returncode != 0
        if restart == "permanent" or (restart == "transient" and failed):
            return event.message
        self.last[event.name] = "done"
        if failed:
            self.failed.add(event.name)
        else:
            self.failed.discard(event.name)
        if self.all_done:
            self.on_done()
        return f"{event.message}; done ({restart}: not restarted)"

    @property
    def all_done(self) -> bool:
        """Whether every instance exited and is not to be restarted."""
        return all(self.last.get(name) == "done" for name in self.restart)

    def waiting(self) -> list[str]:
        """The instances that were waiting to be restarted."""
        return [name for name, kind in self.last.items() if kind == "restarting"]


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
    if kind == "notify":
        return ready_on_notify()
    if kind == "port":
        assert isinstance(value, int)
        return ready_on_port(value)
    assert isinstance(value, str)
    return ready_on_output(value.encode())


def spec_for(
    instance: Instance, fleet: Fleet, base: Mapping[str, str] | None = None
) -> ChildSpec:
    """The supervisor's ChildSpec for one instance of a configured process,
    with its environment on top of *base* (default: ``os.environ``)."""
    config = instance.config
    env: Mapping[str, str] | None = process_env(
        instance, fleet, os.environ if base is None else base
    )
    if config.host is not None:
        # Never the local environment: the remote login's own, or exactly
        # what the file gives.
        given = {**fleet.env, **config.env}
        env = {**given, "TRIOPROC_PROCESS_NAME": instance.name} if given else None
    return ChildSpec(
        instance.name,
        argv=list(config.argv),
        restart=config.restart,
        ready=_ready(config),
        ready_timeout=config.ready_timeout,
        watchdog=config.watchdog,
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


async def run_fleet(
    fleet: Fleet,
    printer: Printer,
    duration: float | None,
    instances: Sequence[Instance] | None = None,
) -> int:
    """Run *instances* (default: one of each process) of *fleet* until a
    signal, *duration* seconds, every process is done, or the supervisor
    gives up."""
    if instances is None:
        instances = expand(fleet)
    control = _control.FleetControl(fleet, printer.output)
    supervisor = Supervisor(
        fleet.strategy,
        fleet.max_restarts,
        fleet.max_seconds,
        shutdown=fleet.shutdown,
        shutdown_timeout=fleet.shutdown_timeout,
        on_output=control.output,
        on_event=printer.event,
    )
    status = 0
    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as running:
            fates = _Fates(instances, running.cancel)
            printer.on_event = fates.word
            printer.unchecked = {i.name for i in instances if i.config.ready is None}
            printer.on_lost = running.cancel
            nursery.start_soon(_watch_signals, running, supervisor, printer)
            try:
                async with supervisor, control.serve(supervisor, nursery):
                    count = len(instances)
                    printer.write(
                        _SYSTEM,
                        f"starting {count} process{'es' if count != 1 else ''} "
                        f"from {fleet.path}",
                    )
                    cgroups = _cgroups_here(fleet, printer)
                    for instance in instances:
                        if instance.config.cgroup is None:
                            config = attrs.evolve(instance.config, cgroup=cgroups)
                            instance = attrs.evolve(instance, config=config)
                        try:
                            await supervisor.start(spec_for(instance, fleet))
                        except OSError as exc:
                            raise _StartFailed(f"{instance.name}: {exc}") from exc
                    control.ready()
                    if duration is None:
                        await trio.sleep_forever()
                    await trio.sleep(duration)
                    printer.write(_SYSTEM, f"stopping after {duration:g}s")
            except _control.ControlError as exc:
                _complain(f"trioproc: {exc}")
                status = 1
            except RestartIntensityExceeded as exc:
                _complain(f"trioproc: gave up: {exc}")
                status = 1
            except (ChildNotReady, _StartFailed, OSError) as exc:
                _complain(f"trioproc: a process failed to start: {exc}")
                status = 1
        for name in fates.waiting():
            printer.write(_SYSTEM, f"{name} stopped while waiting to be restarted")
        if fates.all_done:
            printer.write(_SYSTEM, "every process is done")
            if fates.failed and status == 0:
                _complain(
                    "trioproc: finished with a failure: "
                    + ", ".join(sorted(fates.failed))
                )
                status = 1
        printer.write(_SYSTEM, "all processes stopped")
        nursery.cancel_scope.cancel()
    return printer.status(status)


class _StartFailed(Exception):
    """A process could not be started (its program is missing, ...): the
    `OSError`, with the process's name."""


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


class _Usage(Exception):
    """A bad command line, found after parsing it: exit status 2."""


def _fleet_path(args: argparse.Namespace) -> Path:
    """The fleet file: ``-f`` or FILE (relative to ``-d``), else
    ``trioproc.toml`` or ``Procfile`` in ``-d`` (default: here)."""
    root = Path(args.app_root or ".")
    given = getattr(args, "file", None)
    if given is not None and args.procfile is not None:
        raise _Usage(f"give the fleet file once: {given!r} or -f {args.procfile!r}")
    name: str | None = args.procfile if args.procfile is not None else given
    if name is not None:
        return root / name
    found = find_fleet_file(root)
    if found is None:
        where = root.resolve()
        raise _Usage(f"no {' or '.join(DEFAULT_FILES)} in {where}")
    return found


def _env_files(args: argparse.Namespace) -> list[Path]:
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
                raise _Usage(
                    f"-c {spec}: each item is NAME=COUNT, like web=2; not {item!r}"
                ) from None
            if not equals or not name.strip():
                raise _Usage(f"-c {spec}: each item is NAME=COUNT, like web=2")
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
            raise _Usage(f"{source}: not a port number: {given!r}") from None
        if not 0 < port < 65536:
            raise _Usage(f"{source}: a port is from 1 to 65535, not {port}")
        return port
    return DEFAULT_PORT


def _instances(args: argparse.Namespace, fleet: Fleet) -> tuple[Instance, ...]:
    try:
        return expand(
            fleet,
            getattr(args, "processes", ()),
            _concurrency(args.concurrency),
            _base_port(args, fleet),
        )
    except ValueError as exc:
        raise _Usage(str(exc)) from None


def _not_a_fleet_file(args: argparse.Namespace) -> str | None:
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
        default = _fleet_path(argparse.Namespace(app_root=args.app_root, procfile=None))
        known = load(default).processes
    except (_Usage, FleetError, OSError):
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


def _exec(args: argparse.Namespace) -> int:
    """``trioproc exec -- CMD...``: honcho's ``run``. The command runs with
    this environment plus the ``.env`` files, on this terminal; Ctrl-C is
    the command's to handle (trioproc ignores it while waiting), and its
    exit status is trioproc's (128 + N for signal N)."""
    command = list(args.argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise _Usage("exec needs a command: trioproc exec -- CMD [ARG...]")
    files = _env_files(args) or [
        p for p in [Path(args.app_root or ".", ".env")] if p.is_file()
    ]
    env = dict(os.environ)
    for path in files:
        values, unread = read_dotenv(path.read_text(encoding="utf-8"))
        for problem in unread:
            _complain(f"trioproc: {problem.render(path)}")
        env.update(values)
    try:
        child = subprocess.Popen(command, env=env)
    except OSError as exc:
        _complain(f"trioproc exec: {exc}")
        return 127 if isinstance(exc, FileNotFoundError) else 126
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    return 128 - code if code < 0 else code


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


def _parser() -> argparse.ArgumentParser:
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
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "-d",
        "--app-root",
        metavar="DIR",
        help="the app's directory: where the fleet file and .env are looked "
        "for, -f and -e are relative to, and processes run (default: the "
        "fleet file's directory)",
    )
    where.add_argument(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="FILE",
        help="a .env file to read instead of the one beside the fleet file; "
        "repeatable, or comma-separated (honcho's -e a.env,b.env); later "
        "files win",
    )
    fleet = argparse.ArgumentParser(add_help=False, parents=[where])
    fleet.add_argument(
        "-f",
        "--procfile",
        metavar="FILE",
        help="the Procfile or trioproc.toml (default: trioproc.toml, then "
        "Procfile, in the app root)",
    )
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


def main(argv: Sequence[str] | None = None) -> int:
    """The ``trioproc`` command; returns its exit status."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    args.extra = extra
    if getattr(args, "control", None) is not None:
        return int(args.control(args))
    try:
        if args.command == "exec":
            return _exec(args)
        if args.command == "run" and (hint := _not_a_fleet_file(args)) is not None:
            raise _Usage(hint)
        if extra:
            parser.parse_args(argv)  # the usual usage error, exit 2
        path = _fleet_path(args)
        root = Path(args.app_root) if args.app_root else None
        fleet = load(path, _env_files(args), root=root)
        for warning in fleet.warnings:
            _complain(f"trioproc: {warning.render(path)}")
        instances = _instances(args, fleet)
        if not instances and args.command != "check":
            raise _Usage("nothing to run: every process has a -c count of 0")
        if args.command == "check":
            return _check(path, fleet)
        if args.command == "export":
            return _export(args, path, fleet, instances)
        if args.duration is not None and args.duration < 0:
            raise _Usage("--for needs a number of seconds >= 0")
    except FleetError as exc:
        for problem in exc.problems:
            _complain(problem.render(exc.path))
        _complain(f"trioproc: {len(exc.problems)} problem(s) in {exc.path}")
        return 2
    except (_Usage, ExportError) as exc:
        _complain(str(exc) if str(exc).startswith("trioproc") else f"trioproc: {exc}")
        return 2
    except OSError as exc:
        _complain(f"trioproc: {exc}")
        return 2
    printer = Printer(
        [i.name for i in instances],
        sys.stdout,
        colour=_wants_colour(sys.stdout, args.no_color),
        timestamps=args.timestamps,
    )
    return trio.run(run_fleet, fleet, printer, args.duration, instances)


def _check(path: Path, fleet: Fleet) -> int:
    for warning in program_warnings(fleet):
        _complain(f"trioproc: {warning.render(path)}")
    names = ", ".join(p.name for p in fleet.processes)
    count = len(fleet.processes)
    print(f"{path}: ok: {count} process{'es' if count != 1 else ''} ({names})")
    return 0


def _export(
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
        _complain(f"trioproc: {note}")
    for file in written:
        print(f"wrote {file}")
    return 0
