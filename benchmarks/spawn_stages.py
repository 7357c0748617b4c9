"""Where the time of one spawn goes, stage by stage, for a ``spawn()`` block
with no fds and for ``run()``.

``spawn_floor.py`` adds one layer at a time; this splits trioproc's own
cycle at the points that matter: the Python before ``posix_spawn`` (serial:
no child runs yet), ``posix_spawn`` itself, the time from the spawn to the
reap (the child's life, which the parent's work overlaps), and the Python
after the reap (serial again). It times ``posix_spawn`` and the reaping
``waitpid`` by wrapping trioproc's private functions, so the figures are for
this version's layout only. A figure is the median over every child.

For the parent's system calls per child, count them with ``strace -c`` (no
``-f``: the children's own would count too): the calls of
``strace -c .venv/bin/python benchmarks/spawn_stages.py --only run --n 500``,
less those of the same with ``--n 0`` (which starts no child), divided by
520 (20 children warm up first).

Run: ``.venv/bin/python benchmarks/spawn_stages.py [--n N] [--only CASE]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import trio

import trioproc
from trioproc._os import _launch, _reaper

TRUE = "/bin/true"
_marks: dict[str, float] = {}


def _timed(
    name: str, function: Callable[..., Any]
) -> Callable[..., Any]:  # the wrapped function's own signature
    def timed(*args: Any, **kwargs: Any) -> Any:
        _marks[f"{name} begins"] = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _marks[f"{name} ends"] = time.perf_counter()

    return timed


class _TimedWaitpid:
    """`os` for the reaper module, with `waitpid` timed."""

    waitpid = staticmethod(_timed("reap", os.waitpid))

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def _install() -> None:
    _launch.posix_spawn = _timed("posix_spawn", _launch.posix_spawn)  # type: ignore[attr-defined]
    _reaper.os = _TimedWaitpid()  # type: ignore[attr-defined,assignment]


async def _block() -> None:
    async with trioproc.spawn([TRUE], trioproc.ProcessProtocol(), child_fds={}):
        pass


async def _run() -> None:
    await trioproc.run([TRUE])


async def _measure(case: Callable[[], Any], n: int) -> dict[str, list[float]]:
    stages: dict[str, list[float]] = {
        "before posix_spawn": [],
        "posix_spawn": [],
        "posix_spawn to reap": [],
        "reap to the end": [],
        "in all": [],
    }
    for i in range(n + 20):
        began = time.perf_counter()
        await case()
        ended = time.perf_counter()
        if i < 20:  # warm-up
            continue
        spawned = _marks["posix_spawn ends"]
        reaped = _marks["reap begins"]
        for name, seconds in (
            ("before posix_spawn", _marks["posix_spawn begins"] - began),
            ("posix_spawn", spawned - _marks["posix_spawn begins"]),
            ("posix_spawn to reap", reaped - spawned),
            ("reap to the end", ended - reaped),
            ("in all", ended - began),
        ):
            stages[name].append(seconds * 1e6)
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--only", choices=["block", "run"])
    args = parser.parse_args()
    _install()
    cases = {"spawn() block, no fds": _block, "run()": _run}
    if args.only is not None:
        cases = {name: case for name, case in cases.items() if args.only in name}
    if args.n == 0:  # the baseline for counting system calls
        return
    print(f"\nStages of one {TRUE}, median of {args.n} children, microseconds\n")
    print("| stage | " + " | ".join(cases) + " |")
    print("|---|" + "---:|" * len(cases))
    results = {name: trio.run(_measure, case, args.n) for name, case in cases.items()}
    for stage in next(iter(results.values())):
        cells = [f"{statistics.median(r[stage]):.0f}" for r in results.values()]
        print(f"| {stage} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
