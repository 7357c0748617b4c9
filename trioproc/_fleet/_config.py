r"""A checked fleet: `Fleet` and its `ProcessConfig`\ s, as the readers make them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal, final

import attrs

from .._policy import Backoff, RestartType, Strategy
from ._problems import Problem


@final
@attrs.frozen
class ProcessConfig:
    """One process of a fleet, checked."""

    name: str
    argv: tuple[str, ...]
    line: int | None = None
    restart: RestartType = "permanent"
    ready: (
        tuple[Literal["output"], str]
        | tuple[Literal["port"], int]
        | tuple[Literal["notify"], None]
        | None
    ) = None
    ready_timeout: float = 10.0
    watchdog: float | None = None
    kill_after: float = 5.0
    env: Mapping[str, str] = attrs.field(factory=dict)
    cwd: str | None = None
    depends_on: tuple[str, ...] = ()
    backoff: Backoff = attrs.field(factory=Backoff)
    #: ``True``: the process must run in a cgroup of its own; ``False``:
    #: never; ``None``: wherever one can be made.
    cgroup: bool | None = None
    #: The host it runs on through ssh (``None``: this one), and its
    #: ``ssh -o`` options; its cwd is then the remote one, as written.
    host: str | None = None
    ssh_options: tuple[str, ...] | None = None


@final
@attrs.frozen
class Fleet:
    """A checked fleet: processes in start order, and supervisor settings."""

    path: Path
    processes: tuple[ProcessConfig, ...]
    strategy: Strategy = "one_for_one"
    max_restarts: int = 3
    max_seconds: float = 5.0
    shutdown: Literal["reverse", "parallel"] = "reverse"
    shutdown_timeout: float = 60.0
    env: Mapping[str, str] = attrs.field(factory=dict)
    warnings: tuple[Problem, ...] = ()

    def process(self, name: str) -> ProcessConfig | None:
        """The process called *name*, if there is one."""
        for config in self.processes:
            if config.name == name:
                return config
        return None
