"""Drive an interactive shell through a pseudo-terminal.

What it shows: `/bin/sh -i` runs on a new terminal, as in a terminal window:
it prints prompts, echoes what is typed, reports the window size, is
interrupted by ^C (the SIGINT reaches the `sleep` it runs in the foreground,
not the shell), and exits on end of input (^D, sent by closing stdin).

How to poke it: `python examples/pty_shell.py`; edit COMMAND to run something
interactive of your own (python3 -i, top -b -n 1, ...).
"""

from __future__ import annotations

import trio

import trioproc

PROMPT = b"$ "
COMMAND = b"echo hello from $(tty)"


class Screen:
    """What the terminal has shown so far, and a way to wait for more."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.text = b""

    async def expect(self, wanted: bytes) -> bytes:
        """Read until *wanted* appears; return what came before it."""
        while wanted not in self.text:
            data = await self.stream.receive_some()
            if not data:
                raise EOFError(f"the terminal ended before {wanted!r}")
            self.text += data
        before, _, self.text = self.text.partition(wanted)
        return before


def show(label: str, output: bytes) -> None:
    lines = output.decode(errors="replace").replace("\r", "").strip().splitlines()
    print(f"{label}: {lines[-1] if lines else ''}")


async def main() -> int:
    async with trioproc.spawn(
        ["/bin/sh", "-i"],
        pty=(24, 80),
        env={"PS1": PROMPT.decode(), "PATH": "/usr/bin:/bin"},
    ) as shell:
        assert shell.stdin is not None
        assert shell.stdout is not None
        screen = Screen(shell.stdout)
        await screen.expect(PROMPT)

        await shell.stdin.send_all(COMMAND + b"\n")
        show("command", await screen.expect(PROMPT))

        shell.resize(40, 120)
        await shell.stdin.send_all(b"stty size\n")
        show("after resize, stty size says", await screen.expect(PROMPT))

        await shell.stdin.send_all(b"sleep 30; echo not reached\n")
        await screen.expect(b"sleep 30; echo not reached\r\n")  # the echo of our line
        await trio.sleep(0.2)  # the shell starts sleep in the foreground
        await shell.stdin.send_all(b"\x03")  # ^C, as typed
        with trio.fail_after(5):
            await screen.expect(PROMPT)
        await shell.stdin.send_all(b"echo sleep ended with status $?\n")
        show("after ^C", await screen.expect(PROMPT))  # 130: killed by SIGINT

        await shell.stdin.aclose()  # ^D: end of input
        code = await shell.wait()
    print(f"shell exited with {code} on end of input")
    return code


if __name__ == "__main__":
    trio.run(main)
