"""The control channel of a running ``trioproc run``, and ``trioproc ctl``.

A running fleet listens on a Unix stream socket beside its fleet file,
``.trioproc.sock`` (mode 0600), and answers the ``trioproc ctl`` commands --
``status``, ``restart NAME``, ``stop NAME``, ``start NAME``, ``logs [-f]
[NAME]`` -- as supervisorctl and circusctl answer theirs. ``trioproc
status`` is short for ``trioproc ctl status``. (``trioproc start`` is the
honcho-style "run these processes" command, so the channel's own commands
live under ``ctl``.)

When systemd runs ``trioproc run`` as a ``Type=notify`` service, the same
object tells it ``READY=1`` once every process is ready, ``STOPPING=1`` when
the fleet stops, and ``WATCHDOG=1`` while the fleet is healthy
(`trioproc._notify.ServiceNotifier`).

The wire protocol: newline-delimited JSON objects, one request
(``{"command": "restart", "name": "web"}``) and its reply (``{"ok": true,
...}`` or ``{"ok": false, "error": "..."}``); ``logs`` replies with one
``{"log": ...}`` object per line, then ``{"ok": true}`` (never, with
``follow``). A request is at most `MAX_REQUEST` bytes and must arrive within
`REQUEST_TIMEOUT` seconds; an oversized, malformed or late one gets an error
reply and the connection is closed. At most `MAX_CLIENTS` connections are
served at once; a client that does not read its replies within
`SEND_TIMEOUT` seconds is dropped. So no client can stall or crash the fleet.

The socket is taken safely: under a lock on the directory, an existing
socket that is not ours (another user's, not a socket) or that a live fleet
listens on is refused with a clear error; one nobody listens on (a stale one
from a killed run) is replaced. The new socket is bound under a temporary
name, made 0600, then renamed into place, and removed at the end only if it
is still ours.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import stat
import struct
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, final

import trio

from ._errors import ChildNotReady
from ._fleet import DEFAULT_FILES, find_fleet_file
from ._notify import ServiceNotifier
from ._supervision._supervisor import is_supervised

if TYPE_CHECKING:
    from ._fleet import Fleet
    from ._supervision._child import SupervisedChild
    from ._supervision._spec import OutputSink
    from ._supervision._supervisor import Supervisor

__all__ = ["ControlError", "FleetControl", "add_commands", "socket_path"]

SOCKET_NAME: Final = ".trioproc.sock"
MAX_REQUEST: Final = 64 * 1024
MAX_REPLY: Final = 1024 * 1024
MAX_CLIENTS: Final = 64
REQUEST_TIMEOUT: Final = 30.0
SEND_TIMEOUT: Final = 10.0
#: Each process's ring buffer of recent output lines, and their longest.
LOG_LINES: Final = 1000
LOG_LINE_MAX: Final = 4096
_LOCK_TIMEOUT: Final = 5.0
_SUN_PATH_MAX: Final = 107  # sockaddr_un.sun_path, less its NUL
_PEERCRED: Final = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ControlError(Exception):
    """The control socket cannot be used: in use by another fleet, owned by
    another user, not a socket, or (for ``ctl``) nobody is listening."""


def socket_path(fleet_file: Path) -> Path:
    """The control socket of the fleet in *fleet_file*."""
    return fleet_file.resolve().parent / SOCKET_NAME


def _open_directory(path: Path) -> int:
    return os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _address(path: Path, directory: int) -> str:
    """An address for *path* that fits ``sun_path``: the path itself, or,
    when it is too long, the same file through the open *directory*."""
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return str(path)
    return f"/proc/self/fd/{directory}/{path.name}"


def _peer(sock: socket.socket | trio.socket.SocketType) -> tuple[int, int]:
    """The (pid, uid) of the process at the other end of *sock*."""
    pid, uid, _ = _PEERCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    )
    return pid, uid


def _check_owner(path: Path, directory: int) -> os.stat_result | None:
    """The existing socket at *path*, if any, once it is known to be ours."""
    try:
        found = os.lstat(path.name, dir_fd=directory)
    except FileNotFoundError:
        return None
    if not stat.S_ISSOCK(found.st_mode):
        raise ControlError(f"{path} exists and is not a socket: remove it first")
    if found.st_uid != os.geteuid():
        raise ControlError(
            f"{path} belongs to uid {found.st_uid}, not to you: refusing to use it"
        )
    return found


def _connect(path: Path, directory: int, timeout: float) -> socket.socket:
    """A connected socket to *path*; ``ConnectionRefusedError`` if stale."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock.connect(_address(path, directory))
                break
            except BlockingIOError:
                # A Unix socket's full backlog: EAGAIN, not a wait. Retry.
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path}: the fleet does not answer") from None
                time.sleep(0.01)
    except BaseException:
        sock.close()
        raise
    return sock


