"""Instances of a fleet's processes: ``-c`` copies, their ``PORT``, their
environment, and the `ChildSpec` each is supervised by.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Final, final

import attrs

from .._options import is_port
from .._supervision._spec import ChildSpec
from ._config import Fleet, ProcessConfig
from ._problems import did_you_mean

#: honcho's and foreman's base port when neither ``-p`` nor ``$PORT`` says.
DEFAULT_PORT: Final = 5000


@final
@attrs.frozen
class Instance:
    """One process to start: a configured process, or one of its ``-c`` copies.

    Attributes:
      name: the process's name, or ``name.N`` when there are several.
      config: the process it is an instance of.
      port: its ``PORT``.
    """

    name: str
    config: ProcessConfig
    port: int

    def spec(
        self,
        fleet: Fleet,
        base: Mapping[str, str] | None = None,
        *,
        cgroup: bool | None = None,
    ) -> ChildSpec:
        """The `ChildSpec` this instance is supervised by: its process's,
        named for the instance, with the environment of `process_env` on top
        of *base* (default: ``os.environ``).

        A process on another host gets none of the local environment: the
        remote login's own, or exactly what the files give.

        Args:
          cgroup: what a process that leaves ``cgroup`` unset gets (whether
            cgroups can be made here); ``None``: left to the supervisor.
        """
        config = self.config
        env: Mapping[str, str] | None
        if config.host is not None:
            given = {**fleet.env, **config.env}
            env = {**given, "TRIOPROC_PROCESS_NAME": self.name} if given else None
        else:
            env = process_env(self, fleet, os.environ if base is None else base)
        return attrs.evolve(
            config.spec,
            name=self.name,
            env=env,
            cgroup=cgroup if config.cgroup is None else config.cgroup,
        )


def expand(
    fleet: Fleet,
    only: Sequence[str] = (),
    concurrency: Mapping[str, int] | None = None,
    port: int = DEFAULT_PORT,
) -> tuple[Instance, ...]:
    """The instances to start, in start order.

    Args:
      only: the processes to run (with what they depend on, however deep);
        none: all of them.
      concurrency: how many instances of a process (1 where not given; 0
        runs none). Several are named ``name.1``, ``name.2``...
      port: the base port. As in honcho, each process type takes a block of
        100 ports in turn -- the types named in *only*, in that order, else
        every type in file order; dependencies pulled in by *only* come
        after, in file order -- and its *n*-th instance gets the block's
        start plus *n* - 1. A type run 0 times still takes its block.

    Raises:
      ValueError: an unknown process name, a negative count, a port past
        65535.
    """
    counts = dict(concurrency or {})
    names = {config.name for config in fleet.processes}
    for name in [*only, *counts]:
        if name not in names:
            raise ValueError(
                f"no process {name!r} in {fleet.path}{did_you_mean(name, names)}"
            )
    for name, count in counts.items():
        if count < 0:
            raise ValueError(f"{name}={count}: a count must be 0 or more")
    in_file_order = sorted(fleet.processes, key=lambda c: (c.line is None, c.line or 0))
    if only:
        wanted = set(only)
        pending = list(only)
        while pending:
            config = fleet.process(pending.pop())
            assert config is not None
            for dependency in config.depends_on:
                if dependency not in wanted:
                    wanted.add(dependency)
                    pending.append(dependency)
        port_order = list(dict.fromkeys(only)) + [
            c.name for c in in_file_order if c.name in wanted and c.name not in only
        ]
    else:
        wanted = names
        port_order = [c.name for c in in_file_order]
    blocks = {name: port + 100 * index for index, name in enumerate(port_order)}
    instances: list[Instance] = []
    for config in fleet.processes:
        if config.name not in wanted:
            continue
        count = counts.get(config.name, 1)
        for index in range(count):
            name = config.name if count == 1 else f"{config.name}.{index + 1}"
            number = blocks[config.name] + index
            if not is_port(number):
                raise ValueError(
                    f"{name} would get PORT={number}: choose a base port "
                    f"(-p) that leaves room for every process"
                )
            instances.append(Instance(name, config, number))
    return tuple(instances)


def process_env(
    instance: Instance, fleet: Fleet, base: Mapping[str, str]
) -> dict[str, str]:
    """The environment *instance* runs with, on top of *base*.

    Layers, later ones winning: *base* (``os.environ`` for a run, nothing for
    an export), the fleet's ``.env`` files, the instance's ``PORT``, the
    process's own ``env``. Then ``PYTHONUNBUFFERED=1`` unless some layer set
    it (a Python child's output reaches its prefixed lines as it is printed,
    not when a buffer fills), and ``TRIOPROC_PROCESS_NAME``.
    """
    env = {**base, **fleet.env, "PORT": str(instance.port), **instance.config.env}
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["TRIOPROC_PROCESS_NAME"] = instance.name
    return env
