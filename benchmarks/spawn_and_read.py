"""Spawn rate and stdout throughput: trioproc beside its peers, in one run.

What it measures (issue #2's closing figures):

* children spawned and reaped per second, one after another, for
  ``trioproc.run(["/bin/true"])``, ``subprocess.run(["/bin/true"])`` and
  ``trio.run_process(["/bin/true"])``;
* stdout MB/s reading 1 GiB from ``head -c 1G /dev/zero`` with trioproc
  (protocol mode and stream mode), ``trio.run_process`` and the shell pipe
  ``head -c 1G /dev/zero | cat >/dev/null``.

Peers run interleaved with trioproc (A B C A B C ...), so drift on a noisy
machine hits all of them; each figure is the median of the rounds, and the
ratios are computed round by round.

With ``--backends linux,portable`` the trioproc cases run once per backend
(``TRIOPROC_BACKEND``), interleaved with each other and the peers.

Run: ``.venv/bin/python benchmarks/spawn_and_read.py [--rounds N] [--quick]
[--backends linux,portable]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial

import trio

import trioproc

GIB = 1 << 30


def spawn_rate_subprocess(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        subprocess.run(["/bin/true"], check=True)
    return n / (time.perf_counter() - start)


def spawn_rate_trioproc(n: int) -> float:
    async def main() -> float:
        start = time.perf_counter()
        for _ in range(n):
            await trioproc.run(["/bin/true"])
        return n / (time.perf_counter() - start)

    return trio.run(main)


def spawn_rate_trio(n: int) -> float:
    async def main() -> float:
        start = time.perf_counter()
        for _ in range(n):
            await trio.run_process(["/bin/true"])
        return n / (time.perf_counter() - start)

    return trio.run(main)


class _Count(trioproc.ProcessProtocol):
    def __init__(self) -> None:
        self.received = 0

    def outReceived(self, data: bytes) -> None:
        self.received += len(data)


def read_trioproc_protocol(size: int) -> float:
    async def main() -> float:
        counter = _Count()
        start = time.perf_counter()
        async with trioproc.spawn(["head", "-c", str(size), "/dev/zero"], counter):
            pass
        elapsed = time.perf_counter() - start
        assert counter.received == size
        return size / elapsed / 1e6

    return trio.run(main)


def read_trioproc_stream(size: int) -> float:
    async def main() -> float:
        received = 0
        start = time.perf_counter()
        async with trioproc.spawn(["head", "-c", str(size), "/dev/zero"]) as child:
            assert child.stdout is not None
            while data := await child.stdout.receive_some():
                received += len(data)
        elapsed = time.perf_counter() - start
        assert received == size
        return size / elapsed / 1e6

    return trio.run(main)


def read_trio(size: int) -> float:
    async def main() -> float:
        received = 0
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            process = await nursery.start(
                partial(
                    trio.run_process,
                    ["head", "-c", str(size), "/dev/zero"],
                    stdout=subprocess.PIPE,
                )
            )
            while data := await process.stdout.receive_some(1 << 16):
                received += len(data)
        elapsed = time.perf_counter() - start
        assert received == size
        return size / elapsed / 1e6

    return trio.run(main)


def read_shell_pipe(size: int) -> float:
    start = time.perf_counter()
    subprocess.run(f"head -c {size} /dev/zero | cat >/dev/null", shell=True, check=True)
    return size / (time.perf_counter() - start) / 1e6


def _on(backend: str | None, case: Callable[[], float]) -> Callable[[], float]:
    """*case* run with ``TRIOPROC_BACKEND=backend`` (``None``: as it is)."""
    if backend is None:
        return case

    def run() -> float:
        before = os.environ.get("TRIOPROC_BACKEND")
        os.environ["TRIOPROC_BACKEND"] = backend
        try:
            return case()
        finally:
            if before is None:
                del os.environ["TRIOPROC_BACKEND"]
            else:
                os.environ["TRIOPROC_BACKEND"] = before

    return run


def _per_backend(
    name: str, case: Callable[[], float], backends: list[str] | None
) -> dict[str, Callable[[], float]]:
    if not backends:
        return {name: case}
    return {f"{name} [{backend}]": _on(backend, case) for backend in backends}


def _interleave(
    cases: dict[str, Callable[[], float]], rounds: int
) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            results[name].append(case())
    return results


def _report(title: str, unit: str, results: dict[str, list[float]], base: str) -> None:
    print(f"\n{title}")
    print(f"| {'case':<45} | {'median ' + unit:>14} | {'ratio to ' + base:>22} |")
    print(f"|{'-' * 47}|{'-' * 16}|{'-' * 24}|")
    for name, values in results.items():
        ratios = [v / b for v, b in zip(values, results[base], strict=False)]
        print(
            f"| {name:<45} | {statistics.median(values):>14,.0f} |"
            f" {statistics.median(ratios):>22.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument(
        "--backends",
        help="comma-separated TRIOPROC_BACKEND values to run trioproc on",
    )
    args = parser.parse_args()
    backends = args.backends.split(",") if args.backends else None
    children = 300 if args.quick else 1000
    size = (GIB // 8) if args.quick else GIB
    version = sys.version.split()[0]
    print(f"python {version}, trio {trio.__version__}, rounds {args.rounds}")
    spawn = _interleave(
        {
            "subprocess.run(['/bin/true'])": lambda: spawn_rate_subprocess(children),
            **_per_backend(
                "trioproc.run(['/bin/true'])",
                lambda: spawn_rate_trioproc(children),
                backends,
            ),
            "trio.run_process(['/bin/true'])": lambda: spawn_rate_trio(children),
        },
        args.rounds,
    )
    _report(
        f"Spawn and reap, sequentially ({children} children a round)",
        "children/s",
        spawn,
        "subprocess.run(['/bin/true'])",
    )
    read = _interleave(
        {
            "shell: head | cat >/dev/null": lambda: read_shell_pipe(size),
            **_per_backend(
                "trioproc.spawn, protocol",
                lambda: read_trioproc_protocol(size),
                backends,
            ),
            **_per_backend(
                "trioproc.spawn, stream", lambda: read_trioproc_stream(size), backends
            ),
            "trio.run_process, stream": lambda: read_trio(size),
        },
        args.rounds,
    )
    _report(
        f"stdout throughput ({size >> 20} MiB from head -c)",
        "MB/s",
        read,
        "shell: head | cat >/dev/null",
    )


if __name__ == "__main__":
    main()