# --- the server ---------------------------------------------------------------


@final
class _Logs:
    """Recent output lines of each process, bounded, with followers."""

    def __init__(self) -> None:
        self.lines: dict[str, deque[tuple[int, int, int, str]]] = {}
        self.counts: dict[str, int] = {}
        self.total = 0
        self.news = trio.Event()

    def add(self, name: str, fd: int, line: bytes) -> None:
        text = line[:LOG_LINE_MAX].decode(errors="replace")
        ring = self.lines.setdefault(name, deque(maxlen=LOG_LINES))
        self.counts[name] = count = self.counts.get(name, 0) + 1
        self.total += 1
        ring.append((self.total, count, fd, text))
        self.news.set()
        self.news = trio.Event()

    def since(
        self, names: Sequence[str], cursors: dict[str, int]
    ) -> tuple[list[tuple[int, str, int, str]], dict[str, int]]:
        """Lines of *names* after *cursors* (per-process counts), in the
        order they came, and how many of each were lost meanwhile."""
        found: list[tuple[int, str, int, str]] = []
        lost: dict[str, int] = {}
        for name in names:
            ring = self.lines.get(name, deque())
            cursor = cursors.get(name, 0)
            if ring and ring[0][1] > cursor + 1:
                lost[name] = ring[0][1] - cursor - 1
            for total, count, fd, text in ring:
                if count > cursor:
                    found.append((total, name, fd, text))
            cursors[name] = self.counts.get(name, cursor)
        found.sort()
        return found, lost


class _Closed(Exception):
    """The connection is to be closed (after an error reply, if any)."""


