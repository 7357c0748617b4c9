"""Children on other hosts: the system's ``ssh`` as the local child, a small
POSIX-shell wrapper on the remote side.

A ``spawn(argv, host=...)`` child is an ordinary local child -- the ``ssh``
client, whose argv this module builds -- plus a wrapper script that ``ssh``
runs on the remote host with ``/bin/sh``. Nothing of an SSH implementation is
ours, and nothing but ``ssh`` and a POSIX ``/bin/sh`` is needed.

The wrapper (`WRAPPER`), on the remote host:

1. starts a *watcher* in the background, which polls the ``sshd`` process
   that runs the session (the wrapper's parent). When that exits -- the
   connection is gone, say because the local ``ssh`` was killed or the
   network dropped and sshd noticed -- the watcher ends the tree itself:
   SIGTERM and SIGCONT to the wrapper's process group, SIGKILL once the
   wrapper is gone or *kill_after* has passed. The watcher ignores the
   signals the group gets from us, and holds none of the session's fds.
2. checks *cwd* and finds the program on the ``PATH`` the program will have,
   and reports a missing or unusable one as an error line (below) instead of
   running anything, so that entering the block can raise
   `FileNotFoundError` & co. naming the host, not return exit status 127.
3. runs the program in the foreground of a small ``sh -c`` that first
   reports its own pid, then ``exec``s the program with *argv* exactly and,
   when *env* was given, with ``env -i`` and exactly that environment.
4. waits for it, with a no-op trap on the signals a process group gets, so
   that it survives what is meant for the program; then kills the watcher
   and exits with the program's status.

sshd makes every session's first process a session and process-group
leader, so the wrapper's pid is the process group of the program and of
whatever it starts: signals and the stop sequence go to that group.

The report: the first line the wrapper writes to the child's stderr (or, on
a pseudo-terminal, to the terminal) is ``<marker> pid <pid> <pgid>`` or
``<marker> <ERRNO> <what>``, where the marker holds a random nonce made for
this one child. Entering the block reads the output up to that line, one
byte at a time, so that nothing after it is consumed: what the user gets
starts with the program's first byte. Lines before it (ssh's own warnings,
what a login shell's rc file printed) are kept, bounded, to explain a
failure; when ``ssh`` exits before any report, its message says what failed
(`classify`).

Signals go over a second session of the same connection: the main ``ssh``
is an OpenSSH *ControlMaster* with its socket in a private temporary
directory, and ``signalProcess`` and the stop sequence run ``kill`` on the
remote host through it (``ssh -S socket host 'kill -s TERM -- -PGID'``), in
order, from a task of the child's nursery.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import re
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

from ._options import SpawnOptions, StrOrBytesPath

if TYPE_CHECKING:
    from ._os._launch import Launch

__all__ = [
    "AuthenticationError",
    "HostKeyError",
    "HostUnreachableError",
    "RemoteError",
    "RemoteOptions",
    "RemoteSession",
    "check_remote",
]

logger = logging.getLogger("trioproc")

#: The ``ssh`` client run for remote children (searched on the local PATH).
SSH: str = "ssh"
#: The remote side's poll step, in seconds, where ``sleep`` takes fractions
#: (GNU, BusyBox, the BSDs); elsewhere whole seconds.
STEP: Final = 0.05
#: Bytes of ssh's own output kept to explain a failure.
_PREAMBLE_LIMIT: Final = 16 * 1024
#: Seconds, beyond the stop sequence's own, allowed for the control session.
_CONTROL_MARGIN: Final = 10.0
#: Signals queued for delivery before ``signalProcess`` refuses more.
_SIGNAL_QUEUE: Final = 64

# The remote wrapper. Positional parameters: the marker, the fd of the
# report, the poll ticks of kill_after (fine, coarse), cwd ("" for none),
# the search path ("-" for the inherited PATH), the program name, then
# the command to exec: "env -i NAME=VALUE ..." and argv, or argv alone.
WRAPPER: Final = r"""
m=$1 rfd=$2 fine=$3 coarse=$4 cwd=$5 spath=$6 prog=$7
shift 7
unset CDPATH
w=$$ parent=$PPID
if sleep 0.01 2>/dev/null; then step=0.05 ticks=$fine; else step=1 ticks=$coarse; fi
(
  trap '' HUP INT QUIT TERM USR1 USR2 ALRM PIPE WINCH
  exec </dev/null >/dev/null 2>&1
  while kill -s 0 -- "$parent" 2>/dev/null; do sleep "$step"; done
  kill -s TERM -- "-$w"; kill -s CONT -- "-$w"
  i=0
  while kill -s 0 -- "$w" 2>/dev/null && [ "$i" -lt "$ticks" ]; do
    sleep "$step"; i=$((i + 1))
  done
  kill -s KILL -- "-$w"
) &
watcher=$!
fail() {
  printf '%s %s\n' "$m" "$*" >&"$rfd"
  kill -s KILL -- "$watcher" 2>/dev/null
  exit 127
}
if [ -n "$cwd" ]; then
  if [ ! -e "$cwd" ]; then fail ENOENT cwd
  elif [ ! -d "$cwd" ]; then fail ENOTDIR cwd
  elif ! cd "$cwd" 2>/dev/null; then fail EACCES cwd
  fi
