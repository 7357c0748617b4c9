"""`RemoteSession`: one remote child, from its ``ssh`` to its control socket."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final, final

import attrs
import trio

from .._options import SpawnOptions, StrOrBytesPath

if TYPE_CHECKING:
    from .._os._seam import ChildFds
    from ._options import RemoteOptions

from ._errors import classify
from ._scripts import STOPPER, WRAPPER, _script, _ticks

logger = logging.getLogger("trioproc")

#: The ``ssh`` client run for remote children (searched on the local PATH).
SSH: str = "ssh"

#: Bytes of ssh's own output kept to explain a failure.
_PREAMBLE_LIMIT: Final = 16 * 1024
#: Seconds, beyond the stop sequence's own, allowed for the control session.
_CONTROL_MARGIN: Final = 10.0
#: Signals queued for delivery before ``signalProcess`` refuses more.
_SIGNAL_QUEUE: Final = 64


@final
@attrs.define(eq=False)
class RemoteSession:
    """One remote child, from building its ``ssh`` to removing its control
    socket: the hook that `trioproc._os._reaper.Child` consults for signals, the
    stop sequence and the exit status.

    Attributes:
      pid: the program's pid on the remote host, once it has reported.
      pgid: its process group there (the wrapper's pid).
    """

    options: SpawnOptions
    remote: RemoteOptions
    _directory: str
    _marker: bytes
    _report_fd: int
    pid: int | None = attrs.field(init=False, default=None)
    pgid: int | None = attrs.field(init=False, default=None)
    _send: trio.MemorySendChannel[int] = attrs.field(init=False)
    _receive: trio.MemoryReceiveChannel[int] = attrs.field(init=False)
    _stopped: bool = attrs.field(init=False, default=False)

    def __attrs_post_init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel(_SIGNAL_QUEUE)

    @classmethod
    def open(cls, options: SpawnOptions) -> RemoteSession:
        """A session for *options* (which has ``remote``), with its private
        directory for the control socket."""
        assert options.remote is not None
        directory = tempfile.mkdtemp(prefix="trioproc-ssh-")
        fds = options.child_fds
        report_fd = 1 if options.pty is not None or fds.get(2) != "r" else 2
        return cls(
            options,
            options.remote,
            directory,
            f"TRIOPROC-{secrets.token_hex(8)}".encode(),
            report_fd,
        )

    @property
    def _control(self) -> str:
        return os.path.join(self._directory, "control")

    def local_options(self) -> SpawnOptions:
        """The options of the local child: ``ssh``, carrying the remote
        command line."""
        options = self.options
        fine, coarse = _ticks(options.kill_after)
        if options.env is None:
            command: list[StrOrBytesPath] = list(options.argv)
            search: StrOrBytesPath = "-"
        else:
            command = ["env", "-i", *options.env, *options.argv]
            assert options.search_path is not None
            search = options.search_path
        cwd: StrOrBytesPath = ""
        if options.cwd is not None:
            cwd = options.cwd if options.cwd.startswith(b"/") else b"./" + options.cwd
        line = _script(
            WRAPPER,
            [
                self._marker,
                self._report_fd,
                fine,
                coarse,
                cwd,
                search,
                options.argv[0],
                *command,
            ],
        )
        argv = [
            SSH,
            "-tt" if options.pty is not None else "-T",
            *self._forced(),
            *self.remote.ssh_args,
            "-o",
            "BatchMode=yes",
            "--",
            self.remote.host,
            line,
        ]
        return SpawnOptions.check(
            argv,
            child_fds=options.child_fds,
            pty=options.pty or False,
            kill_after=options.kill_after,
            high_water=options.high_water,
            low_water=options.low_water,
        )

    def _forced(self, master: bool = True) -> list[str]:
        # First on the command line: ssh keeps the first value it gets for an
        # option, so no configuration can make the master persist or fork.
        return [
            "-e",
            "none",
            "-o",
            f"ControlMaster={'yes' if master else 'no'}",
            "-o",
            f"ControlPath={self._control}",
            "-o",
            "ControlPersist=no",
            "-o",
            "ForkAfterAuthentication=no",
        ]

    async def handshake(self, launch: ChildFds, pid: int) -> None:
        """Wait for the wrapper's report; then `pid` and `pgid` are the
        remote program's.

        Raises:
          RemoteError: ssh ended first (its subclasses say why).
          FileNotFoundError, NotADirectoryError, PermissionError: the remote
            program or cwd cannot be used; the message names the host.

        Cancellation, and any error: the local ssh is killed and reaped (a
        remote wrapper that had started ends its tree itself once its
        connection is gone).
        """
        fd = launch.readers[self._report_fd]
        said = bytearray()
        line = bytearray()
        try:
            while True:
                try:
                    byte = os.read(fd, 1)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(fd)
                    continue
                except OSError as exc:  # EIO: a terminal's end of output
                    if exc.errno != errno.EIO:
                        raise
                    byte = b""
                if not byte:
                    break
                if byte != b"\n":
                    line += byte
                    if len(line) <= _PREAMBLE_LIMIT:
                        continue
                report = bytes(line).rstrip(b"\r")
                if report.startswith(self._marker + b" "):
                    self._reported(report[len(self._marker) + 1 :].decode())
                    return
                said += line + b"\n"
                del said[:-_PREAMBLE_LIMIT]
                line.clear()
        except BaseException:
            _kill_and_reap(pid)
            raise
        said += line
        returncode = _kill_and_reap(pid)
        raise classify(self.remote.host, said.decode(errors="replace"), returncode)

    def _reported(self, report: str) -> None:
        words = report.split()
        if len(words) == 3 and words[0] == "pid":
            self.pid, self.pgid = int(words[1]), int(words[2])
            return
        host = self.remote.host
        code = getattr(errno, words[0], errno.EIO)
        what = words[1] if len(words) > 1 else "?"
        options = self.options
        name = os.fsdecode(
            options.cwd if what == "cwd" and options.cwd else options.argv[0]
        )
        where = (
            "cwd" if what == "cwd" else "PATH" if b"/" not in options.argv[0] else ""
        )
        message = f"{os.strerror(code)} on {host}" + (f" ({where})" if where else "")
        raise OSError(code, message, name)

    # --- the hook the Linux Child consults -----------------------------------

    def signal(self, signum: int) -> None:
        """Queue *signum* for the remote program's process group.

        Raises:
          trio.BusyResourceError: too many signals are waiting to be sent.
        """
        try:
            self._send.send_nowait(signum)
        except trio.WouldBlock:
            raise trio.BusyResourceError(
                f"{_SIGNAL_QUEUE} signals are already waiting to reach "
                f"{self.remote.host}"
            ) from None

    def translate(self, status: int) -> int:
        """The local ssh's wait status, as the remote program's: the wrapper's
        shell reports a program ended by signal N as exit status 128 + N; and
        ssh exits with 255 when the wrapper itself was killed, which after
        the stop sequence's SIGKILL is what happened to the program too."""
        if os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
            if 128 < code < 128 + signal.NSIG:
                return code - 128
            if code == 255 and self._stopped:
                return signal.SIGKILL
        return status

    async def serve_signals(self, reaped: trio.Event) -> None:
        """Deliver queued signals, in order, until the child is reaped."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._deliver_signals)
            await reaped.wait()
            nursery.cancel_scope.cancel()

    async def _deliver_signals(self) -> None:
        async for signum in self._receive:
            try:
                name = signal.Signals(signum).name.removeprefix("SIG")
            except ValueError:
                name = str(signum)
            assert self.pgid is not None
            done = await self._control_command(
                ["kill", "-s", name, "--", f"-{self.pgid}"]
            )
            if done.returncode != 0:
                logger.warning(
                    "signal %s did not reach the remote child on %s: %s",
                    name,
                    self.remote.host,
                    done.stderr.decode(errors="replace").strip(),
                )

    async def _control_command(
        self, argv: Sequence[str]
    ) -> subprocess.CompletedProcess[bytes]:
        return await trio.run_process(
            [
                SSH,
                "-T",
                *self._forced(master=False),
                *self.remote.ssh_args,
                "-o",
                "BatchMode=yes",
                "--",
                self.remote.host,
                " ".join(shlex.quote(a) for a in argv),
            ],
            stdin=subprocess.DEVNULL,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )

    async def end(
        self, kill_after: float, grace: float, wait: Callable[[], Awaitable[None]]
    ) -> bool:
        """The stop sequence, run on the remote host: SIGTERM and SIGCONT to
        the program's group, SIGKILL after *kill_after*; return whether the
        session is over (*wait* saw the local ssh reaped) and the remote
        group gone. ``False``: the caller ends the local ssh; the remote
        wrapper then ends its tree itself.

        Cancellation: not shielded here (the block's end shields it).
        """
        if self.pgid is None:  # pragma: no cover - the handshake sets it
            await trio.lowlevel.checkpoint()
            return False
        self._stopped = True
        a, c = _ticks(kill_after)
        b, d = _ticks(grace)
        ok = False
        with trio.move_on_after(kill_after + grace + _CONTROL_MARGIN):
            done = await self._control_command(
                [
                    "/bin/sh",
                    "-c",
                    STOPPER,
                    "trioproc",
                    *map(str, (self.pgid, a, c, b, d)),
                ]
            )
            ok = done.returncode == 0
            if not ok:
                logger.warning(
                    "could not stop the remote child on %s (%s): ending its ssh",
                    self.remote.host,
                    done.stderr.decode(errors="replace").strip() or done.returncode,
                )
                return False
            with trio.move_on_after(grace):
                await wait()
                return True
        return False

    def close(self) -> None:
        """Remove the private directory (ssh removed its socket on exit)."""
        shutil.rmtree(self._directory, ignore_errors=True)


def _kill_and_reap(pid: int) -> int | None:
    """Kill and reap the local ssh of a child that did not start (it is our
    unreaped child, so its pid and group are its own); return its exit
    status if it had exited by itself."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    # Nothing blocks SIGKILL: this wait is short.
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return None if code == -signal.SIGKILL else code
