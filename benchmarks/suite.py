"""The benchmark suite: trioproc beside every peer, measured in one run.

`make bench` runs it: every scenario, each case in a fresh interpreter (so its
peak RSS is its own), peers interleaved with trioproc round by round (so drift
on a noisy machine hits all of them), medians of the rounds, ratios to
trioproc computed round by round. It writes benchmarks/RESULTS.md,
benchmarks/results.png, and the table in README.md between its markers.

Scenarios: spawn + reap of /bin/true (one at a time, and 50 at a time);
stdout and stdin MB/s (1 GiB, stdin with backpressure; send_all in 1 MiB calls,
and in 64 KiB calls); echo round trips of 100-byte lines through `cat` with
parent and child on one CPU; 1000 idle `sleep` children at once (time to start
all, time to stop and reap all, parent RSS per child); pty throughput (100 MB
from `cat` on a pseudo-terminal).

Peers, each in its idiomatic form: subprocess, asyncio, trio
(run_process / lowlevel.open_process), anyio (open_process on the trio
backend), Twisted (reactor.spawnProcess with a ProcessProtocol), ptyprocess
and pexpect for ptys; and the physical references -- the shell pipe and a bare
posix_spawn loop. Peers install with `pip install --group bench`.

Run: `.venv/bin/python benchmarks/suite.py [--rounds 3] [--quick]`
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import functools
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).parent))
import _harness
import flow
import pty_throughput

import trioproc

HERE = Path(__file__).parent
Mark = Callable[[], None]
Case = Callable[[int, Mark], dict[str, float]]

# --- helpers -----------------------------------------------------------------


def _timed(mark: Mark, work: Callable[[], object]) -> float:
    mark()
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _trio_case(fn: Callable[[int], Awaitable[object]]) -> Case:
    def case(n: int, mark: Mark) -> dict[str, float]:
        trio.run(fn, min(n, 10))  # warm-up
        return {"seconds": _timed(mark, lambda: trio.run(fn, n))}

    return case


def _asyncio_case(fn: Callable[[int], Awaitable[object]]) -> Case:
    def case(n: int, mark: Mark) -> dict[str, float]:
        asyncio.run(fn(min(n, 10)))  # type: ignore[arg-type]
        return {"seconds": _timed(mark, lambda: asyncio.run(fn(n)))}  # type: ignore[arg-type]

    return case


def _anyio_case(fn: Callable[[int], Awaitable[object]]) -> Case:
    def case(n: int, mark: Mark) -> dict[str, float]:
        import anyio

        anyio.run(fn, min(n, 10), backend="trio")
        return {"seconds": _timed(mark, lambda: anyio.run(fn, n, backend="trio"))}

    return case


def _sync_case(fn: Callable[[int], object]) -> Case:
    def case(n: int, mark: Mark) -> dict[str, float]:
        fn(min(n, 10))
        return {"seconds": _timed(mark, lambda: fn(n))}

    return case


def _twisted_case(start: Callable[[int, Callable[[], None]], None]) -> Case:
    """A Twisted case: *start(n, done)* begins the work in the reactor and
    calls *done* when it is over. The reactor runs once: warm-up inside."""

    def case(n: int, mark: Mark) -> dict[str, float]:
        from twisted.internet import reactor

        figures: dict[str, float] = {}

        def measured() -> None:
            mark()
            began = time.perf_counter()

            def done() -> None:
                figures["seconds"] = time.perf_counter() - began
                reactor.stop()  # type: ignore[attr-defined]

            start(n, done)

        reactor.callWhenRunning(start, min(n, 10), measured)  # type: ignore[attr-defined]
        reactor.run()  # type: ignore[attr-defined]  # its SIGCHLD handler reaps
        return figures

    return case


# --- spawn + reap, one at a time -----------------------------------------------


def posix_spawn_loop(n: int) -> None:
    for _ in range(n):
        os.waitpid(os.posix_spawn("/bin/true", ["true"], os.environ), 0)


def subprocess_run(n: int) -> None:
    for _ in range(n):
        subprocess.run(["/bin/true"], check=True)


async def asyncio_spawn(n: int) -> None:
    for _ in range(n):
        process = await asyncio.create_subprocess_exec("/bin/true")
        await process.wait()


async def trio_spawn(n: int) -> None:
    for _ in range(n):
        await trio.run_process(["/bin/true"])


async def anyio_spawn(n: int) -> None:
    import anyio

    for _ in range(n):
        await anyio.run_process(["/bin/true"])


async def trioproc_spawn(n: int) -> None:
    for _ in range(n):
        await trioproc.run(["/bin/true"])


def twisted_spawn(n: int, done: Callable[[], None], at_once: int = 1) -> None:
    from twisted.internet import protocol, reactor

    state = {"started": 0, "ended": 0}

    class Ends(protocol.ProcessProtocol):
        def processEnded(self, reason: Any) -> None:
            state["ended"] += 1
            if state["ended"] == n:
                done()
            elif state["started"] < n:
                spawn()

    def spawn() -> None:
        state["started"] += 1
        reactor.spawnProcess(Ends(), "/bin/true", ["true"], env=os.environ)  # type: ignore[attr-defined]

    for _ in range(min(at_once, n)):
        spawn()


# --- spawn + reap, 50 at a time -----------------------------------------------

AT_ONCE = 50


def posix_spawn_50(n: int) -> None:
    running = 0
    for _ in range(n):
        if running == AT_ONCE:
            os.wait()
            running -= 1
        os.posix_spawn("/bin/true", ["true"], os.environ)
        running += 1
    for _ in range(running):
        os.wait()


def subprocess_50(n: int) -> None:
    with concurrent.futures.ThreadPoolExecutor(AT_ONCE) as pool:
        list(pool.map(lambda _: subprocess.run(["/bin/true"], check=True), range(n)))


async def asyncio_50(n: int) -> None:
    limit = asyncio.Semaphore(AT_ONCE)

    async def one() -> None:
        async with limit:
            process = await asyncio.create_subprocess_exec("/bin/true")
            await process.wait()

    await asyncio.gather(*(one() for _ in range(n)))


async def _trio_limited(n: int, one: Callable[[], Awaitable[object]]) -> None:
    limit = trio.CapacityLimiter(AT_ONCE)

    async def limited() -> None:
        async with limit:
            await one()

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(limited)


async def _trio_true() -> None:
    await trio.run_process(["/bin/true"])


async def _trioproc_true() -> None:
    await trioproc.run(["/bin/true"])


async def trio_50(n: int) -> None:
    await _trio_limited(n, _trio_true)


async def trioproc_50(n: int) -> None:
    await _trio_limited(n, _trioproc_true)


async def anyio_50(n: int) -> None:
    import anyio

    limit = anyio.CapacityLimiter(AT_ONCE)

    async def one() -> None:
        async with limit:
            await anyio.run_process(["/bin/true"])

    async with anyio.create_task_group() as group:
        for _ in range(n):
            group.start_soon(one)


# --- stdout and stdin, 1 GiB -------------------------------------------------


HEAD = ["head", "-c"]


class _Count(trioproc.ProcessProtocol):
    received = 0

    def outReceived(self, data: bytes) -> None:
        self.received += len(data)


async def trioproc_stdout_protocol(size: int) -> None:
    counter = _Count()
    async with trioproc.spawn([*HEAD, str(size), "/dev/zero"], counter):
        pass
    assert counter.received == size


async def trioproc_stdout_stream(size: int) -> None:
    received = 0
    async with trioproc.spawn([*HEAD, str(size), "/dev/zero"]) as child:
        assert child.stdout is not None
        while data := await child.stdout.receive_some():
            received += len(data)
    assert received == size


async def trio_stdout(size: int) -> None:
    process = await trio.lowlevel.open_process(
        [*HEAD, str(size), "/dev/zero"], stdout=subprocess.PIPE
    )
    received = 0
    try:
        assert process.stdout is not None
        while data := await process.stdout.receive_some(1 << 16):
            received += len(data)
    finally:
        await flow._trio_close(process)
    assert received == size


async def asyncio_stdout(size: int) -> None:
    process = await asyncio.create_subprocess_exec(
        *HEAD, str(size), "/dev/zero", stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    received = 0
    while data := await process.stdout.read(1 << 16):
        received += len(data)
    await process.wait()
    assert received == size


def subprocess_stdout(size: int) -> None:
    process = subprocess.Popen(
        ["head", "-c", str(size), "/dev/zero"], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    fd, received = process.stdout.fileno(), 0
    while data := os.read(fd, 1 << 16):
        received += len(data)
    process.wait()
    assert received == size


async def anyio_stdout(size: int) -> None:
    import anyio

    received = 0
    async with await anyio.open_process(
        ["head", "-c", str(size), "/dev/zero"]
    ) as process:
        assert process.stdout is not None
        async for data in process.stdout:
            received += len(data)
    assert received == size


def twisted_stdout(size: int, done: Callable[[], None]) -> None:
    from twisted.internet import protocol, reactor

    class Count(protocol.ProcessProtocol):
        received = 0

        def outReceived(self, data: bytes) -> None:
            self.received += len(data)

        def processEnded(self, reason: Any) -> None:
            assert self.received == size
            done()

    reactor.spawnProcess(
        Count(), "head", ["head", "-c", str(size), "/dev/zero"], env=os.environ
    )  # type: ignore[attr-defined]


# The size Trio code typically hands send_all (trio's own receive_some default).
SMALL_CHUNK = bytes(1 << 16)


def subprocess_stdin(size: int) -> None:
    process = subprocess.Popen(
        ["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    assert process.stdin is not None
    for offset in range(0, size, len(flow.CHUNK)):
        process.stdin.write(flow.CHUNK[: size - offset])
    process.stdin.close()
    process.wait()


async def anyio_stdin(size: int) -> None:
    import anyio

    async with await anyio.open_process(["cat"], stdout=subprocess.DEVNULL) as process:
        assert process.stdin is not None
        for offset in range(0, size, len(flow.CHUNK)):
            await process.stdin.send(flow.CHUNK[: size - offset])
        await process.stdin.aclose()


def twisted_stdin(size: int, done: Callable[[], None]) -> None:
    from twisted.internet import protocol, reactor

    class Feeder:
        """A streaming producer, the Twisted way to respect backpressure."""

        def __init__(self, transport: Any) -> None:
            self.transport, self.remaining, self.paused = transport, size, False

        def resumeProducing(self) -> None:
            self.paused = False
            while not self.paused and self.remaining > 0:
                self.transport.write(flow.CHUNK[: self.remaining])
                self.remaining -= len(flow.CHUNK)
            if self.remaining <= 0:
                self.transport.unregisterProducer()
                self.transport.closeStdin()

        def pauseProducing(self) -> None:
            self.paused = True

        def stopProducing(self) -> None:
            self.remaining = 0

    class Cat(protocol.ProcessProtocol):
        def connectionMade(self) -> None:
            feeder = Feeder(self.transport)
            self.transport.registerProducer(feeder, True)
            feeder.resumeProducing()

        def processEnded(self, reason: Any) -> None:
            done()

    null = os.open(os.devnull, os.O_WRONLY)
    reactor.spawnProcess(
        Cat(), "cat", ["cat"], env=os.environ, childFDs={0: "w", 1: null, 2: 2}
    )  # type: ignore[attr-defined]
    os.close(null)


# --- echo round trips through cat, on one CPU ----------------------------------

LINE = b"x" * 99 + b"\n"


def subprocess_echo(n: int) -> None:
    process = subprocess.Popen(
        ["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
    )
    assert process.stdin is not None
    assert process.stdout is not None
    write, read = process.stdin.fileno(), process.stdout.fileno()
    for _ in range(n):
        os.write(write, LINE)
        got = 0
        while got < len(LINE):
            got += len(os.read(read, 4096))
    process.stdin.close()
    process.wait()


async def asyncio_echo(n: int) -> None:
    process = await asyncio.create_subprocess_exec(
        "cat", stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert process.stdin is not None
    assert process.stdout is not None
    for _ in range(n):
        process.stdin.write(LINE)
        await process.stdin.drain()
        await process.stdout.readexactly(len(LINE))
    process.stdin.close()
    await process.wait()


async def _echo(
    stdin: trio.abc.SendStream, stdout: trio.abc.ReceiveStream, n: int
) -> None:
    """*n* round trips of LINE through Trio streams (trio's and trioproc's)."""
    for _ in range(n):
        await stdin.send_all(LINE)
        got = 0
        while got < len(LINE):
            got += len(await stdout.receive_some(4096))


async def trio_echo(n: int) -> None:
    process = await trio.lowlevel.open_process(
        ["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert process.stdin is not None
    assert process.stdout is not None
    await _echo(process.stdin, process.stdout, n)
    await flow._trio_close(process)


async def anyio_echo(n: int) -> None:
    import anyio

    async with await anyio.open_process(["cat"]) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        for _ in range(n):
            await process.stdin.send(LINE)
            got = 0
            while got < len(LINE):
                got += len(await process.stdout.receive(4096))
        await process.stdin.aclose()


async def trioproc_echo(n: int) -> None:
    async with trioproc.spawn(["cat"]) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        await _echo(child.stdin, child.stdout, n)


class _Echoer(trioproc.ProcessProtocol):
    """The Twisted-style way: write the next line when the last came back."""

    def __init__(self, n: int) -> None:
        self.left, self.got = n, 0
        self.done = trio.Event()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(LINE)

    def outReceived(self, data: bytes) -> None:
        self.got += len(data)
        if self.got >= len(LINE):
            self.got -= len(LINE)
            self.left -= 1
            assert self.transport is not None
            if self.left:
                self.transport.write(LINE)
            else:
                self.done.set()


async def trioproc_echo_protocol(n: int) -> None:
    echoer = _Echoer(n)
    async with trioproc.spawn(["cat"], echoer):
        await echoer.done.wait()


def twisted_echo(n: int, done: Callable[[], None]) -> None:
    from twisted.internet import protocol, reactor

    class Echoer(protocol.ProcessProtocol):
        left, got = n, 0

        def connectionMade(self) -> None:
            self.transport.write(LINE)

        def outReceived(self, data: bytes) -> None:
            self.got += len(data)
            if self.got >= len(LINE):
                self.got -= len(LINE)
                self.left -= 1
                if self.left:
                    self.transport.write(LINE)
                else:
                    self.transport.closeStdin()

        def processEnded(self, reason: Any) -> None:
            done()

    reactor.spawnProcess(Echoer(), "cat", ["cat"], env=os.environ)  # type: ignore[attr-defined]


def _one_cpu(case: Case) -> Case:
    """Parent and child on one CPU: children inherit the affinity."""

    def pinned(n: int, mark: Mark) -> dict[str, float]:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        return case(n, mark)

    return pinned


# --- 1000 idle children ------------------------------------------------------

SLEEP = ["sleep", "3600"]


def _sleepers(
    n: int, mark: Mark, start: Callable[[int], Any], stop: Callable[[Any], None]
) -> dict[str, float]:
    stop(start(2))  # warm-up
    mark()
    before = _harness.peak_rss_mib()
    began = time.perf_counter()
    handle = start(n)
    started = time.perf_counter()
    rss = _harness.peak_rss_mib() - before
    stop(handle)
    return {
        "seconds": time.perf_counter() - began,
        "start_s": started - began,
        "stop_s": time.perf_counter() - started,
        "kib_per_child": rss * 1024 / n,
    }


def posix_spawn_sleepers(n: int, mark: Mark) -> dict[str, float]:
    def start(count: int) -> list[int]:
        return [os.posix_spawn("/bin/sleep", SLEEP, os.environ) for _ in range(count)]

    def stop(pids: list[int]) -> None:
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        for pid in pids:
            os.waitpid(pid, 0)

    return _sleepers(n, mark, start, stop)


def subprocess_sleepers(n: int, mark: Mark) -> dict[str, float]:
    null = subprocess.DEVNULL

    def start(count: int) -> list[subprocess.Popen[bytes]]:
        return [
            subprocess.Popen(SLEEP, stdin=null, stdout=null, stderr=null)
            for _ in range(count)
        ]

    def stop(processes: list[subprocess.Popen[bytes]]) -> None:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()

    return _sleepers(n, mark, start, stop)


def _async_sleepers(
    n: int,
    mark: Mark,
    runner: Callable[[Callable[[], Awaitable[dict[str, float]]]], dict[str, float]],
    start_one: Callable[[], Awaitable[Any]],
    stop_all: Callable[[list[Any]], Awaitable[None]],
) -> dict[str, float]:
    async def main() -> dict[str, float]:
        await stop_all([await start_one() for _ in range(2)])
        mark()
        before = _harness.peak_rss_mib()
        began = time.perf_counter()
        handles = [await start_one() for _ in range(n)]
        started = time.perf_counter()
        rss = _harness.peak_rss_mib() - before
        await stop_all(handles)
        return {
            "seconds": time.perf_counter() - began,
            "start_s": started - began,
            "stop_s": time.perf_counter() - started,
            "kib_per_child": rss * 1024 / n,
        }

    return runner(main)


def asyncio_sleepers(n: int, mark: Mark) -> dict[str, float]:
    null = subprocess.DEVNULL

    async def start_one() -> Any:
        return await asyncio.create_subprocess_exec(
            *SLEEP, stdin=null, stdout=null, stderr=null
        )

    async def stop_all(processes: list[Any]) -> None:
        for process in processes:
            process.terminate()
        await asyncio.gather(*(process.wait() for process in processes))

    return _async_sleepers(
        n, mark, lambda main: asyncio.run(main()), start_one, stop_all
    )


def trio_sleepers(n: int, mark: Mark) -> dict[str, float]:
    async def start_one() -> Any:
        return await trio.lowlevel.open_process(SLEEP)

    async def stop_all(processes: list[Any]) -> None:
        for process in processes:
            process.terminate()
        for process in processes:
            await process.wait()

    return _async_sleepers(n, mark, trio.run, start_one, stop_all)


def anyio_sleepers(n: int, mark: Mark) -> dict[str, float]:
    import anyio

    null = subprocess.DEVNULL

    async def start_one() -> Any:
        return await anyio.open_process(SLEEP, stdin=null, stdout=null, stderr=null)

    async def stop_all(processes: list[Any]) -> None:
        for process in processes:
            process.terminate()
        for process in processes:
            await process.wait()

    return _async_sleepers(
        n, mark, lambda main: anyio.run(main, backend="trio"), start_one, stop_all
    )


def trioproc_sleepers_held(n: int, mark: Mark) -> dict[str, float]:
    """One task holds every child's block (an exit stack), as trio's case
    holds its Process objects, and the children inherit the parent's fds, as
    there; SIGTERM to each, then the blocks end in order, reaping them."""

    async def start_one(stack: contextlib.AsyncExitStack) -> Any:
        return await stack.enter_async_context(
            trioproc.spawn(SLEEP, stdin=None, stdout=None, stderr=None)
        )

    async def fleet(count: int, figures: dict[str, float] | None) -> None:
        async with contextlib.AsyncExitStack() as stack:
            began = time.perf_counter()
            before = _harness.peak_rss_mib()
            transports = [await start_one(stack) for _ in range(count)]
            started = _fleet_up(figures, count, began, before)
            for transport in transports:
                transport.signalProcess("TERM")
        _fleet_down(figures, began, started)

    return _trio_fleet(n, mark, fleet)


def trioproc_sleepers(n: int, mark: Mark) -> dict[str, float]:
    """One block per child, each in a task of one nursery (a protocol, no
    fds); cancelling the nursery stops and reaps all."""

    async def fleet(count: int, figures: dict[str, float] | None) -> None:
        up = 0
        everyone_up = trio.Event()
        began = time.perf_counter()
        before = _harness.peak_rss_mib()

        async def one() -> None:
            nonlocal up
            async with trioproc.spawn(SLEEP, trioproc.ProcessProtocol(), child_fds={}):
                up += 1
                if up == count:
                    everyone_up.set()
                await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(one)
            await everyone_up.wait()
            started = _fleet_up(figures, count, began, before)
            nursery.cancel_scope.cancel()
        _fleet_down(figures, began, started)

    return _trio_fleet(n, mark, fleet)


def _trio_fleet(
    n: int,
    mark: Mark,
    fleet: Callable[[int, dict[str, float] | None], Awaitable[None]],
) -> dict[str, float]:
    """Run *fleet* for 2 children (warm-up), then for *n*, measured."""

    async def main() -> dict[str, float]:
        figures: dict[str, float] = {}
        await fleet(2, None)
        mark()
        await fleet(n, figures)
        return figures

    return trio.run(main)


def _fleet_up(
    figures: dict[str, float] | None, count: int, began: float, before: float
) -> float:
    """Note the time to start every child and the RSS each added; return now."""
    started = time.perf_counter()
    if figures is not None:
        figures["start_s"] = started - began
        figures["kib_per_child"] = (_harness.peak_rss_mib() - before) * 1024 / count
    return started


def _fleet_down(figures: dict[str, float] | None, began: float, started: float) -> None:
    """Note the time to stop and reap every child, and the whole time."""
    if figures is not None:
        figures["stop_s"] = time.perf_counter() - started
        figures["seconds"] = time.perf_counter() - began


def twisted_sleepers(n: int, mark: Mark) -> dict[str, float]:
    from twisted.internet import protocol, reactor

    figures: dict[str, float] = {}

    class Sleeper(protocol.ProcessProtocol):
        def processEnded(self, reason: Any) -> None:
            self.ended()

    def fleet(count: int, measure: bool, then: Callable[[], None]) -> None:
        left = count
        began = time.perf_counter()
        before = _harness.peak_rss_mib()

        def ended() -> None:
            nonlocal left
            left -= 1
            if left == 0:
                if measure:
                    figures["stop_s"] = time.perf_counter() - started
                    figures["seconds"] = time.perf_counter() - began
                then()

        transports = []
        for _ in range(count):
            proto = Sleeper()
            proto.ended = ended  # type: ignore[attr-defined]
            transports.append(
                reactor.spawnProcess(proto, "sleep", SLEEP, env=os.environ, childFDs={})
            )  # type: ignore[attr-defined]
        started = time.perf_counter()
        if measure:
            figures["start_s"] = started - began
            figures["kib_per_child"] = (_harness.peak_rss_mib() - before) * 1024 / count
        for transport in transports:
            transport.signalProcess("TERM")

    def measured() -> None:
        mark()
        fleet(n, True, reactor.stop)  # type: ignore[attr-defined]

    reactor.callWhenRunning(fleet, 2, False, measured)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]  # its SIGCHLD handler reaps
    return figures


# --- pty ---------------------------------------------------------------------


def _pty_case(read: Callable[[str], int]) -> Case:
    def case(size: int, mark: Mark) -> dict[str, float]:
        path = HERE / ".out" / "pty-source"
        path.parent.mkdir(exist_ok=True)
        if not path.exists() or path.stat().st_size != size:
            with open(path, "wb") as data:
                data.truncate(size)
        read(str(path))  # warm-up
        mark()
        start = time.perf_counter()
        assert read(str(path)) == size
        return {"seconds": time.perf_counter() - start}

    return case


# --- the scenarios -----------------------------------------------------------


def _throughput(seconds: float, n: int) -> float:
    return n / seconds / 1e6


SCENARIOS: dict[str, dict[str, Any]] = {
    "spawn": {
        "title": "Spawn and reap /bin/true, one at a time",
        "unit": "children/s",
        "n": 500,
        "rate": lambda f, n: n / f["seconds"],
        "cases": {
            "posix_spawn loop (reference)": _sync_case(posix_spawn_loop),
            "trioproc.run": _trio_case(trioproc_spawn),
            "subprocess.run": _sync_case(subprocess_run),
            "asyncio": _asyncio_case(asyncio_spawn),
            "trio.run_process": _trio_case(trio_spawn),
            "anyio.run_process (trio)": _anyio_case(anyio_spawn),
            "Twisted spawnProcess": _twisted_case(twisted_spawn),
        },
    },
    "spawn50": {
        "title": "Spawn and reap /bin/true, 50 at a time",
        "unit": "children/s",
        "n": 1000,
        "rate": lambda f, n: n / f["seconds"],
        "cases": {
            "posix_spawn, 50 at a time (reference)": _sync_case(posix_spawn_50),
            "trioproc.run": _trio_case(trioproc_50),
            "subprocess.run, 50 threads": _sync_case(subprocess_50),
            "asyncio": _asyncio_case(asyncio_50),
            "trio.run_process": _trio_case(trio_50),
            "anyio.run_process (trio)": _anyio_case(anyio_50),
            "Twisted spawnProcess": _twisted_case(
                lambda n, done: twisted_spawn(n, done, AT_ONCE)
            ),
        },
    },
    "stdout": {
        "title": "stdout: 1 GiB from `head -c`",
        "unit": "MB/s",
        "n": 1 << 30,
        "rate": lambda f, n: _throughput(f["seconds"], n),
        "cases": {
            "shell pipe: head > cat (reference)": _sync_case(flow.stdin_shell),
            "trioproc, protocol": _trio_case(trioproc_stdout_protocol),
            "trioproc, stream": _trio_case(trioproc_stdout_stream),
            "subprocess, blocking reads": _sync_case(subprocess_stdout),
            "asyncio": _asyncio_case(asyncio_stdout),
            "trio.lowlevel.open_process": _trio_case(trio_stdout),
            "anyio.open_process (trio)": _anyio_case(anyio_stdout),
            "Twisted spawnProcess": _twisted_case(twisted_stdout),
        },
    },
    "stdin": {
        "title": "stdin: 1 GiB into `cat >/dev/null`, with backpressure",
        "unit": "MB/s",
        "n": 1 << 30,
        "rate": lambda f, n: _throughput(f["seconds"], n),
        "cases": {
            "shell pipe: head > cat (reference)": _sync_case(flow.stdin_shell),
            "trioproc, stdin.send_all": _trio_case(flow.stdin_trioproc_send_all),
            "trioproc, streaming producer": _trio_case(flow.stdin_trioproc_producer),
            "subprocess, blocking writes": _sync_case(subprocess_stdin),
            "asyncio, write + drain": _asyncio_case(flow.stdin_asyncio),
            "trio.lowlevel.open_process": _trio_case(flow.stdin_trio),
            "anyio.open_process (trio)": _anyio_case(anyio_stdin),
            "Twisted, streaming producer": _twisted_case(twisted_stdin),
        },
    },
    "stdin64k": {
        "title": "stdin: 1 GiB into `cat >/dev/null` through send_all in 64 KiB calls",
        "unit": "MB/s",
        "n": 1 << 30,
        "rate": lambda f, n: _throughput(f["seconds"], n),
        "cases": {
            "shell pipe: head > cat (reference)": _sync_case(flow.stdin_shell),
            "trioproc, stdin.send_all": _trio_case(
                functools.partial(flow.stdin_trioproc_send_all, chunk=SMALL_CHUNK)
            ),
            "trio.lowlevel.open_process": _trio_case(
                functools.partial(flow.stdin_trio, chunk=SMALL_CHUNK)
            ),
        },
    },
    "echo": {
        "title": "Echo round trips of 100-byte lines through `cat`, one CPU",
        "unit": "round trips/s",
        "n": 20_000,
        "rate": lambda f, n: n / f["seconds"],
        "cases": {
            "subprocess, blocking (reference)": _one_cpu(_sync_case(subprocess_echo)),
            "trioproc, stream": _one_cpu(_trio_case(trioproc_echo)),
            "trioproc, protocol": _one_cpu(_trio_case(trioproc_echo_protocol)),
            "asyncio": _one_cpu(_asyncio_case(asyncio_echo)),
            "trio.lowlevel.open_process": _one_cpu(_trio_case(trio_echo)),
            "anyio.open_process (trio)": _one_cpu(_anyio_case(anyio_echo)),
            "Twisted spawnProcess": _one_cpu(_twisted_case(twisted_echo)),
        },
    },
    "sleepers": {
        "title": "1000 idle `sleep` children at once",
        "unit": "children/s started and reaped",
        "n": 1000,
        "rate": lambda f, n: n / f["seconds"],
        "extra": [
            ("start_s", "start all, s", ".2f"),
            ("stop_s", "stop + reap all, s", ".2f"),
            ("kib_per_child", "parent RSS per child, KiB", ".1f"),
        ],
        "cases": {
            "posix_spawn (reference)": posix_spawn_sleepers,
            "trioproc.spawn, blocks in one task": trioproc_sleepers_held,
            "trioproc.spawn, a task per child": trioproc_sleepers,
            "subprocess.Popen": subprocess_sleepers,
            "asyncio": asyncio_sleepers,
            "trio.lowlevel.open_process": trio_sleepers,
            "anyio.open_process (trio)": anyio_sleepers,
            "Twisted spawnProcess": twisted_sleepers,
        },
    },
    "pty": {
        "title": "pty: 100 MB from `cat` on a pseudo-terminal",
        "unit": "MB/s",
        "n": 100_000_000,
        "rate": lambda f, n: _throughput(f["seconds"], n),
        "cases": {
            "trioproc, protocol": _pty_case(pty_throughput.trioproc_protocol),
            "trioproc, stream": _pty_case(pty_throughput.trioproc_stream),
            "ptyprocess": _pty_case(pty_throughput.ptyprocess_read),
            "pexpect": _pty_case(pty_throughput.pexpect_read),
        },
    },
}


def run_case(scenario: str, name: str, n: int) -> dict[str, float]:
    """Run one case in this (fresh) interpreter: its figures and peak RSS."""
    baseline: list[float] = []
    figures = SCENARIOS[scenario]["cases"][name](
        n, lambda: baseline.append(_harness.peak_rss_mib())
    )
    peak = _harness.peak_rss_mib()
    figures["rss"] = peak - (baseline[0] if baseline else peak)
    figures["peak"] = peak
    figures["rate"] = SCENARIOS[scenario]["rate"](figures, n)
    return figures


# --- reporting ---------------------------------------------------------------


def _versions() -> str:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    names = ("trioproc", "trio", "anyio", "twisted", "ptyprocess", "pexpect")
    return ", ".join(f"{name} {version(name)}" for name in names)


def _base(cases: dict[str, Any]) -> str:
    return next(name for name in cases if name.startswith("trioproc"))


def write_report(
    results: dict[str, dict[str, list[_harness.Figures]]], rounds: int, quick: bool
) -> str:
    header = [
        "# Benchmark results",
        "",
        f"Measured by `make bench` on {time.strftime('%Y-%m-%d')}: "
        f"{os.cpu_count()} CPUs ({platform.machine()}), Linux {platform.release()}, "
        f"Python {platform.python_version()}; {_versions()}.",
        f"Each figure is the median of {rounds} rounds, the cases interleaved "
        "round by round, each in a fresh interpreter; a ratio is the median of "
        "the round-by-round ratios to trioproc's first line (above 1: faster "
        "than trioproc)." + (" Quick run: smaller sizes." if quick else ""),
        "",
    ]
    body: list[str] = []
    for key, runs in results.items():
        scenario = SCENARIOS[key]
        base = _base(scenario["cases"])
        columns = [("rate", scenario["unit"], ",.0f")]
        columns += scenario.get("extra", [])
        columns += [("rss", "peak RSS growth, MiB", ".1f")]
        heading = ["case", *(c[1] for c in columns), f"ratio to {base}"]
        body += [f"## {scenario['title']}", "", "| " + " | ".join(heading) + " |"]
        body.append("|" + "|".join(["---"] + ["---:"] * (len(heading) - 1)) + "|")
        for name, figures in runs.items():
            cells = [name if not name.startswith("trioproc") else f"**{name}**"]
            for field, _, fmt in columns:
                cells.append(format(_harness.median(figures, field), fmt))
            cells.append(f"{_harness.ratio(figures, runs[base], 'rate'):.2f}")
            body.append("| " + " | ".join(cells) + " |")
        body.append("")
    text = "\n".join(header + body)
    (HERE / "RESULTS.md").write_text(text + "\n")
    return "\n".join(body)


def write_chart(results: dict[str, dict[str, list[_harness.Figures]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, grid = plt.subplots(
        len(results), 1, figsize=(10, 3.1 * len(results)), squeeze=False
    )
    axes = grid[:, 0]
    for axis, (key, runs) in zip(axes, results.items(), strict=True):
        scenario = SCENARIOS[key]
        names = list(runs)[::-1]
        values = [_harness.median(runs[name], "rate") for name in names]
        colours = [
            "#2b7bb9"
            if name.startswith("trioproc")
            else "#9e9e9e"
            if "reference" in name
            else "#f0a35e"
            for name in names
        ]
        axis.barh(names, values, color=colours)
        for y, value in enumerate(values):
            axis.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
        axis.set_title(
            f"{scenario['title']} ({scenario['unit']}, higher is better)", fontsize=10
        )
        axis.tick_params(axis="y", labelsize=8)
        axis.set_xlim(0, max(values) * 1.18)
    figure.suptitle(
        "trioproc (blue) beside its peers (orange) and the physical reference (grey)"
    )
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    figure.savefig(HERE / "results.png", dpi=90)


def update_readme(table: str) -> None:
    readme = HERE.parent / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        readme.write_text(f"{before}{start}\n{table}\n{end}{after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a try")
    parser.add_argument(
        "--only", action="append", choices=list(SCENARIOS), help="these scenarios"
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        scenario, name = args.case.split("::")
        print(json.dumps(run_case(scenario, name, args.n)))
        return
    started = time.monotonic()
    results: dict[str, dict[str, list[_harness.Figures]]] = {}
    for key, scenario in SCENARIOS.items():
        if args.only and key not in args.only:
            continue
        n = scenario["n"] // 8 if args.quick else scenario["n"]
        print(f"{scenario['title']} ...", flush=True)
        results[key] = _harness.interleave(
            {
                name: (
                    lambda name=name, key=key, n=n: _harness.isolated(
                        Path(__file__), f"{key}::{name}", "--n", str(n)
                    )
                )
                for name in scenario["cases"]
            },
            args.rounds,
        )
    table = write_report(results, args.rounds, args.quick)
    print(table)
    write_chart(results)
    if not args.only and not args.quick:
        update_readme(table)
    print(
        f"wrote {HERE / 'RESULTS.md'} and {HERE / 'results.png'} "
        f"in {time.monotonic() - started:.0f}s"
    )


if __name__ == "__main__":
    main()
