"""Harnesses for the contract checks: each plays the child of one transport.

A harness gives the checks the same verbs whatever the transport -- the child
writes, reads, closes an fd, exits, lets a grandchild hold its fds -- so one
check body tells whether a transport honours the contract. Two are shipped:
`RealProcessHarness` (a real, remote-controlled child of ``trioproc.spawn``,
which takes its orders over a control pipe handed over as plain parent fds
at their own numbers, 10 or above, which the transport does not manage)
and `FakeTransportHarness` (`FakeProcessTransport`). A user who writes a
fake of their own writes a harness for it, on the model of
`FakeTransportHarness`.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal, final

import trio

from .._options import DEFAULT_CHILD_FDS
from .._spawn import spawn
from ._fake import FakeProcessTransport, ScriptDriver

__all__ = ["ContractHarness", "FakeTransportHarness", "RealProcessHarness"]


def python(code: str) -> list[str]:
    return [sys.executable, "-I", "-S", "-c", code]


#: The lowest number of the control pipe's fds, in the parent and in the
#: child alike (a parent fd handed over at its own number is what every
#: backend can do).
CONTROL_FDS = 10

#: Obeys one command a line on the fd named by argv[1] and answers each on
#: the fd named by argv[2].
CONTROLLED = python(
    "import os, sys, time\n"
    "CONTROL_IN, CONTROL_OUT = int(sys.argv[1]), int(sys.argv[2])\n"
    "buf = b''\n"
    "def reply(text):\n"
    "    os.write(CONTROL_OUT, text.encode() + b'\\n')\n"
    "def read(fd, n):\n"
    "    data = b''\n"
    "    while n is None or len(data) < n:\n"
    "        chunk = os.read(fd, 65536 if n is None else n - len(data))\n"
    "        if not chunk:\n"
    "            break\n"
    "        data += chunk\n"
    "    return data\n"
    "while True:\n"
    "    while b'\\n' not in buf:\n"
    "        chunk = os.read(CONTROL_IN, 4096)\n"
    "        if not chunk:\n"
    "            os._exit(0)\n"
    "        buf += chunk\n"
    "    line, buf = buf.split(b'\\n', 1)\n"
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
    "        pid = os.fork()\n"
    "        if pid == 0:\n"
    "            os.close(CONTROL_IN)\n"
    "            os.close(CONTROL_OUT)\n"
    "            time.sleep(60)\n"
    "            os._exit(0)\n"
    "        reply(str(pid))\n"
    "    elif command == 'exit':\n"
    "        os._exit(int(args[0]))\n"
)

Layout = Mapping[int, Literal["r", "w"] | int]


def _above(fd: int, lowest: int) -> int:
    """*fd* moved to a number of at least *lowest* (POSIX)."""
    if fd >= lowest:
        return fd
    import fcntl  # POSIX only: the real harness's child forks anyway

    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
    finally:
        os.close(fd)


class ContractHarness:
    """Plays the child of one transport; the contract checks use only this.

    Subclass it for a transport of your own and implement every method.

    Attributes:
      kind: a name for reports (``"real"``, ``"fake"`` ...).
      kernel: whether signals are delivered by a real kernel; checks that
        need one are skipped for a harness without.
      transport: the transport of the running `start` block.
    """

    kind: str = "?"
    kernel: bool = False
    transport: Any

    def start(
        self, protocol: Any, child_fds: Layout | None = None
    ) -> AbstractAsyncContextManager[Any]:
        """A block in which a child runs with *protocol* connected and
        *child_fds* (default ``{0: "w", 1: "r", 2: "r"}``); it yields the
        transport and ends the child when left."""
        raise NotImplementedError

    async def child_writes(self, fd: int, data: bytes) -> None:
        """The child writes *data* on its *fd*."""
        raise NotImplementedError

    async def child_reads(self, fd: int, nbytes: int | None = None) -> bytes:
        """What the child reads on *fd*: *nbytes*, or all until end of file."""
        raise NotImplementedError

    async def child_closes(self, fd: int) -> None:
        """The child closes its *fd*."""
        raise NotImplementedError

    async def child_exits(self, code: int = 0) -> None:
        """The child exits with *code* (its fds close, unless held)."""
        raise NotImplementedError

    async def grandchild_holds_fds(self) -> Callable[[], None]:
        """Keep the child's output fds open past its exit; returns a release."""
        raise NotImplementedError

    async def settle(self, condition: Callable[[], bool]) -> None:
        """Let the transport deliver what it owes until *condition* holds."""
        raise NotImplementedError