@final
class FleetControl:
    """The control channel of one ``trioproc run``, and its systemd notices.

    Create it before the `Supervisor` (`output` is the supervisor's output
    sink: it keeps the logs), then run the fleet inside `serve`.
    """

    def __init__(self, fleet: Fleet, output: OutputSink) -> None:
        self.fleet = fleet
        self.path = socket_path(fleet.path)
        self._print = output
        self._logs = _Logs()
        self._names = [p.name for p in fleet.processes]
        self._clients = 0
        self._ready = False
        # Taken now, before any process inherits them from os.environ.
        self.notifier = ServiceNotifier.from_environment()

    def output(self, name: str, fd: int, line: bytes) -> None:
        """The supervisor's output sink: print *line* and keep it."""
        self._logs.add(name, fd, line)
        self._print(name, fd, line)

    def ready(self) -> None:
        """Every process has been started and is ready: tell systemd."""
        self._ready = True
        self.notifier.ready()

    @contextlib.asynccontextmanager
    async def serve(
        self, supervisor: Supervisor, nursery: trio.Nursery
    ) -> AsyncIterator[None]:
        """Listen on the control socket while the block runs.

        The connections are served in *nursery*, which must outlive the
        block (the run's own): the block's exceptions then leave it as
        themselves, not in a group.

        Raises:
          ControlError: the socket is in use by a running fleet, or not ours.

        Cancellation: leaving the block ends every connection (a command in
        progress is cancelled, and waited for, up to the fleet's
        ``shutdown_timeout``) and removes the socket.
        """
        sock, directory, identity = await self._bind()
        done = trio.Event()
        scope = await nursery.start(
            self._serve, sock, directory, identity, supervisor, done
        )
        try:
            yield
        finally:
            self.notifier.stopping()
            scope.cancel()
            with trio.move_on_after(self.fleet.shutdown_timeout, shield=True):
                await done.wait()

    async def _serve(
        self,
        sock: socket.socket,
        directory: int,
        identity: tuple[int, int],
        supervisor: Supervisor,
        done: trio.Event,
        task_status: trio.TaskStatus[trio.CancelScope],
    ) -> None:
        """Accept connections (and keep systemd's watchdog fed) until
        cancelled; then remove the socket, if it is still ours."""
        try:
            with trio.CancelScope() as scope:
                listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
                async with trio.open_nursery() as tasks:
                    tasks.start_soon(self._accept, listener, supervisor, tasks)
                    tasks.start_soon(
                        self.notifier.keep_alive, lambda: self._healthy(supervisor)
                    )
                    task_status.started(scope)
        finally:
            sock.close()
            with contextlib.suppress(OSError):
                now = os.lstat(self.path.name, dir_fd=directory)
                if (now.st_dev, now.st_ino) == identity:
                    os.unlink(self.path.name, dir_fd=directory)
            os.close(directory)
            done.set()

    async def _bind(self) -> tuple[socket.socket, int, tuple[int, int]]:
        """Take the control socket: refuse a live or foreign one, replace a
        stale one; return it listening, the directory's fd and its inode."""
        path = self.path
        try:
            directory = _open_directory(path)
        except OSError as exc:
            raise ControlError(f"cannot open {path.parent}: {exc}") from exc
        try:
            with trio.fail_after(_LOCK_TIMEOUT):
                while True:
                    try:
                        fcntl.flock(directory, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        # Another trioproc is taking a socket here right now.
                        await trio.sleep(0.01)
            try:
                sock, identity = self._take(path, directory)
            finally:
                fcntl.flock(directory, fcntl.LOCK_UN)
        except trio.TooSlowError:
            os.close(directory)
            raise ControlError(
                f"{path.parent} stays locked by another process"
            ) from None
        except BaseException:
            os.close(directory)
            raise
        return sock, directory, identity

    def _take(
        self, path: Path, directory: int
    ) -> tuple[socket.socket, tuple[int, int]]:
        """`_bind`'s work, under the directory's lock."""
        if _check_owner(path, directory) is not None:
            try:
                probe = _connect(path, directory, 1.0)
            except ConnectionRefusedError:
                os.unlink(path.name, dir_fd=directory)  # stale: nobody listens
            except OSError as exc:
                raise ControlError(f"cannot check {path}: {exc}") from exc
            else:
                with probe:
                    pid, _ = _peer(probe)
                raise ControlError(
                    f"another trioproc run (pid {pid}) is running a fleet from "
                    f"{path.parent}: its control socket is {path}"
                )
        temporary = f"{path.name}.{os.getpid()}.new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=directory)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            # Until it listens, a connection to it is refused: the moment
            # between bind and chmod exposes nothing.
            sock.bind(_address(path.with_name(temporary), directory))
            os.chmod(temporary, 0o600, dir_fd=directory)
            os.rename(temporary, path.name, src_dir_fd=directory, dst_dir_fd=directory)
            found = os.lstat(path.name, dir_fd=directory)
            # The backlog is not the client limit (that is enforced once
            # accepted, with a reply): a full backlog makes a client's
            # connect fail with EAGAIN instead of waiting its turn.
            sock.listen(socket.SOMAXCONN)
        except BaseException:
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=directory)
            raise
        return sock, (found.st_dev, found.st_ino)

    def _healthy(self, supervisor: Supervisor) -> bool:
        """Every process started so far runs (and is ready, once all were)."""
        children = supervisor.children
        if not all(child.running for child in children):
            return False
        return not self._ready or all(child.ready for child in children)

    async def _accept(
        self,
        listener: trio.SocketListener,
        supervisor: Supervisor,
        nursery: trio.Nursery,
    ) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:  # pragma: no cover - out of fds
                if exc.errno not in (
                    errno.EMFILE,
                    errno.ENFILE,
                    errno.ENOBUFS,
                    errno.ENOMEM,
                ):
                    raise
                await trio.sleep(0.1)  # out of fds: let connections end first
                continue
            nursery.start_soon(self._connection, stream, supervisor)

    async def _connection(
        self, stream: trio.SocketStream, supervisor: Supervisor
    ) -> None:
        """Serve one client; whatever it does, only its connection suffers."""
        self._clients += 1
        try:
            async with stream:
                try:
                    _, uid = _peer(stream.socket)
                    if uid not in (os.geteuid(), 0):  # pragma: no cover - 0600
                        raise _Closed(f"uid {uid} may not control this fleet")
                    if self._clients > MAX_CLIENTS:
                        raise _Closed(f"too many clients (at most {MAX_CLIENTS})")
                    buffer = bytearray()
                    while True:
                        request = await self._read_request(stream, buffer)
                        if request is None:
                            return
                        await self._answer(stream, request, supervisor)
                except _Closed as closing:
                    if closing.args:
                        with trio.move_on_after(SEND_TIMEOUT):
                            await self._send(
                                stream, {"ok": False, "error": closing.args[0]}
                            )
        except (trio.BrokenResourceError, trio.ClosedResourceError, _Gone):
            pass  # the client went away
        finally:
            self._clients -= 1

    async def _read_request(
        self, stream: trio.SocketStream, buffer: bytearray
    ) -> dict[str, Any] | None:
        """The next request, or ``None`` at end of input between requests."""
        with trio.move_on_after(REQUEST_TIMEOUT) as late:
            while b"\n" not in buffer:
                if len(buffer) > MAX_REQUEST:
                    raise _Closed(f"request longer than {MAX_REQUEST} bytes")
                data = await stream.receive_some(MAX_REQUEST + 1 - len(buffer) + 1)
                if not data:
                    if buffer:
                        raise _Closed()  # half a request, then end of input
                    return None
                buffer += data
        if late.cancelled_caught:
            raise _Closed(f"no complete request within {REQUEST_TIMEOUT:g}s")
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        if len(line) > MAX_REQUEST:
            raise _Closed(f"request longer than {MAX_REQUEST} bytes")
        try:
            request = json.loads(line)
        except (ValueError, RecursionError):
            raise _Closed("malformed request: not a JSON object") from None
        if not isinstance(request, dict):
            raise _Closed("malformed request: not a JSON object")
        return request

    async def _send(self, stream: trio.SocketStream, reply: dict[str, Any]) -> None:
        data = (json.dumps(reply, ensure_ascii=True) + "\n").encode()
        if len(data) > MAX_REPLY:
            data = (
                json.dumps({"ok": False, "error": "reply too large"}) + "\n"
            ).encode()
        with trio.move_on_after(SEND_TIMEOUT) as late:
            await stream.send_all(data)
        if late.cancelled_caught:
            raise _Gone  # it does not read: drop it

    async def _answer(
        self, stream: trio.SocketStream, request: dict[str, Any], supervisor: Supervisor
    ) -> None:
        command = request.get("command")
        name = request.get("name")
        if name is not None and name not in self._names:
            await self._send(
                stream, {"ok": False, "error": f"no process named {name!r}"}
            )
            return
        if command == "status":
            await self._send(stream, self._status(supervisor))
        elif command == "logs":
            await self._stream_logs(stream, request, name)
        elif command in ("restart", "stop", "start"):
            if not isinstance(name, str):
                await self._send(
                    stream, {"ok": False, "error": f"{command} needs a process name"}
                )
                return
            await self._send(stream, await self._act(supervisor, command, name))
        else:
            await self._send(
                stream,
                {
                    "ok": False,
                    "error": f"unknown command {command!r} "
                    "(status, restart, stop, start, logs)",
                },
            )

    def _status(self, supervisor: Supervisor) -> dict[str, Any]:
        processes: list[dict[str, Any]] = []
        for name in self._names:
            child = _child(supervisor, name)
            if child is None:
                processes.append(
                    {
                        "name": name,
                        "state": "pending",
                        "pid": None,
                        "uptime": None,
                        "restarts": 0,
                        "last_exit": None,
                        "ready": False,
                        "status": None,
                    }
                )
                continue
            processes.append(
                {
                    "name": name,
                    "state": _state(supervisor, child),
                    "pid": child.pid,
                    "uptime": child.uptime,
                    "restarts": child.restarts,
                    "last_exit": child.returncode,
                    "ready": child.ready,
                    "status": child.status,
                }
            )
        return {
            "ok": True,
            "fleet": str(self.fleet.path),
            "pid": os.getpid(),
            "processes": processes,
        }

    async def _act(
        self, supervisor: Supervisor, command: str, name: str
    ) -> dict[str, Any]:
        child = _child(supervisor, name)
        if child is None:
            return {"ok": False, "error": f"{name} has not been started yet"}
        try:
            if command == "stop":
                await supervisor.stop(name)
                return {"ok": True, "message": f"{name} stopped"}
            if command == "restart":
                await supervisor.restart(name)
                return {"ok": True, "message": f"{name} restarted (pid {child.pid})"}
            state = _state(supervisor, child)
            if state != "stopped":
                return {"ok": False, "error": f"{name} is {state}, not stopped"}
            started = await supervisor.start(child.spec)
            return {"ok": True, "message": f"{name} started (pid {started.pid})"}
        except (ChildNotReady, OSError, RuntimeError, ValueError) as exc:
            return {"ok": False, "error": f"{command} {name} failed: {exc}"}

    async def _stream_logs(
        self, stream: trio.SocketStream, request: dict[str, Any], name: str | None
    ) -> None:
        names = self._names if name is None else [name]
        lines = request.get("lines", 50)
        if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
            await self._send(
                stream, {"ok": False, "error": "lines must be a whole number >= 0"}
            )
            return
        cursors: dict[str, int] = {}
        found, _ = self._logs.since(names, cursors)
        for _, who, fd, text in found[len(found) - lines :] if lines else []:
            await self._send(stream, {"log": {"name": who, "fd": fd, "line": text}})
        if not request.get("follow"):
            await self._send(stream, {"ok": True})
            return
        while True:
            # Lines that came while the last ones were sent count too: look
            # first, and wait (no checkpoint between) only if there are none.
            found, lost = self._logs.since(names, cursors)
            if not found and not lost:
                await self._logs.news.wait()
                continue
            for who, count in lost.items():
                await self._send(stream, {"lost": {"name": who, "lines": count}})
            for _, who, fd, text in found:
                await self._send(stream, {"log": {"name": who, "fd": fd, "line": text}})


