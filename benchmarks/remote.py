"""What ``host=`` costs: a remote child on 127.0.0.1 beside a local child and
beside plain ``ssh`` driven by ``trio.run_process``, one run, with ratios.

* round trip: children run one after another, each ``true`` (for ssh: a new
  connection, key exchange and login every time -- that is the floor);
* throughput: one child writes 64 MiB to stdout, the parent reads it all.

The server is the tests' throwaway sshd (`tests.sshd`), started here and
stopped at the end; it needs root (and installs openssh-server with apt
where it is missing).

Run: ``.venv/bin/python benchmarks/remote.py [--n N] [--mib M]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parent.parent))
import trioproc
from tests.sshd import TestSSHD

HOST = "127.0.0.1"


def _ssh_argv(options: list[str], command: str) -> list[str]:
    argv = ["ssh", "-T"]
    for option in options:
        argv += ["-o", option]
    return [*argv, "--", HOST, command]


async def round_trips(n: int, options: list[str]) -> dict[str, float]:
    """Seconds per child, for each way of running ``true``."""
    times: dict[str, float] = {}
    started = time.perf_counter()
    for _ in range(n):
        await trioproc.run(["true"])
    times["trioproc local"] = (time.perf_counter() - started) / n
    started = time.perf_counter()
    for _ in range(n):
        await trio.run_process(_ssh_argv(options, "true"))
    times["plain ssh (trio.run_process)"] = (time.perf_counter() - started) / n
    started = time.perf_counter()
    for _ in range(n):
        await trioproc.run(["true"], host=HOST, ssh_options=options)
    times["trioproc host="] = (time.perf_counter() - started) / n
    return times


async def throughput(mib: int, options: list[str]) -> dict[str, float]:
    """MB/s read from a child writing *mib* MiB to stdout."""
    command = ["head", "-c", str(mib << 20), "/dev/zero"]
    rates: dict[str, float] = {}

    async def drain(transport: trioproc.ProcessTransport) -> None:
        assert transport.stdout is not None
        total = 0
        while chunk := await transport.stdout.receive_some(1 << 16):
            total += len(chunk)
        assert total == mib << 20

    for name, kwargs in (
        ("trioproc local", {}),
        ("trioproc host=", {"host": HOST, "ssh_options": options}),
    ):
        started = time.perf_counter()
        async with trioproc.spawn(command, **kwargs) as transport:  # type: ignore[arg-type]
            await drain(transport)
        rates[name] = mib * 1.048576 / (time.perf_counter() - started)
    started = time.perf_counter()
    await trio.run_process(
        _ssh_argv(options, " ".join(command)), stdout=subprocess.DEVNULL
    )
    rates["plain ssh (trio.run_process, to /dev/null)"] = (
        mib * 1.048576 / (time.perf_counter() - started)
    )
    return rates


def _print(title: str, figures: dict[str, float], unit: str, base: str) -> None:
    print(title)
    for name, value in figures.items():
        print(f"  {name:44} {value:10.4g} {unit}  x{value / figures[base]:.2f}")


async def main(n: int, mib: int) -> None:
    server = TestSSHD.start()
    try:
        options = server.options()
        await trioproc.run(["true"], host=HOST, ssh_options=options)  # warm up
        trips = await round_trips(n, options)
        _print(f"round trip, {n} children each", trips, "s", "trioproc local")
        rates = await throughput(mib, options)
        _print(f"throughput, {mib} MiB", rates, "MB/s", "trioproc local")
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--mib", type=int, default=64)
    args = parser.parse_args()
    trio.run(main, args.n, args.mib)
