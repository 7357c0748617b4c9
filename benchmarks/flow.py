"""Flow control under load: throughput and the parent's peak memory.

Three scenarios, each moving SIZE bytes (1 GiB by default), each case in a
fresh interpreter so its peak RSS is its own, peers interleaved round by round:

* stdin: SIZE bytes written into `cat >/dev/null` -- trioproc with a
  streaming producer and with `stdin.send_all`, beside `trio.lowlevel.
  open_process`, asyncio and the shell pipe `head -c SIZE /dev/zero | cat`;
* slow reader: SIZE bytes read from `head -c SIZE /dev/zero` by a reader that
  is slower than the child (it CRC-32s every chunk), which must make the
  child wait instead of the parent's memory grow;
* both ways: SIZE bytes through `cat` while its output is read at once.

"peak RSS growth" is how much the parent's peak resident set grew during the
transfer, over what it was after imports and a warm-up transfer of 1 MiB.
"parent CPU" and "children's CPU" are user + system seconds spent during the
transfer by the parent and by its children (for the shell pipe, every process
of the pipeline is a child).

Run: `.venv/bin/python benchmarks/flow.py [--rounds 3] [--size BYTES]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).parent))
import _harness

import trioproc

GIB = 1 << 30
CHUNK = bytes(1 << 20)  # written again and again: memory is the buffers' alone


def _devnull() -> int:
    return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)


# --- stdin -----------------------------------------------------------------


class _Feeder:
    """A streaming producer: writes CHUNK until SIZE is sent, unless paused."""

    def __init__(self, transport: trioproc.ProcessTransport, size: int) -> None:
        self.transport, self.remaining = transport, size
        self.paused, self.stopped = False, False
        self.resumed = trio.Event()

    def pauseProducing(self) -> None:
        self.paused, self.resumed = True, trio.Event()

    def resumeProducing(self) -> None:
        self.paused = False
        self.resumed.set()

    def stopProducing(self) -> None:
        self.stopped = True
        self.resumed.set()

    async def run(self) -> None:
        while self.remaining > 0 and not self.stopped:
            if self.paused:
                await self.resumed.wait()
                continue
            self.transport.write(CHUNK[: self.remaining])
            self.remaining -= len(CHUNK)
            await trio.lowlevel.checkpoint()


async def stdin_trioproc_producer(size: int) -> None:
    null = _devnull()
    try:
        async with trioproc.spawn(
            ["cat"], trioproc.ProcessProtocol(), child_fds={0: "w", 1: null}
        ) as transport:
            feeder = _Feeder(transport, size)
            transport.registerProducer(feeder, True)
            await feeder.run()
            transport.unregisterProducer()
    finally:
        os.close(null)


async def stdin_trioproc_send_all(size: int, chunk: bytes = CHUNK) -> None:
    """SIZE bytes through ``stdin.send_all``, in calls of *chunk*."""
    null = _devnull()
    try:
        async with trioproc.spawn(["cat"], child_fds={0: "w", 1: null}) as child:
            assert child.stdin is not None
            for offset in range(0, size, len(chunk)):
                await child.stdin.send_all(chunk[: size - offset])
    finally:
        os.close(null)


async def _trio_close(process: trio.Process) -> None:
    """trio.Process's clean-up: close its pipes and wait; kill if interrupted."""
    try:
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                await stream.aclose()
        await process.wait()
    except BaseException:
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
        raise


