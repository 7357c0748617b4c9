"""What a cgroup of its own costs a spawn: N sequential spawn + reap of
``/bin/true`` through trioproc's ``posix_spawn`` path, without a cgroup, with
the child born in a new cgroup (mkdir, the parent's move in and back out,
rmdir), and with only the moves (one cgroup reused); then whole
``trioproc.run()`` calls with and without ``cgroup=True`` (the block's stop
sequence and the cgroup's removal included), beside ``subprocess.run``. One
run; rates, and ratios to the plain path and to ``subprocess.run``.

Needs a writable cgroup-v2 subtree (root, or a delegated one).

Run: ``.venv/bin/python benchmarks/cgroup_spawn.py [--n N]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from collections.abc import Callable

from trioproc._options import SpawnOptions
from trioproc._os._cgroup import ChildCgroup
from trioproc._os._launch import prepare

TRUE = "/bin/true"
OPTIONS = SpawnOptions.check([TRUE], child_fds={})


def subprocess_run(n: int) -> None:
    for _ in range(n):
        subprocess.run([TRUE], check=True)


def plain(n: int) -> None:
    for _ in range(n):
        os.waitpid(prepare(OPTIONS).start(), 0)


def own_cgroup_each(n: int) -> None:
    for _ in range(n):
        cgroup = ChildCgroup.create()
        os.waitpid(prepare(OPTIONS).start(cgroup=cgroup), 0)
        # /bin/true has exited and been reaped: the cgroup is empty.
        cgroup.remove()


def moves_only(n: int) -> None:
    cgroup = ChildCgroup.create()
    try:
        for _ in range(n):
            os.waitpid(prepare(OPTIONS).start(cgroup=cgroup), 0)
    finally:
        cgroup.remove()


def trioproc_run(n: int, *, cgroup: bool = False) -> None:
    import trio

    import trioproc

    async def loop() -> None:
        for _ in range(n):
            await trioproc.run([TRUE], cgroup=cgroup)

    trio.run(loop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n
    cases: dict[str, Callable[[int], None]] = {
        "subprocess.run": subprocess_run,
        "trioproc posix_spawn, no cgroup": plain,
        "+ a new cgroup per child": own_cgroup_each,
        "+ moves only (one cgroup)": moves_only,
        "trioproc.run()": trioproc_run,
        "trioproc.run(cgroup=True)": lambda n: trioproc_run(n, cgroup=True),
    }
    rates = {}
    for name, case in cases.items():
        case(min(n, 50))  # warm up
        started = time.perf_counter()
        case(n)
        rates[name] = n / (time.perf_counter() - started)
    base = rates["trioproc posix_spawn, no cgroup"]
    print(f"{n} sequential spawn + reap of {TRUE}")
    peer = rates["subprocess.run"]
    print(
        f"{'case':34} {'spawns/s':>9} {'us/spawn':>9} {'vs plain':>9} "
        f"{'vs subprocess.run':>18}"
    )
    for name, rate in rates.items():
        print(
            f"{name:34} {rate:9.0f} {1e6 / rate:9.1f} {rate / base:9.2f} "
            f"{rate / peer:18.2f}"
        )
    extra = 1e6 / rates["+ a new cgroup per child"] - 1e6 / base
    print(f"a cgroup of its own adds {extra:.0f} us per spawn")


if __name__ == "__main__":
    main()
