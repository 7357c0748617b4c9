"""Fan out: many real children at once, at most a few at a time.

What it shows: eight worker processes run under one nursery, no more than
three at once (a trio.CapacityLimiter); each worker's output is printed as it
arrives, prefixed with its name, and a table of exit statuses ends the run.
One worker fails on purpose, and it does not disturb the others.

How to poke it: `python examples/fan_out.py [WORKERS] [AT_ONCE]`; press Ctrl-C
to see every running child stopped and reaped before the program exits.
"""

from __future__ import annotations

import sys
import time

import trio

import trioproc

WORKER = """
import sys, time
name, steps = sys.argv[1], int(sys.argv[2])
for step in range(1, steps + 1):
    time.sleep(0.1)
    print(f"step {step}/{steps}", flush=True)
if name == "worker-5":
    print("worker-5: giving up on purpose", file=sys.stderr)
    sys.exit(3)
print("done")
"""


async def work(
    name: str, steps: int, limiter: trio.CapacityLimiter, table: dict[str, str]
) -> None:
    async with limiter:
        started = time.monotonic()
        async with trioproc.spawn(
            [sys.executable, "-c", WORKER, name, str(steps)], new_session=True
        ) as child:
            assert child.stdout is not None
            assert child.stderr is not None

            async def show(stream: trio.abc.ReceiveStream, mark: str) -> None:
                buffered = b""
                while data := await stream.receive_some():
                    buffered += data
                    *lines, buffered = buffered.split(b"\n")
                    for line in lines:
                        print(f"{name:>9} {mark} {line.decode()}")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(show, child.stdout, "|")
                nursery.start_soon(show, child.stderr, "!")
            code = await child.wait()
        table[name] = f"exit {code} after {time.monotonic() - started:.1f}s"


async def main(workers: int, at_once: int) -> int:
    limiter = trio.CapacityLimiter(at_once)
    table: dict[str, str] = {}
    print(f"fan-out: {workers} workers, {at_once} at a time")
    async with trio.open_nursery() as nursery:
        for n in range(1, workers + 1):
            nursery.start_soon(work, f"worker-{n}", 2 + n % 3, limiter, table)
    print("\nstatus:")
    for name in sorted(table, key=lambda name: int(name.split("-")[1])):
        print(f"  {name:>9}: {table[name]}")
    return 1 if any(not status.startswith("exit 0") for status in table.values()) else 0


if __name__ == "__main__":
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    at_once = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    failures = trio.run(main, workers, at_once)
    print("one worker failed, as planned" if failures else "all workers succeeded")
