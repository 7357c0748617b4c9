"""The server side of the control channel: `FleetControl` answers
``trioproc ctl`` on the socket of one ``trioproc run``, and tells systemd
how the fleet is.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, final

import trio

from .._errors import ChildNotReady
from .._notify import ServiceNotifier
from .._supervision._supervisor import is_supervised
from ._logs import Logs
from ._protocol import (
    MAX_CLIENTS,
    MAX_REPLY,
    MAX_REQUEST,
    REQUEST_TIMEOUT,
    SEND_TIMEOUT,
    encode,
    socket_path,
)
from ._socket import bind, peer

if TYPE_CHECKING:
    from .._fleet import Fleet
    from .._supervision._child import SupervisedChild
    from .._supervision._spec import OutputSink
    from .._supervision._supervisor import Supervisor


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
        self._logs = Logs()
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
        if sys.platform == "win32":  # pragma: no cover - Windows only
            # Python has no Unix sockets on Windows: no control channel there.
            yield
            return
        sock, directory, identity = await bind(self.path)
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
                    _, uid = peer(stream.socket)
                    if uid not in (None, os.geteuid(), 0):  # pragma: no cover - 0600
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
        data = encode(reply)
        if len(data) > MAX_REPLY:
            data = encode({"ok": False, "error": "reply too large"})
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
    return "restarting" if _supervised(supervisor, child.name) else "stopped"


def _supervised(supervisor: Supervisor, name: str) -> bool:
    """Whether the child *name*, down now, is still supervised: waiting for
    (or in) its restart, not stopped for good.

    The one place that asks the supervisor about its policy's state.
    """
    return is_supervised(supervisor, name)
