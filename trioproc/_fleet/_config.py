r"""A checked fleet: `Fleet` and its `ProcessConfig`\ s, as the readers make them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TypeAlias, final

import attrs

from .._arguments import shell_argv as system_shell_argv
from .._options import (
    DEFAULT_MAX_RESTARTS,
    DEFAULT_MAX_SECONDS,
    DEFAULT_SHUTDOWN_TIMEOUT,
)
from .._supervision._policy import Backoff, RestartType, Strategy
from .._supervision._readiness import (
    ReadyCheck,
    ready_on_notify,
    ready_on_output,
    ready_on_port,
)
from .._supervision._spec import ChildSpec
from ._problems import Problem

#: A fleet file's ``ready``, as written: an output pattern, a port, or
#: ``notify``. The exporter names it; `spec`'s ``ready`` is the check it makes.
RawReady: TypeAlias = (
    "tuple[Literal['output'], str] | tuple[Literal['port'], int]"
    " | tuple[Literal['notify'], None]"
)


def ready_check(ready: RawReady | None) -> ReadyCheck | None:
    """The supervisor's ready check for a fleet file's *ready*."""
    if ready is None:
        return None
    kind, value = ready
    if kind == "notify":
        return ready_on_notify()
    if kind == "port":
        assert isinstance(value, int)
        return ready_on_port(value)
    assert isinstance(value, str)
    return ready_on_output(value.encode())


@final
@attrs.frozen
class ProcessConfig:
    """One process of a fleet, checked: the `ChildSpec` it is supervised by,
    and what only the fleet file knows.

    How it runs (argv, restart, timeouts, backoff, cwd, cgroup, host) is held
    once, in *spec*, and read through the properties below; *spec*'s ``env``
    is the process's own ``env`` table only (`Instance.spec` layers the rest
    on it), and its name is the process's (an instance's may be ``name.N``).

    Attributes:
      name: the process's name.
      spec: how it is supervised, as checked when the file was read.
      line: where the file defines it.
      ready: its ``ready``, as written (``None``: running is ready).
      depends_on: the processes it starts after.
    """

    name: str
    spec: ChildSpec
    line: int | None = None
    ready: RawReady | None = None
    depends_on: tuple[str, ...] = ()

    @property
    def argv(self) -> tuple[str, ...]:
        """What it runs: its ``argv``, or ``/bin/sh -c`` and its ``cmd``."""
        assert self.spec.argv is not None
        return tuple(os.fsdecode(word) for word in self.spec.argv)

    @property
    def restart(self) -> RestartType:
        """``permanent``, ``transient`` or ``temporary``."""
        return self.spec.restart

    @property
    def ready_timeout(self) -> float:
        """Seconds its ready check may take."""
        return self.spec.ready_timeout

    @property
    def watchdog(self) -> float | None:
        """Seconds within which it must send ``WATCHDOG=1``; ``None``: no watchdog."""
        return self.spec.watchdog

    @property
    def kill_after(self) -> float:
        """Seconds between SIGTERM and SIGKILL when it is stopped."""
        return self.spec.kill_after

    @property
    def backoff(self) -> Backoff:
        """The waits between its restarts."""
        return self.spec.backoff

    @property
    def env(self) -> Mapping[str, str]:
        """The process's own ``env`` table."""
        return self.spec.env or {}

    @property
    def cwd(self) -> str | None:
        """Its directory; with a *host*, the remote one, as written."""
        return None if self.spec.cwd is None else os.fsdecode(self.spec.cwd)

    @property
    def cgroup(self) -> bool | None:
        """``True``: the process must run in a cgroup of its own; ``False``:
        never; ``None``: wherever one can be made."""
        return self.spec.cgroup

    @property
    def host(self) -> str | None:
        """The host it runs on through ssh (``None``: this one)."""
        return self.spec.host

    @property
    def ssh_options(self) -> tuple[str, ...] | None:
        """Its ``ssh -o`` options, as the file gives them (a list)."""
        options = self.spec.ssh_options
        if options is None:
            return None
        assert isinstance(options, tuple)
        return options


@final
@attrs.frozen
class Fleet:
    """A checked fleet: processes in start order, and supervisor settings."""

    path: Path
    processes: tuple[ProcessConfig, ...]
    strategy: Strategy = "one_for_one"
    max_restarts: int = DEFAULT_MAX_RESTARTS
    max_seconds: float = DEFAULT_MAX_SECONDS
    shutdown: Literal["reverse", "parallel"] = "reverse"
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    env: Mapping[str, str] = attrs.field(factory=dict)
    warnings: tuple[Problem, ...] = ()

    def process(self, name: str) -> ProcessConfig | None:
        """The process called *name*, if there is one."""
        for config in self.processes:
            if config.name == name:
                return config
        return None


def shell_argv(command: str) -> tuple[str, ...]:
    """The argv that runs a Procfile or ``cmd`` command line with the
    system's shell (`trioproc._arguments.shell_argv`: ``/bin/sh -c`` on
    POSIX, ``cmd /s /c`` on Windows)."""
    return tuple(system_shell_argv(command))
