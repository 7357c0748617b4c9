"""Pipeline: two children joined by a pipe, like `producer | consumer`.

What it shows: the parent makes one pipe and hands its ends to two children
through child_fds (the producer's fd 1, the consumer's fd 0), then closes its
own copies so the consumer sees end of file when the producer is done. The
parent reads only the consumer's result; the data never passes through it.

How to poke it: `python examples/pipeline.py [COUNT]` sums the squares of
1..COUNT in a separate process from the one that produces them.
"""

from __future__ import annotations

import os
import sys

import trio

import trioproc

PRODUCER = "import sys\nfor n in range(1, int(sys.argv[1]) + 1):\n    print(n * n)\n"
CONSUMER = "import sys\nprint(sum(int(line) for line in sys.stdin))\n"


async def main(count: int) -> int:
    read_end, write_end = os.pipe()
    try:
        async with (
            trioproc.spawn(
                [sys.executable, "-c", PRODUCER, str(count)],
                child_fds={1: write_end, 2: "r"},
            ) as producer,
            trioproc.spawn(
                [sys.executable, "-c", CONSUMER],
                child_fds={0: read_end, 1: "r", 2: "r"},
            ) as consumer,
        ):
            # Both children hold their ends now; ours would keep the pipe open.
            os.close(write_end)
            os.close(read_end)
            read_end = write_end = -1
            assert consumer.stdout is not None
            result = b""
            while data := await consumer.stdout.receive_some():
                result += data
            codes = await producer.wait(), await consumer.wait()
            print("producer exited {}, consumer exited {}".format(*codes))
    finally:
        for fd in (read_end, write_end):
            if fd != -1:
                os.close(fd)
    total = int(result)
    print(f"sum of squares 1..{count} = {total}")
    return total


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