class _Gone(Exception):
    """The client stopped reading its replies."""


def _child(supervisor: Supervisor, name: str) -> SupervisedChild | None:
    try:
        return supervisor.child(name)
    except KeyError:
        return None


def _state(supervisor: Supervisor, child: SupervisedChild) -> str:
    """``starting``, ``running``, ``restarting`` or ``stopped``."""
    if child.running:
        return "running" if child.ready else "starting"
    # Still supervised while down: waiting for (or in) its restart.
    supervised = is_supervised(supervisor, child.name)
    return "restarting" if supervised else "stopped"


# --- the client ----------------------------------------------------------------


def _requests(
    path: Path, requests: Sequence[dict[str, Any]], timeout: float | None
) -> Iterator[dict[str, Any]]:
    """Send *requests* to the fleet at *path*; yield every reply message."""
    try:
        directory = _open_directory(path)
    except OSError as exc:
        raise ControlError(f"cannot open {path.parent}: {exc}") from exc
    try:
        if _check_owner(path, directory) is None:
            raise ControlError(f"no trioproc run is running here (no {path})")
        try:
            sock = _connect(path, directory, 5.0)
        except ConnectionRefusedError:
            raise ControlError(
                f"no trioproc run is listening on {path} (left by one that was killed)"
            ) from None
        except OSError as exc:
            raise ControlError(f"cannot connect to {path}: {exc}") from exc
    finally:
        os.close(directory)
    with sock, sock.makefile("rb") as replies:
        sock.settimeout(timeout)
        for request in requests:
            # Refused (too many clients): the reply waits to be read anyway.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall((json.dumps(request) + "\n").encode())
            while True:
                line = replies.readline(MAX_REPLY + 1)
                if not line.endswith(b"\n"):
                    raise ControlError("the fleet closed the connection")
                reply = json.loads(line)
                yield reply
                if "ok" in reply:
                    break