class CommandedHarness(ContractHarness):
    """A real child that obeys one command a line (`CONTROLLED`'s language):
    the verbs, written once; a subclass starts the child and carries the
    commands (`_order`) and ends a holder (`_release`)."""

    kind = "real"
    kernel = True

    async def _order(self, command: str, *, reply: bool = True) -> str:
        """Send *command*; its reply line, unless *reply* is false."""
        raise NotImplementedError

    def _release(self, pid: int) -> None:
        """End the grandchild *pid* that holds the child's fds."""
        raise NotImplementedError

    async def child_writes(self, fd: int, data: bytes) -> None:
        assert await self._order(f"write {fd} {data.hex()}") == "ok"

    async def child_reads(self, fd: int, nbytes: int | None = None) -> bytes:
        answer = await self._order(f"read {fd} {'all' if nbytes is None else nbytes}")
        return bytes.fromhex(answer.removeprefix("data").strip())

    async def child_closes(self, fd: int) -> None:
        assert await self._order(f"close {fd}") == "ok"

    async def child_exits(self, code: int = 0) -> None:
        await self._order(f"exit {code}", reply=False)
        await self.transport.wait()

    async def grandchild_holds_fds(self) -> Callable[[], None]:
        pid = int(await self._order("hold"))
        return lambda: self._release(pid)

    async def settle(self, condition: Callable[[], bool]) -> None:
        # Polled: conditions look at any protocol or producer, which have no
        # event to wait on; the real transport delivers from its own tasks.
        with trio.fail_after(10):
            while not condition():  # noqa: ASYNC110
                await trio.sleep(0.002)


@final
class RealProcessHarness(CommandedHarness):
    """A real child of ``trioproc.spawn``, remote-controlled."""

    def __init__(self) -> None:
        self._to_child = self._from_child = -1
        self._replies = b""
        self._news: trio.Event | None = None

    @asynccontextmanager
    async def start(
        self, protocol: Any, child_fds: Layout | None = None
    ) -> AsyncIterator[Any]:
        commands_read, commands_write = os.pipe()
        replies_read, replies_write = os.pipe()
        # The child's ends, above every fd a check names, to be handed over at
        # their own numbers.
        commands_read = _above(commands_read, CONTROL_FDS)
        replies_write = _above(replies_write, CONTROL_FDS)
        layout: dict[int, Literal["r", "w"] | int] = dict(
            child_fds if child_fds is not None else DEFAULT_CHILD_FDS
        )
        layout.update({commands_read: commands_read, replies_write: replies_write})
        argv = [*CONTROLLED, str(commands_read), str(replies_write)]
        try:
            async with spawn(argv, protocol, child_fds=layout) as transport:
                os.close(commands_read)
                os.close(replies_write)
                commands_read = replies_write = -1
                self._to_child, self._from_child = commands_write, replies_read
                os.set_blocking(replies_read, False)
                self.transport = transport
                yield transport
                if transport.returncode is None and self._to_child >= 0:
                    await self._order("exit 0", reply=False)
        finally:
            for fd in (commands_read, commands_write, replies_read, replies_write):
                if fd >= 0:
                    os.close(fd)

    async def _order(self, command: str, *, reply: bool = True) -> str:
        os.write(self._to_child, command.encode() + b"\n")
        if not reply:
            return ""
        while b"\n" not in self._replies:
            await trio.lowlevel.wait_readable(self._from_child)
            self._replies += os.read(self._from_child, 65536)
        line, self._replies = self._replies.split(b"\n", 1)
        return line.decode()

    def _release(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)


@final
class FakeTransportHarness(ContractHarness):
    """`FakeProcessTransport`, driven as its documentation says."""

    kind = "fake"

    def __init__(self) -> None:
        self._held = False
        self._consumed: dict[int, int] = {}

    @asynccontextmanager
    async def start(
        self, protocol: Any, child_fds: Layout | None = None
    ) -> AsyncIterator[Any]:
        fake = FakeProcessTransport(protocol, child_fds=child_fds)
        for fd in ScriptDriver(fake).input_fds:
            fake.stall(fd)  # like the real child: it reads only when told to
        self.transport = fake
        yield fake
        fake.flush()
        if fake.returncode is None:
            fake.exit(0)
        await trio.lowlevel.checkpoint()

    async def child_writes(self, fd: int, data: bytes) -> None:
        self.transport.deliver(fd, data)
        await trio.lowlevel.checkpoint()

    async def child_reads(self, fd: int, nbytes: int | None = None) -> bytes:
        fake = self.transport
        fake.flush()
        start = self._consumed.get(fd, 0)
        unread = len(fake.value(fd)) - start
        if nbytes is None:
            fake.drain(fd)
        elif nbytes > unread:
            fake.drain(fd, nbytes - unread)
        fake.stall(fd)
        await trio.lowlevel.checkpoint()
        written: bytes = fake.value(fd)
        data = written[start:] if nbytes is None else written[start : start + nbytes]
        self._consumed[fd] = start + len(data)
        return data

    async def child_closes(self, fd: int) -> None:
        self.transport.lose(fd)
        await trio.lowlevel.checkpoint()

    async def child_exits(self, code: int = 0) -> None:
        self.transport.exit(code, lose_fds=not self._held)
        await trio.lowlevel.checkpoint()

    async def grandchild_holds_fds(self) -> Callable[[], None]:
        fake = self.transport
        self._held = True

        def release() -> None:
            for fd in sorted(ScriptDriver(fake).open_fds):
                fake.lose(fd)

        return release

    async def settle(self, condition: Callable[[], bool]) -> None:
        self.transport.flush()
        await trio.lowlevel.checkpoint()
        assert condition(), "the fake delivers on flush(): nothing more will come"
