"""``trioproc run``: a fleet under a Supervisor, until a signal, ``--for``,
every process done, or the supervisor gives up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, final

import trio

from .. import _control
from .._errors import ChildNotReady, ProcessExitedAlready, RestartIntensityExceeded
from .._fleet import Fleet, Instance, expand
from .._os._backends import unavailable
from .._supervision._spec import SupervisorEvent
from .._supervision._supervisor import Supervisor
from ._printer import SYSTEM, Printer, complain

if TYPE_CHECKING:
    from .._transport import ProcessTransport


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


def _cgroups_here(fleet: Fleet, printer: Printer) -> bool:
    """Whether processes that leave ``cgroup`` unset get a cgroup of their
    own: wherever one can be made; else say once why not."""
    if all(config.cgroup is not None for config in fleet.processes):
        return False
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return False  # nothing to say: a Job Object holds each process's tree
    why = unavailable()
    if why is None:
        return True
    printer.write(
        SYSTEM,
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
                        SYSTEM,
                        f"starting {count} process{'es' if count != 1 else ''} "
                        f"from {fleet.path}",
                    )
                    cgroups = _cgroups_here(fleet, printer)
                    for instance in instances:
                        spec = instance.spec(fleet, cgroup=cgroups)
                        try:
                            await supervisor.start(spec)
                        except OSError as exc:
                            raise _StartFailed(f"{instance.name}: {exc}") from exc
                    control.ready()
                    if duration is None:
                        await trio.sleep_forever()
                    await trio.sleep(duration)
                    printer.write(SYSTEM, f"stopping after {duration:g}s")
            except _control.ControlError as exc:
                complain(f"trioproc: {exc}")
                status = 1
            except RestartIntensityExceeded as exc:
                complain(f"trioproc: gave up: {exc}")
                status = 1
            except (ChildNotReady, _StartFailed, OSError) as exc:
                complain(f"trioproc: a process failed to start: {exc}")
                status = 1
        for name in fates.waiting():
            printer.write(SYSTEM, f"{name} stopped while waiting to be restarted")
        if fates.all_done:
            printer.write(SYSTEM, "every process is done")
            if fates.failed and status == 0:
                complain(
                    "trioproc: finished with a failure: "
                    + ", ".join(sorted(fates.failed))
                )
                status = 1
        printer.write(SYSTEM, "all processes stopped")
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
    if sys.platform == "win32":  # pragma: no cover - Windows only: Ctrl-Break
        watched.append(signal.SIGBREAK)
    elif signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        watched.append(signal.SIGHUP)
    with trio.open_signal_receiver(*watched) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if not running.cancel_called:
                printer.write(SYSTEM, f"{name}: stopping every process (again to kill)")
                running.cancel()
                continue
            printer.write(SYSTEM, f"{name} again: killing every process now")
            for child in supervisor.children:
                if child.running and child.pid is not None and not child.spec.host:
                    _kill_tree(child.pid, child.transport)


def _kill_tree(pid: int, transport: ProcessTransport | None) -> None:
    """SIGKILL the process group *pid* leads (on Windows: terminate the
    child's Job Object, which KILL does)."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        if transport is not None:
            with contextlib.suppress(ProcessExitedAlready):
                transport.signalProcess("KILL")
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
