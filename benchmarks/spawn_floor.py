"""Where the time of a Trio spawn goes: from the bare system calls up to
``trioproc.run``, one layer at a time, beside ``subprocess.run``.

Each layer adds one thing to the one above it:

* ``posix_spawn + waitpid``: the system calls, blocking (the reference);
* ``+ pidfd wait in Trio``: the least any Trio library must do to wait for
  a child without blocking the event loop; beside it, the same with 200 us
  of busy work between the spawn and the wait (how much of the parent's
  work the child's own run hides);
* ``+ a nursery and a reaper task``: the structure that lets a child be
  watched while other code runs, and be cancelled;
* ``trioproc.spawn, no fds``: the whole block (transport, protocol, reaper);
* ``trioproc.run``: stdout and stderr collected through two pipes and pumps;
* ``trioproc.run, no capture``: the same, writing to the parent's stdout.

Run: ``.venv/bin/python benchmarks/spawn_floor.py [--rounds N] [--n N]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parent))
import _harness

import trioproc

TRUE = "/bin/true"


def _rate(n: int, started: float) -> _harness.Figures:
    return {"per_s": n / (time.perf_counter() - started)}


def subprocess_run(n: int) -> _harness.Figures:
    started = time.perf_counter()
    for _ in range(n):
        subprocess.run([TRUE], check=True)
    return _rate(n, started)


def posix_spawn_waitpid(n: int) -> _harness.Figures:
    started = time.perf_counter()
    for _ in range(n):
        os.waitpid(os.posix_spawn(TRUE, [TRUE], os.environ), 0)
    return _rate(n, started)


async def _pidfd_wait(pid: int) -> None:
    pidfd = os.pidfd_open(pid)
    try:
        await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)
    os.waitpid(pid, 0)  # noqa: ASYNC222 - the pidfd said it has exited


async def pidfd_in_trio(n: int) -> None:
    for _ in range(n):
        # posix_spawn returns once the child has exec'd: what trio does too.
        await _pidfd_wait(os.posix_spawn(TRUE, [TRUE], os.environ))  # noqa: ASYNC221


#: Work done between the spawn and the wait, to see how much of it the
#: child's own run hides.
BUSY_AFTER_SPAWN = 200e-6


async def pidfd_in_trio_busy(n: int) -> None:
    for _ in range(n):
        pid = os.posix_spawn(TRUE, [TRUE], os.environ)  # noqa: ASYNC221
        until = time.perf_counter() + BUSY_AFTER_SPAWN
        while time.perf_counter() < until:
            pass
        await _pidfd_wait(pid)


async def nursery_and_reaper(n: int) -> None:
    for _ in range(n):
        pid = os.posix_spawn(TRUE, [TRUE], os.environ)  # noqa: ASYNC221
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pidfd_wait, pid)


async def trioproc_spawn_no_fds(n: int) -> None:
    for _ in range(n):
        async with trioproc.spawn([TRUE], trioproc.ProcessProtocol(), child_fds={}):
            pass


async def trioproc_run(n: int) -> None:
    for _ in range(n):
        await trioproc.run([TRUE])


async def trioproc_run_no_capture(n: int) -> None:
    for _ in range(n):
        await trioproc.run([TRUE], capture_output=False)


def _in_trio(
    case: Callable[[int], Awaitable[None]],
) -> Callable[[int], _harness.Figures]:
    def run(n: int) -> _harness.Figures:
        async def main() -> _harness.Figures:
            await case(10)  # warm-up
            started = time.perf_counter()
            await case(n)
            return _rate(n, started)

        return trio.run(main)

    return run


CASES: dict[str, Callable[[int], _harness.Figures]] = {
    "subprocess.run": subprocess_run,
    "posix_spawn + waitpid (reference)": posix_spawn_waitpid,
    "+ pidfd wait in Trio": _in_trio(pidfd_in_trio),
    "  (the same, 200 us of work after the spawn)": _in_trio(pidfd_in_trio_busy),
    "+ a nursery and a reaper task": _in_trio(nursery_and_reaper),
    "trioproc.spawn, no fds": _in_trio(trioproc_spawn_no_fds),
    "trioproc.run": _in_trio(trioproc_run),
    "trioproc.run, no capture": _in_trio(trioproc_run_no_capture),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    results = _harness.interleave(
        {name: (lambda case=case: case(args.n)) for name, case in CASES.items()},
        args.rounds,
    )
    _harness.report(
        f"Spawn and reap {TRUE}, {args.n} one after another, {args.rounds} rounds",
        results,
        "subprocess.run",
        [("per_s", "children/s", ",.0f")],
    )


if __name__ == "__main__":
    main()
