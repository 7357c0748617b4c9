"""Lines per second of ``lines()``, and MB/s through ``trioproc.pipeline()``.

What it measures (issue #17's figures):

* lines/s reading 1,000,000 lines of 40 bytes from one child
  (``yes <39 chars> | head -n 1000000``) with ``trioproc``'s
  ``stdout.lines()``, with asyncio's ``StreamReader.readline()``, with
  ``receive_some()`` and ``bytes.splitlines`` (chunks, no per-line await),
  and with a blocking ``for line in popen.stdout`` (the reference);
* MB/s of 1 GiB through ``head -c 1G /dev/zero | cat | cat``, read at the
  end: by ``trioproc.pipeline()``, by the same shell pipeline read through
  ``trioproc.spawn()``, and all in the shell (``... | cat >/dev/null``, the
  reference).

Each case runs in a fresh interpreter; cases are interleaved round by round
(A B C A B C ...), each figure is the median of the rounds and each ratio
the median of the round-by-round ratios.

Run: ``.venv/bin/python benchmarks/lines_pipeline.py [--rounds N] [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import trio

import trioproc

sys.path.insert(0, str(Path(__file__).parent))
from _harness import Figures, interleave, isolated, peak_rss_mib, report

LINE = "0123456789" * 3 + "012345678"  # 39 characters, 40 bytes with b"\n"


def lines_argv(count: int) -> list[str]:
    return ["sh", "-c", f"yes {LINE} | head -n {count}"]


def _lines_figures(count: int, got: int, start: float) -> Figures:
    elapsed = time.perf_counter() - start
    assert got == count, (got, count)
    return {"lines_per_s": count / elapsed, "rss_mib": peak_rss_mib()}


def lines_trioproc(count: int) -> Figures:
    async def main() -> Figures:
        got = 0
        start = time.perf_counter()
        async with trioproc.spawn(lines_argv(count)) as child:
            assert child.stdout is not None
            async for _line in child.stdout.lines():
                got += 1
        return _lines_figures(count, got, start)

    return trio.run(main)


def lines_trioproc_chunks(count: int) -> Figures:
    async def main() -> Figures:
        got = 0
        tail = b""
        start = time.perf_counter()
        async with trioproc.spawn(lines_argv(count)) as child:
            assert child.stdout is not None
            while data := await child.stdout.receive_some():
                lines = (tail + data).split(b"\n")
                tail = lines.pop()
                got += len(lines)
        return _lines_figures(count, got + bool(tail), start)

    return trio.run(main)


def lines_asyncio(count: int) -> Figures:
    async def main() -> Figures:
        got = 0
        start = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *lines_argv(count), stdout=asyncio.subprocess.PIPE
        )
        assert process.stdout is not None
        while await process.stdout.readline():
            got += 1
        await process.wait()
        return _lines_figures(count, got, start)

    return asyncio.run(main())


def lines_blocking(count: int) -> Figures:
    got = 0
    start = time.perf_counter()
    with subprocess.Popen(lines_argv(count), stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        for _line in process.stdout:
            got += 1
    return _lines_figures(count, got, start)


STAGES = [["cat"], ["cat"]]


def _mbps(size: int, got: int, start: float) -> Figures:
    elapsed = time.perf_counter() - start
    assert got == size, (got, size)
    return {"mbps": size / elapsed / 1e6, "rss_mib": peak_rss_mib()}


def pipe_trioproc_pipeline(size: int) -> Figures:
    async def main() -> Figures:
        got = 0
        start = time.perf_counter()
        stages = [["head", "-c", str(size), "/dev/zero"], *STAGES]
        async with trioproc.pipeline(stages, check=True) as p:
            assert p.stdout is not None
            while data := await p.stdout.receive_some():
                got += len(data)
        return _mbps(size, got, start)

    return trio.run(main)


def pipe_shell_read_by_trioproc(size: int) -> Figures:
    async def main() -> Figures:
        got = 0
        start = time.perf_counter()
        shell = f"head -c {size} /dev/zero | cat | cat"
        async with trioproc.spawn(["sh", "-c", shell]) as child:
            assert child.stdout is not None
            while data := await child.stdout.receive_some():
                got += len(data)
        return _mbps(size, got, start)

    return trio.run(main)


def pipe_shell_only(size: int) -> Figures:
    start = time.perf_counter()
    subprocess.run(
        ["sh", "-c", f"head -c {size} /dev/zero | cat | cat >/dev/null"], check=True
    )
    return _mbps(size, size, start)


CASES: dict[str, Callable[[int], Figures]] = {
    "blocking: for line in popen.stdout (reference)": lines_blocking,
    "trioproc: async for line in stdout.lines()": lines_trioproc,
    "trioproc: receive_some() + split": lines_trioproc_chunks,
    "asyncio: StreamReader.readline()": lines_asyncio,
    "shell: head | cat | cat >/dev/null (reference)": pipe_shell_only,
    "trioproc.pipeline([head, cat, cat])": pipe_trioproc_pipeline,
    "trioproc.spawn(sh -c 'head | cat | cat')": pipe_shell_read_by_trioproc,
}
LINE_CASES = list(CASES)[:4]
PIPE_CASES = list(CASES)[4:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(CASES[args.case](args.size)))
        return
    count = 200_000 if args.quick else 1_000_000
    size = (1 << 27) if args.quick else (1 << 30)
    script = Path(__file__)
    print(
        f"python {sys.version.split()[0]}, trio {trio.__version__}, "
        f"rounds {args.rounds}"
    )

    def run(name: str, n: int) -> Figures:
        return isolated(script, name, "--size", str(n))

    lines = interleave(
        {name: partial(run, name, count) for name in LINE_CASES}, args.rounds
    )
    report(
        f"Lines of 40 bytes from one child ({count:,} a round)",
        lines,
        LINE_CASES[1],
        [("lines_per_s", "lines/s", ",.0f"), ("rss_mib", "peak RSS, MiB", ".1f")],
    )
    piped = interleave(
        {name: partial(run, name, size) for name in PIPE_CASES}, args.rounds
    )
    report(
        f"{size >> 20} MiB through head -c | cat | cat, read at the end",
        piped,
        PIPE_CASES[1],
        [("mbps", "MB/s", ",.0f"), ("rss_mib", "peak RSS, MiB", ".1f")],
    )


if __name__ == "__main__":
    main()