def _fleet_file(given: str | None) -> Path:
    if given is not None:
        return Path(given)
    found = find_fleet_file(Path.cwd())
    if found is None:
        raise ControlError(f"no {' or '.join(DEFAULT_FILES)} in {Path.cwd()}")
    return found


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02}:{whole % 60:02}"


def _exit(code: int | None) -> str:
    if code is None:
        return "-"
    if code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
        return f"signal {-code}"
    return f"exit {code}"


def _print_status(reply: dict[str, Any]) -> None:
    rows = [
        ("NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "READY", "STATUS")
    ]
    for p in reply["processes"]:
        rows.append(
            (
                p["name"],
                p["state"],
                "-" if p["pid"] is None else str(p["pid"]),
                _uptime(p["uptime"]),
                str(p["restarts"]),
                _exit(p["last_exit"]),
                "yes" if p["ready"] else "no",
                p["status"] or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [
            cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)
        ]
        print("  ".join([*cells, row[-1]]).rstrip())


def _run_client(args: argparse.Namespace) -> int:
    """``trioproc ctl ...`` and ``trioproc status``; returns the exit status.

    A closed output pipe (``trioproc ctl logs -f | head``) ends it quietly
    with 141 (128 + SIGPIPE), as it ends ``cat``.
    """
    try:
        return _client(args)
    except BrokenPipeError:
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        os.dup2(null, sys.stdout.fileno())  # the interpreter flushes at exit
        os.close(null)
        return 128 + signal.SIGPIPE


def _client(args: argparse.Namespace) -> int:
    command = args.ctl_command
    try:
        path = socket_path(_fleet_file(args.file))
        if command == "status":
            (reply,) = list(_requests(path, [{"command": "status"}], 10.0))
            if not reply.get("ok"):
                raise ControlError(reply.get("error", "failed"))
            if args.json:
                print(json.dumps(reply["processes"], indent=2))
            else:
                _print_status(reply)
            return 0
        if command == "logs":
            request = {
                "command": "logs",
                "name": args.name,
                "lines": args.lines,
                "follow": args.follow,
            }
            try:
                for reply in _requests(path, [request], None if args.follow else 10.0):
                    if "log" in reply:
                        entry = reply["log"]
                        mark = "|" if entry["fd"] == 1 else "!"
                        print(
                            f"{entry['name']} {mark} {entry['line']}", flush=args.follow
                        )
                    elif "lost" in reply:
                        lost = reply["lost"]
                        print(
                            f"trioproc: {lost['lines']} lines of "
                            f"{lost['name']} were lost",
                            file=sys.stderr,
                        )
                    elif not reply["ok"]:
                        raise ControlError(reply.get("error", "failed"))
            except KeyboardInterrupt:
                return 130
            return 0
        failed = False
        requests = [{"command": command, "name": name} for name in args.names]
        for reply in _requests(path, requests, None):
            if reply.get("ok"):
                print(reply.get("message", "ok"))
            else:
                print(f"trioproc: {reply.get('error', 'failed')}", file=sys.stderr)
                failed = True
        return 1 if failed else 0
    except BrokenPipeError:
        raise
    except (ControlError, OSError, ValueError) as exc:
        print(f"trioproc: {exc}", file=sys.stderr)
        return 1


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``ctl`` and ``status`` with the ``trioproc`` command's parser."""
    ctl = commands.add_parser(
        "ctl",
        help="ask the running fleet: status, restart, stop, start, logs",
        description="Talk to the `trioproc run` of this directory's fleet, "
        "through its control socket (.trioproc.sock beside the fleet file).",
    )
    ctl.set_defaults(control=_run_client)
    ctl.add_argument("-f", "--file", help="the fleet file (default: look in .)")
    sub = ctl.add_subparsers(dest="ctl_command", required=True, metavar="COMMAND")
    status = sub.add_parser("status", help="each process's state, pid, uptime, ...")
    status.add_argument("--json", action="store_true", help="print JSON")
    for name, what in (
        ("restart", "restart"),
        ("stop", "stop (for good)"),
        ("start", "start again (after stop)"),
    ):
        parser = sub.add_parser(name, help=f"{what} processes")
        parser.add_argument("names", nargs="+", metavar="NAME")
    logs = sub.add_parser("logs", help="recent output lines; -f to follow")
    logs.add_argument(
        "name", nargs="?", metavar="NAME", help="one process (default: all)"
    )
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new lines"
    )
    logs.add_argument(
        "-n", "--lines", type=int, default=50, help="how many recent lines (50)"
    )
    shortcut = commands.add_parser("status", help="short for `trioproc ctl status`")
    shortcut.set_defaults(control=_run_client, ctl_command="status")
    shortcut.add_argument("-f", "--file", help="the fleet file (default: look in .)")
    shortcut.add_argument("--json", action="store_true", help="print JSON")