fi
[ "$spath" = - ] && spath=$PATH
case $prog in
*/*)
  if [ ! -e "$prog" ]; then fail ENOENT program
  elif [ ! -f "$prog" ] || [ ! -x "$prog" ]; then fail EACCES program
  fi ;;
*)
  found= denied=
  IFS=:; set -f
  for d in $spath; do
    c=${d:-.}/$prog
    if [ -f "$c" ] && [ -x "$c" ]; then found=$c; break; fi
    [ -e "$c" ] && denied=$c
  done
  unset IFS; set +f
  if [ -z "$found" ]; then
    [ -n "$denied" ] && fail EACCES program
    fail ENOENT program
  fi ;;
esac
trap : HUP INT QUIT TERM USR1 USR2 ALRM PIPE WINCH
/bin/sh -c 'printf "%s pid %s %s\n" "$1" "$$" "$PPID" >&"$2"; shift 2; exec "$@"' \
  sh "$m" "$rfd" "$@"
s=$?
kill -s KILL -- "$watcher" 2>/dev/null
exit "$s"
"""

# The stop sequence, run on the remote host over the control socket.
# Parameters: the process group, the poll ticks of kill_after (fine,
# coarse) and of the grace after SIGKILL (fine, coarse). The group's leader
# is the wrapper, which exits once the program has: the group is ended
# when it has.
STOPPER: Final = r"""
g=$1
if sleep 0.01 2>/dev/null; then step=0.05 a=$2 b=$4; else step=1 a=$3 b=$5; fi
kill -s TERM -- "-$g" 2>/dev/null || exit 0
kill -s CONT -- "-$g" 2>/dev/null
i=0
while kill -s 0 -- "$g" 2>/dev/null && [ "$i" -lt "$a" ]; do
  sleep "$step"; i=$((i + 1))
done
kill -s KILL -- "-$g" 2>/dev/null
i=0
while kill -s 0 -- "$g" 2>/dev/null; do
  [ "$i" -ge "$b" ] && exit 1
  sleep "$step"; i=$((i + 1))
done
exit 0
"""


class RemoteError(OSError):
    """A child on another host (``spawn(..., host=...)``) could not be
    started: ssh could not log in, or the remote side failed before the
    program ran. The message names the host and says what failed.

    Attributes:
      host: the *host* given to ``spawn()``.
      detail: what ``ssh`` said about it (its last lines), or ``""``.
    """

    def __init__(self, code: int, message: str, host: str, detail: str = "") -> None:
        super().__init__(code, message)
        self.host = host
        self.detail = detail

    def __str__(self) -> str:
        return str(self.strerror)


class HostUnreachableError(RemoteError, ConnectionError):
    """ssh could not connect to the host: connection refused or timed out, no
    route, or a name that does not resolve."""


class AuthenticationError(RemoteError, PermissionError):
    """The host refused every way ssh had to log in (``Permission denied``)."""


class HostKeyError(RemoteError):
    """The host's key is not the one the known-hosts file holds (or it is not
    there, with strict host key checking): ssh refused to talk to it."""


# What ssh says, and what it means. The first that matches wins.
_CLASSES: Final[tuple[tuple[re.Pattern[str], type[RemoteError], int, str], ...]] = (
    (
        re.compile(r"host key verification failed|remote host identification has"),
        HostKeyError,
        errno.EPERM,
        "the host key does not match the known hosts",
    ),
    (
        re.compile(r"permission denied \(|too many authentication failures"),
        AuthenticationError,
        errno.EACCES,
        "authentication refused",
    ),
    (
        re.compile(r"connection refused"),
        HostUnreachableError,
        errno.ECONNREFUSED,
        "connection refused",
    ),
    (
        re.compile(r"could not resolve hostname|name or service not known"),
        HostUnreachableError,
        errno.EHOSTUNREACH,
        "host name does not resolve",
    ),
    (
        re.compile(r"timed out"),
        HostUnreachableError,
        errno.ETIMEDOUT,
        "connection timed out",
    ),
    (
        re.compile(r"no route to host|network is unreachable|host is down"),
        HostUnreachableError,
        errno.EHOSTUNREACH,
        "host unreachable",
    ),
)


def classify(host: str, said: str, returncode: int | None) -> RemoteError:
    """The error for an ``ssh`` that ended before the wrapper reported, from
    what it printed (*said*)."""
    lines = [line.strip() for line in said.splitlines() if line.strip()]
    detail = "; ".join(lines[-3:])
    lowered = said.lower()
    for pattern, kind, code, what in _CLASSES:
        if pattern.search(lowered):
            return kind(code, f"{host}: {what} ({detail})", host, detail)
    how = "" if returncode is None else f" with status {returncode}"
    return RemoteError(
        errno.EIO,
        f"{host}: ssh ended{how} before the remote program started"
        + (f" ({detail})" if detail else ""),
        host,
        detail,
    )


@final
@attrs.frozen
class RemoteOptions:
    """The checked remote part of a ``spawn()`` call.

    Attributes:
      host: the destination, as ``ssh`` takes it (``user@host``, an alias
        of the ssh configuration, ``ssh://user@host:port``).
      ssh_args: the ``ssh`` options that ``ssh_options=`` stands for.
    """

    host: str
    ssh_args: tuple[str, ...]


def check_remote(
    host: object,
    ssh_options: object,
    options: SpawnOptions,
    *,
    child_fds_given: bool,
) -> RemoteOptions:
    """Check *host* and *ssh_options*, and the rest of *options* against what
    a remote child can do.

    Raises:
      TypeError: *host* or *ssh_options* has the wrong type.
      ValueError: a bad host or option, or an argument a remote child cannot
        honour (*child_fds* beyond 0-2, *uid*/*gid*, *cgroup*, *executable*).
    """
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    if not host or host.startswith("-") or any(c.isspace() for c in host):
        raise ValueError(f"host must be an ssh destination, not {host!r}")
    if ssh_options is None:
        ssh_args: tuple[str, ...] = ()
    elif isinstance(ssh_options, (str, os.PathLike)):
        ssh_args = ("-F", os.fsdecode(ssh_options))
    elif isinstance(ssh_options, Sequence) and not isinstance(ssh_options, bytes):
        args: list[str] = []
        for option in ssh_options:
            if not isinstance(option, str):
                raise TypeError(
                    f"ssh_options must be 'Key=Value' strings, not {option!r}"
                )
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*[ =]\S.*", option) or (
                "\n" in option or "\0" in option
            ):
                raise ValueError(
                    f"ssh_options entries must read 'Key=Value' (as ssh -o "
                    f"takes them), not {option!r}"
                )
            args += ("-o", option)
        ssh_args = tuple(args)
    else:
        raise TypeError(
            "ssh_options must be a list of 'Key=Value' strings or the path of "
            f"an ssh_config file, not {type(ssh_options).__name__}"
        )
    refused = [
        name
        for name, given in (
            ("uid", options.uid is not None),
            ("gid", options.gid is not None),
            ("cgroup", options.cgroup),
            ("executable", options.executable is not None),
        )
        if given
    ]
    if refused:
        raise ValueError(
            f"{', '.join(refused)} cannot be used with host=: a remote child runs "
            "as the ssh user, in the remote login's own session"
        )
    fds = options.child_fds
    if options.pty is None and child_fds_given:
        stdin = fds.get(0, "w")
        if not set(fds) <= {0, 1, 2} or not (
            stdin == "w" or (isinstance(stdin, int) and not isinstance(stdin, bool))
        ):
            raise ValueError(
                "a remote child (host=) has only fds 0, 1 and 2, carried by ssh; "
                f"got child_fds={dict(fds)!r}"
            )
        if fds.get(1) != "r" and fds.get(2) != "r":
            raise ValueError(
                "a remote child (host=) needs fd 1 or fd 2 to be 'r': the remote "
                "side reports the program's start there"
            )
    if options.env is not None and any(b"=" in arg for arg in options.argv[:1]):
        raise ValueError("with env= and host=, argv[0] cannot contain '='")
    return RemoteOptions(host, ssh_args)


def host_name(destination: str) -> str:
    """The host name in an ssh destination: ``user@host``, ``host``, or
    ``ssh://user@host:port`` (``[v6]`` brackets removed)."""
    rest = destination.removeprefix("ssh://")
    rest = rest.rpartition("@")[2]
    if rest.startswith("["):
        return rest[1:].partition("]")[0]
    if destination.startswith("ssh://"):
        rest = rest.partition(":")[0]
    return rest


def _ticks(seconds: float) -> tuple[int, int]:
    return math.ceil(seconds / STEP), math.ceil(seconds)


def _quote(args: Sequence[StrOrBytesPath | int]) -> str:
    return " ".join(
        shlex.quote(str(a) if isinstance(a, int) else os.fsdecode(a)) for a in args
    )


def _script(script: str, args: Sequence[StrOrBytesPath | int]) -> str:
    """The command line that runs *script* with /bin/sh and *args*, quoted for
    the remote login shell (any POSIX shell)."""
    return f"exec /bin/sh -c {shlex.quote(script)} trioproc {_quote(args)}"


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

    async def handshake(self, launch: Launch, pid: int) -> None:
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

    # --- the hook the reaper's Child consults --------------------------------

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

        Cancellation: not shielded here (the reaper shields it).
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
