"""What one stream-mode read costs, beside the least a Trio read can cost.

Every case reads 16 KiB at a time from a source that is never empty, so no
read waits and only the cost per call is measured, not the pipe's dynamics:

* ``os.read`` alone (the reference);
* ``+ cancel point``: `trio.lowlevel.checkpoint_if_cancelled` before it;
* ``Trio floor``: that, and a scheduler pass every 16 calls -- the least a
  Trio read that keeps finding data must do (a cancel point on every call,
  a schedule point at least every 16, as trioproc's streams promise);
* ``trioproc receive_some``: ``child.stdout.receive_some(16384)``.

The source is ``/dev/zero`` put in the place of the child's stdout pipe
(``dup2`` onto the stream's own fd, a private attribute; the pipe comes back
before the block ends). Each round runs every case in turn; a figure is the
median over rounds, the ratio the median of round-by-round ratios to
trioproc's.

Run: ``.venv/bin/python benchmarks/stream_read_cost.py [--rounds N] [--calls N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import trio

import trioproc

SIZE = 1 << 14


async def _measure(rounds: int, calls: int) -> dict[str, list[float]]:
    async with trioproc.spawn(["sleep", "60"]) as child:
        stream = child.stdout
        reader = None if stream is None else stream._pull  # the pipe's reader
        if stream is None or reader is None:
            raise SystemExit("stream reads are pulled by the reader on Linux only")
        fd: int = reader.fd  # type: ignore[attr-defined]
        zero = os.open("/dev/zero", os.O_RDONLY | os.O_NONBLOCK)
        pipe = os.dup(fd)
        os.dup2(zero, fd)
        os.close(zero)
        try:
            results = await _rounds(stream, fd, rounds, calls)
        finally:
            os.dup2(pipe, fd)
            os.close(pipe)
            child.signalProcess("KILL")
    return results


async def _rounds(
    stream: trioproc.OutputStream, fd: int, rounds: int, calls: int
) -> dict[str, list[float]]:
    checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled

    async def bare() -> None:
        for _ in range(calls):
            os.read(fd, SIZE)

    async def cancel_point() -> None:
        for _ in range(calls):
            await checkpoint_if_cancelled()
            os.read(fd, SIZE)

    async def floor() -> None:
        for i in range(calls):
            await checkpoint_if_cancelled()
            os.read(fd, SIZE)
            if i % 16 == 15:
                await trio.lowlevel.cancel_shielded_checkpoint()

    async def ours() -> None:
        for _ in range(calls):
            await stream.receive_some(SIZE)

    cases: dict[str, Callable[[], Awaitable[None]]] = {
        "os.read (reference)": bare,
        "+ cancel point": cancel_point,
        "Trio floor": floor,
        "trioproc receive_some": ours,
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            started = time.perf_counter()
            await case()
            results[name].append((time.perf_counter() - started) / calls * 1e6)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    if sys.platform != "linux":
        raise SystemExit("stream reads are pulled by the reader on Linux only")
    results = trio.run(_measure, args.rounds, args.calls)
    ours = results["trioproc receive_some"]
    print(
        f"\nOne read of {SIZE // 1024} KiB that finds data, "
        f"{args.calls:,} calls, {args.rounds} rounds\n"
    )
    print("| case | us per call | ratio to trioproc |")
    print("|---|---:|---:|")
    for name, times in results.items():
        ratio = statistics.median(t / o for t, o in zip(times, ours, strict=True))
        print(f"| {name} | {statistics.median(times):.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
