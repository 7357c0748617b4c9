"""A Twisted-style ProcessProtocol, unchanged, driven by trioproc.

What it shows: a protocol written against Twisted's contract -- connectionMade,
outReceived, errReceived, inConnectionLost, processExited, processEnded, and
``self.transport.write`` / ``closeStdin`` -- talks to a line-echoing child. It
sends lines one at a time, each after the previous echo came back, then
closes stdin; the child exits and the protocol reports how it ended.

How to poke it: `python examples/protocol_echo.py word ...` echoes your words;
change ECHO to exit non-zero and watch processEnded get a ProcessTerminated.
"""

from __future__ import annotations

import sys

import trio

import trioproc

ECHO = """
import sys
for line in sys.stdin:
    sys.stdout.write("echo: " + line)
    sys.stdout.flush()
sys.stderr.write("echo child: end of input\\n")
"""


class EchoClient(trioproc.ProcessProtocol):
    """Sends each line after the previous echo returns (a request/response loop)."""

    def __init__(self, lines: list[str]) -> None:
        self.pending = list(lines)
        self.replies: list[str] = []
        self.buffer = b""
        self.ended = trio.Event()
        self.reason: trioproc.ProcessEnded | None = None

    def connectionMade(self) -> None:
        print(f"started child {self.transport.pid}")  # type: ignore[union-attr]
        self.send_next()

    def send_next(self) -> None:
        assert self.transport is not None
        if self.pending:
            self.transport.write(self.pending.pop(0).encode() + b"\n")
        else:
            self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.replies.append(line.decode())
            print(f"< {line.decode()}")
            self.send_next()

    def errReceived(self, data: bytes) -> None:
        print(f"! {data.decode().strip()}")

    def inConnectionLost(self) -> None:
        print("stdin closed")

    def processExited(self, reason: trioproc.ProcessEnded) -> None:
        print(f"child exited: {reason.value}")

    def processEnded(self, reason: trioproc.ProcessEnded) -> None:
        self.reason = reason
        print(
            "processEnded:", "clean" if reason.check(trioproc.ProcessDone) else "failed"
        )
        self.ended.set()


async def main(words: list[str]) -> EchoClient:
    client = EchoClient(words)
    async with trioproc.spawn([sys.executable, "-c", ECHO], client):
        await client.ended.wait()
    return client


if __name__ == "__main__":
    trio.run(main, sys.argv[1:] or ["hello", "structured", "concurrency"])
