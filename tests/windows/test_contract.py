"""The transport contract suite (``trioproc.testing``) on Windows.

The shipped `RealProcessHarness` hands its child a control pipe as fds 10
and above and forks a grandchild: neither exists on Windows. This harness
plays the same child (the verbs are `CommandedHarness`'s) over a loopback
TCP connection instead, and its grandchild is a process started with the
child's stdout and stderr.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

import trioproc
from trioproc.testing import CONTRACT_CHECKS, ContractCheck
from trioproc.testing._harness import CommandedHarness

#: Connects to the port in argv[1] and obeys one command a line from it.
CONTROLLED = [
    sys.executable,
    "-I",
    "-S",
    "-c",
    "import os, socket, subprocess, sys\n"
    "control = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
    "def reply(text):\n"
    "    control.sendall(text.encode() + b'\\n')\n"
    "def read(fd, n):\n"
    "    data = b''\n"
    "    while n is None or len(data) < n:\n"
    "        chunk = os.read(fd, 65536 if n is None else n - len(data))\n"
    "        if not chunk:\n"
    "            break\n"
    "        data += chunk\n"
    "    return data\n"
    "for line in control.makefile('rb'):\n"
    "    command, *args = line.decode().split()\n"
    "    if command == 'write':\n"
    "        view = memoryview(bytes.fromhex(args[1]))\n"
    "        while view:\n"
    "            view = view[os.write(int(args[0]), view):]\n"
    "        reply('ok')\n"
    "    elif command == 'read':\n"
    "        n = None if args[1] == 'all' else int(args[1])\n"
    "        reply('data ' + read(int(args[0]), n).hex())\n"
    "    elif command == 'close':\n"
    "        os.close(int(args[0]))\n"
    "        reply('ok')\n"
    "    elif command == 'hold':\n"
    "        holder = subprocess.Popen(\n"
    "            [sys.executable, '-c', 'import time; time.sleep(60)'],\n"
    "            stdin=subprocess.DEVNULL, stdout=1, stderr=2)\n"
    "        reply(str(holder.pid))\n"
    "    elif command == 'exit':\n"
    "        os._exit(int(args[0]))\n"
    "os._exit(0)\n",
]

#: Checks whose expectation is POSIX's: check name -> what Windows does
#: instead, and where that is tested.
POSIX_ONLY = {
    "sigterm_ends_a_child_that_does_not_handle_it": (
        "Windows has no SIGTERM: TERM terminates the child's job, exit code 1 "
        "(test_transport.py checks ProcessTerminated(1))"
    ),
    "sigkill_always_ends_the_child": (
        "Windows has no SIGKILL: KILL terminates the child's job, exit code 1, "
        "ProcessTerminated(1) (test_transport.py)"
    ),
    "extra_write_fds_and_their_errors": (
        "a Windows child has fds 0, 1 and 2 only (refused at spawn(): "
        "test_transport.py)"
    ),
}


class WindowsProcessHarness(CommandedHarness):
    """A real child of ``trioproc.spawn`` on Windows, remote-controlled."""

    def __init__(self) -> None:
        self._control: trio.socket.SocketType | None = None
        self._replies = b""

    @asynccontextmanager
    async def start(self, protocol: Any, child_fds: Any = None) -> AsyncIterator[Any]:
        listener = trio.socket.socket()
        with listener:
            await listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            options = {} if child_fds is None else {"child_fds": child_fds}
            async with trioproc.spawn(
                [*CONTROLLED, str(port)], protocol, **options
            ) as transport:
                with trio.fail_after(20):
                    self._control, _ = await listener.accept()
                with self._control:
                    self.transport = transport
                    yield transport
                    if transport.returncode is None:
                        await self._order("exit 0", reply=False)

    async def _order(self, command: str, *, reply: bool = True) -> str:
        assert self._control is not None
        await self._control.send(command.encode() + b"\n")
        if not reply:
            return ""
        while b"\n" not in self._replies:
            self._replies += await self._control.recv(65536)
        line, self._replies = self._replies.split(b"\n", 1)
        return line.decode()

    def _release(self, pid: int) -> None:
        os.kill(pid, signal.SIGTERM)  # TerminateProcess


def _cases() -> list[object]:
    return [
        pytest.param(
            check,
            id=check.name,
            marks=[pytest.mark.skip(reason=POSIX_ONLY[check.name])]
            if check.name in POSIX_ONLY
            else [],
        )
        for check in CONTRACT_CHECKS
    ]


@pytest.mark.parametrize("check", _cases())
async def test_the_contract_on_windows(check: ContractCheck) -> None:
    """Each check of the shipped contract suite, against a real Windows
    child (the docstring of the check says what a user relies on)."""
    with trio.fail_after(60):
        await check.run(WindowsProcessHarness())
