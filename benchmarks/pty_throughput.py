"""Pseudo-terminal throughput: 100 MB through `cat` on a pty, read by the parent.

`cat FILE` (FILE: SIZE zero bytes, so the terminal's output processing adds
nothing) writes to its terminal; the parent reads everything until the
terminal reports its end. trioproc (protocol and stream mode) beside
`ptyprocess` and `pexpect` reading the same, interleaved round by round, each
case in a fresh interpreter. Needs the bench dependency group:
`pip install --group bench`.

Run: `.venv/bin/python benchmarks/pty_throughput.py [--rounds 3] [--size BYTES]`
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parent))
import _harness

import trioproc

READ = 1 << 16


class _Count(trioproc.ProcessProtocol):
    received = 0

    def outReceived(self, data: bytes) -> None:
        self.received += len(data)


def trioproc_protocol(path: str) -> int:
    async def main() -> int:
        protocol = _Count()
        async with trioproc.spawn(["cat", path], protocol, pty=True):
            pass
        return protocol.received

    return trio.run(main)


def trioproc_stream(path: str) -> int:
    async def main() -> int:
        received = 0
        async with trioproc.spawn(["cat", path], pty=True) as child:
            assert child.stdout is not None
            while data := await child.stdout.receive_some():
                received += len(data)
        return received

    return trio.run(main)


def ptyprocess_read(path: str) -> int:
    import ptyprocess

    child = ptyprocess.PtyProcess.spawn(["cat", path])
    received = 0
    try:
        while True:
            received += len(child.read(READ))
    except EOFError:
        pass
    child.wait()
    return received


def pexpect_read(path: str) -> int:
    import pexpect

    child = pexpect.spawn("cat", [path], maxread=READ, encoding=None)
    received = 0
    try:
        while True:
            received += len(child.read_nonblocking(READ, timeout=30))
    except pexpect.EOF:
        pass
    child.close()
    return received


CASES: dict[str, Callable[[str], int]] = {
    "ptyprocess": ptyprocess_read,
    "pexpect": pexpect_read,
    "trioproc, protocol": trioproc_protocol,
    "trioproc, stream": trioproc_stream,
}


def run_case(name: str, path: str) -> _harness.Figures:
    size = os.path.getsize(path)
    CASES[name](path)  # warm-up
    baseline = _harness.peak_rss_mib()
    start = time.perf_counter()
    received = CASES[name](path)
    elapsed = time.perf_counter() - start
    assert received == size, (received, size)
    return {"mbps": size / elapsed / 1e6, "rss": _harness.peak_rss_mib() - baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=100_000_000)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.file)))
        return
    with tempfile.NamedTemporaryFile(prefix="trioproc-pty-") as data:
        data.truncate(args.size)  # zeros, written by cat as they are
        data.flush()
        results = _harness.interleave(
            {
                name: lambda name=name: _harness.isolated(
                    Path(__file__), name, "--file", data.name
                )
                for name in CASES
            },
            args.rounds,
        )
    _harness.report(
        f"pty: {args.size / 1e6:.0f} MB from `cat` on a pseudo-terminal",
        results,
        "ptyprocess",
        [("mbps", "MB/s", ",.0f"), ("rss", "peak RSS growth, MiB", ".1f")],
    )


if __name__ == "__main__":
    main()
