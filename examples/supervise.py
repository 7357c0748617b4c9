"""Supervise a small fleet: readiness, crashes with backoff, clean shutdown.

What it shows: three children under one trioproc.Supervisor -- "api", a
process that is ready once it prints "listening"; "worker", a process that
crashes every couple of seconds and is restarted after a backoff that grows
(0.5 s, 1 s, 2 s ...); and "clock", a Trio task supervised beside them. Every
output line is prefixed with its child's name, and lifecycle events are shown
as they happen. Ctrl-C (or the time limit) stops them all, last started
first, and the program exits only once every process is reaped.

How to poke it: `python examples/supervise.py [SECONDS]` (default: until
Ctrl-C). Kill "api" from another terminal with `kill -9 PID` and watch it
come back.
"""

from __future__ import annotations

import sys

import trio

import trioproc

API = """
import time
time.sleep(0.5)
print("listening on :8000", flush=True)
while True:
    time.sleep(1.0)
    print("served a request", flush=True)
"""

WORKER = """
import os, time
print(f"working (pid {os.getpid()})", flush=True)
time.sleep(2.0)
print("giving up: out of coffee", flush=True)
raise SystemExit(1)
"""


async def clock(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    task_status.started()
    start = trio.current_time()
    while True:
        await trio.sleep(1.0)
        print(f"clock | {trio.current_time() - start:4.1f}s")


def show(event: trioproc.SupervisorEvent) -> None:
    print(f"supervisor: {event.message}")


async def main(seconds: float | None) -> None:
    async with trioproc.Supervisor(
        "one_for_one", max_restarts=10, max_seconds=30, on_event=show
    ) as sup:
        await sup.start(
            trioproc.ChildSpec(
                "api",
                argv=[sys.executable, "-c", API],
                ready=trioproc.ready_on_output(rb"listening"),
            )
        )
        await sup.start(
            trioproc.ChildSpec(
                "worker",
                argv=[sys.executable, "-c", WORKER],
                backoff=trioproc.Backoff(initial=0.5, factor=2, cap=4, jitter=0),
            )
        )
        await sup.start(trioproc.ChildSpec("clock", task=clock))
        if seconds is None:
            await trio.sleep_forever()
        await trio.sleep(seconds)
    print("all children stopped")


if __name__ == "__main__":
    try:
        trio.run(main, float(sys.argv[1]) if len(sys.argv) > 1 else None)
    except KeyboardInterrupt:
        print("interrupted: all children stopped")