async def stdin_trio(size: int, chunk: bytes = CHUNK) -> None:
    """SIZE bytes through trio's ``send_all``, in calls of *chunk*."""
    process = await trio.lowlevel.open_process(
        ["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    try:
        assert process.stdin is not None
        for offset in range(0, size, len(chunk)):
            await process.stdin.send_all(chunk[: size - offset])
    finally:
        await _trio_close(process)


async def stdin_asyncio(size: int) -> None:
    process = await asyncio.create_subprocess_exec(
        "cat", stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    assert process.stdin is not None
    for offset in range(0, size, len(CHUNK)):
        process.stdin.write(CHUNK[: size - offset])
        await process.stdin.drain()
    process.stdin.close()
    await process.wait()


def stdin_shell(size: int) -> None:
    subprocess.run(f"head -c {size} /dev/zero | cat >/dev/null", shell=True, check=True)


# --- slow reader -----------------------------------------------------------


class _Checksum(trioproc.ProcessProtocol):
    def __init__(self) -> None:
        self.crc, self.received = 0, 0

    def outReceived(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.received += len(data)


async def slow_trioproc_protocol(size: int) -> None:
    protocol = _Checksum()
    async with trioproc.spawn(["head", "-c", str(size), "/dev/zero"], protocol):
        pass
    assert protocol.received == size


async def slow_trioproc_stream(size: int) -> None:
    crc = received = 0
    async with trioproc.spawn(["head", "-c", str(size), "/dev/zero"]) as child:
        assert child.stdout is not None
        while data := await child.stdout.receive_some():
            crc = zlib.crc32(data, crc)
            received += len(data)
    assert received == size


async def slow_trio(size: int) -> None:
    crc = received = 0
    process = await trio.lowlevel.open_process(
        ["head", "-c", str(size), "/dev/zero"], stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        while data := await process.stdout.receive_some(1 << 16):
            crc = zlib.crc32(data, crc)
            received += len(data)
    finally:
        await _trio_close(process)
    assert received == size


async def slow_asyncio(size: int) -> None:
    crc = received = 0
    process = await asyncio.create_subprocess_exec(
        "head", "-c", str(size), "/dev/zero", stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    while data := await process.stdout.read(1 << 16):
        crc = zlib.crc32(data, crc)
        received += len(data)
    await process.wait()
    assert received == size


def slow_shell(size: int) -> None:
    reader = (
        "import os, zlib\ncrc = 0\n"
        "while data := os.read(0, 65536):\n    crc = zlib.crc32(data, crc)\n"
    )
    subprocess.run(
        f"head -c {size} /dev/zero | {sys.executable} -c '{reader}'",
        shell=True,
        check=True,
    )


# --- both ways through cat -------------------------------------------------


async def cat_trioproc_stream(size: int) -> None:
    async with trioproc.spawn(["cat"]) as child, trio.open_nursery() as nursery:
        stdin, stdout = child.stdin, child.stdout
        assert stdin is not None
        assert stdout is not None

        async def feed() -> None:
            for offset in range(0, size, len(CHUNK)):
                await stdin.send_all(CHUNK[: size - offset])
            await stdin.aclose()

        nursery.start_soon(feed)
        received = 0
        while data := await stdout.receive_some():
            received += len(data)
    assert received == size


class _Count(trioproc.ProcessProtocol):
    received = 0

    def outReceived(self, data: bytes) -> None:
        self.received += len(data)


async def cat_trioproc_protocol(size: int) -> None:
    protocol = _Count()
    async with trioproc.spawn(["cat"], protocol) as transport:
        feeder = _Feeder(transport, size)
        transport.registerProducer(feeder, True)
        await feeder.run()
        transport.unregisterProducer()
    assert protocol.received == size


async def cat_trio(size: int) -> None:
    process = await trio.lowlevel.open_process(
        ["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    received = 0
    try:
        async with trio.open_nursery() as nursery:
            stdin, stdout = process.stdin, process.stdout
            assert stdin is not None
            assert stdout is not None

            async def feed() -> None:
                for offset in range(0, size, len(CHUNK)):
                    await stdin.send_all(CHUNK[: size - offset])
                await stdin.aclose()

            nursery.start_soon(feed)
            while data := await stdout.receive_some(1 << 16):
                received += len(data)
    finally:
        await _trio_close(process)
    assert received == size


async def cat_asyncio(size: int) -> None:
    process = await asyncio.create_subprocess_exec(
        "cat", stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    stdin, stdout = process.stdin, process.stdout
    assert stdin is not None
    assert stdout is not None

    async def feed() -> None:
        for offset in range(0, size, len(CHUNK)):
            stdin.write(CHUNK[: size - offset])
            await stdin.drain()
        stdin.close()

    feeding = asyncio.ensure_future(feed())
    received = 0
    while data := await stdout.read(1 << 16):
        received += len(data)
    await feeding
    await process.wait()
    assert received == size


def cat_shell(size: int) -> None:
    subprocess.run(
        f"head -c {size} /dev/zero | cat | cat >/dev/null", shell=True, check=True
    )


# --- running ---------------------------------------------------------------

CASES: dict[str, dict[str, tuple[str, Callable[[int], Any]]]] = {
    "stdin": {
        "shell pipe: head > cat": ("sync", stdin_shell),
        "trioproc, streaming producer": ("trio", stdin_trioproc_producer),
        "trioproc, stdin.send_all": ("trio", stdin_trioproc_send_all),
        "trio open_process, send_all": ("trio", stdin_trio),
        "asyncio, write + drain": ("asyncio", stdin_asyncio),
    },
    "slow reader": {
        "shell pipe: head > python crc32": ("sync", slow_shell),
        "trioproc, protocol": ("trio", slow_trioproc_protocol),
        "trioproc, stream": ("trio", slow_trioproc_stream),
        "trio open_process": ("trio", slow_trio),
        "asyncio": ("asyncio", slow_asyncio),
    },
    "both ways through cat": {
        "shell pipe: head > cat > cat": ("sync", cat_shell),
        "trioproc, producer + protocol": ("trio", cat_trioproc_protocol),
        "trioproc, stream": ("trio", cat_trioproc_stream),
        "trio open_process": ("trio", cat_trio),
        "asyncio": ("asyncio", cat_asyncio),
    },
}


def run_case(scenario: str, name: str, size: int) -> _harness.Figures:
    """Run one case in this process: MB/s and the peak-RSS growth."""
    kind, case = CASES[scenario][name]
    runner: Callable[[Callable[[int], Awaitable[None]], int], None]
    if kind == "trio":
        runner = trio.run
    elif kind == "asyncio":
        runner = lambda fn, n: asyncio.run(fn(n))  # noqa: E731
    else:
        runner = lambda fn, n: fn(n)  # noqa: E731
    runner(case, 1 << 20)  # warm-up: imports, first child, allocator
    baseline = _harness.peak_rss_mib()
    before = _cpu_seconds()
    start = time.perf_counter()
    runner(case, size)
    elapsed = time.perf_counter() - start
    (parent, children), (parent_was, children_was) = _cpu_seconds(), before
    peak = _harness.peak_rss_mib()
    return {
        "mbps": size / elapsed / 1e6,
        "rss": peak - baseline,
        "peak": peak,
        "parent_cpu": parent - parent_was,
        "children_cpu": children - children_was,
    }


def _cpu_seconds() -> tuple[float, float]:
    """User + system CPU seconds of this process, and of its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=GIB)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        scenario, name = args.case.split("::")
        print(json.dumps(run_case(scenario, name, args.size)))
        return
    print(
        f"python {sys.version.split()[0]}, trio {trio.__version__}, "
        f"{args.size >> 20} MiB per case, {args.rounds} rounds"
    )
    script = Path(__file__)
    for scenario, cases in CASES.items():
        results = _harness.interleave(
            {
                name: (
                    lambda name=name, scenario=scenario: _harness.isolated(
                        script, f"{scenario}::{name}", "--size", str(args.size)
                    )
                )
                for name in cases
            },
            args.rounds,
        )
        _harness.report(
            f"{scenario} ({args.size >> 20} MiB)",
            results,
            next(iter(cases)),
            [
                ("mbps", "MB/s", ",.0f"),
                ("rss", "peak RSS growth, MiB", ".1f"),
                ("peak", "peak RSS, MiB", ".1f"),
                ("parent_cpu", "parent CPU, s", ".2f"),
                ("children_cpu", "children's CPU, s", ".2f"),
            ],
        )


if __name__ == "__main__":
    main()
