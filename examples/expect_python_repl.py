"""Drive an interactive Python REPL with expect(), as pexpect would.

What it shows: `python -i` runs on a pseudo-terminal (pty=True), so it
prompts and echoes as in a terminal window. `stdout.expect(pattern)` waits
for a prompt and returns the `re.Match`: what the REPL printed before it is
`m.string[:m.start()]`. With a list of patterns, `m.re` says which prompt came:
">>> " (the statement is done) or "... " (it wants more lines). A timeout is
Trio's own `trio.fail_after`, and end of input (^D, from closing stdin) makes
the next expect() raise `UnexpectedEOF`, an EOFError holding the last output.

How to poke it: `python examples/expect_python_repl.py [EXPRESSION ...]`
evaluates each expression in the child REPL and prints its answer; try
`"2**100" "sum(range(10))" "1/0"`.
"""

from __future__ import annotations

import re
import sys

import trio

import trioproc

PROMPT = re.compile(rb">>> ")
MORE = re.compile(rb"\.\.\. ")


def answer(echoed_and_printed: bytes) -> str:
    """What the REPL printed, without the echo of the line we typed."""
    text = echoed_and_printed.decode(errors="replace").replace("\r", "")
    return text.split("\n", 1)[1].strip() if "\n" in text else ""


async def main(expressions: list[str]) -> None:
    async with trioproc.spawn(
        [sys.executable, "-I", "-q", "-i"],
        pty=True,
        env={"TERM": "dumb", "PYTHON_BASIC_REPL": "1"},
    ) as repl:
        assert repl.stdin is not None
        assert repl.stdout is not None
        with trio.fail_after(10):
            await repl.stdout.expect(PROMPT)
        for expression in expressions:
            await repl.stdin.send_all(expression.encode() + b"\n")
            with trio.fail_after(10):
                m = await repl.stdout.expect([PROMPT, MORE])
            print(f"{expression} -> {answer(m.string[: m.start()])}")

        # A compound statement: the REPL asks for more with "... ".
        await repl.stdin.send_all(b"for n in range(3):\n")
        m = await repl.stdout.expect([PROMPT, MORE])
        wants_more = m.re is MORE
        print(f"after a 'for' line the REPL wants more lines: {wants_more}")
        await repl.stdin.send_all(b"    print(n * n)\n\n")
        m = await repl.stdout.expect(PROMPT)
        squares = answer(m.string[: m.start()]).split()
        print(f"the loop printed {' '.join(squares[-3:])}")

        await repl.stdin.aclose()  # ^D: end of input
        try:
            await repl.stdout.expect(PROMPT)
        except trioproc.UnexpectedEOF:
            print(f"end of input: the REPL exited with {await repl.wait()}")


if __name__ == "__main__":
    trio.run(main, sys.argv[1:] or ["6 * 7", "'trio' + 'proc'"])
