"""systemd's ``sd_notify`` protocol, both ways.

The protocol (``sd_notify(3)``): a service manager owns an ``AF_UNIX``
datagram socket and names it in the child's ``NOTIFY_SOCKET`` -- a path, or,
starting with ``@``, a name in Linux's abstract namespace. The child sends it
datagrams of newline-separated ``KEY=VALUE`` assignments: ``READY=1`` (up),
``STATUS=text``, ``WATCHDOG=1`` (still alive; due every ``WATCHDOG_USEC``
microseconds, meant for the process ``WATCHDOG_PID`` names), ``STOPPING=1``,
and more. The manager learns who sent one from the kernel
(``SO_PASSCRED`` / ``SCM_CREDENTIALS``), never from the message.

* The receiving side -- what a `Supervisor` does for a child with
  `ready_on_notify` or a ``watchdog`` -- is `NotifySocket`: one socket per
  life of a child, alone in a private (0700) temporary directory that is
  removed with it.
* The sending side -- what ``trioproc run`` does when systemd runs it as a
  ``Type=notify`` service -- is `notify` and `ServiceNotifier`.
"""

from __future__ import annotations

import array
import contextlib
import logging
import os
import shutil
import socket
import struct
import tempfile
from collections.abc import Callable, Mapping, MutableMapping
from typing import Final, final

import attrs
import trio

__all__ = ["Notification", "NotifySocket", "ServiceNotifier", "notify", "parse"]

logger: Final = logging.getLogger("trioproc.supervisor")

#: The largest message systemd itself accepts (its NOTIFY_BUFFER_MAX).
MAX_MESSAGE: Final = 4096
#: File descriptors one message may carry (systemd-notify's BARRIER=1 sends
#: one); any more are closed by the kernel, which is as good.
_MAX_FDS: Final = 16
_UCRED: Final = struct.Struct("iII")  # struct ucred: pid, uid, gid
_ENVIRONMENT: Final = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
# Python ignores SIGPIPE anyway; the flag is Linux's (macOS has none).
_NO_SIGNAL: Final = getattr(socket, "MSG_NOSIGNAL", 0)


def parse(data: bytes) -> dict[str, str]:
    """The ``KEY=VALUE`` assignments of one notification message.

    Lines without ``=`` and lines that are not UTF-8 are skipped, as systemd
    skips what it cannot read; a later assignment of a key wins.
    """
    fields: dict[str, str] = {}
    for line in data.split(b"\n"):
        key, equals, value = line.partition(b"=")
        if not equals or not key:
            continue
        try:
            fields[key.decode()] = value.decode()
        except UnicodeDecodeError:
            continue
    return fields


def _address(name: str) -> str | bytes:
    """The socket address *name* (``NOTIFY_SOCKET``'s value) means: an
    abstract name (a leading NUL) for ``@...``, else a path."""
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    return name


def notify(name: str, message: str) -> bool:
    """Send *message* (``"READY=1"``, ...) to the notify socket *name*.

    Returns whether it was sent. Never raises for a socket that is gone or
    full: as ``sd_notify`` does, a failed notification leaves the service
    running, only unseen (the failure is logged).
    """
    if not name.startswith(("/", "@")) or len(name) < 2:
        logger.warning("NOTIFY_SOCKET=%r is neither a path nor @name", name)
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        try:
            s.sendto(message.encode(), _NO_SIGNAL, _address(name))
        except OSError as exc:
            logger.warning("cannot notify %s: %s", name, exc)
            return False
    return True


@final
@attrs.frozen
class Notification:
    """One message received on a `NotifySocket`.

    Attributes:
      fields: its assignments (`parse`).
      pid: the sender's pid as the kernel reports it (``SCM_CREDENTIALS``),
        ``None`` if it came without credentials.
      pgid: that pid's process group when the message was read, ``None`` if
        that process was gone by then.
    """

    fields: Mapping[str, str]
    pid: int | None
    pgid: int | None


@final
class NotifySocket:
    """A datagram socket for one child's notifications, in a directory of
    its own (mode 0700, so only this user reaches it); `close` removes both.

    Attributes:
      path: the socket's path: the child's ``NOTIFY_SOCKET``.
    """

    def __init__(self) -> None:
        self._directory = tempfile.mkdtemp(prefix="trioproc-notify-")
        self.path = os.path.join(self._directory, "notify")
        try:
            plain = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        except BaseException:
            os.rmdir(self._directory)
            raise
        self._socket = trio.socket.from_stdlib_socket(plain)
        try:
            plain.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            plain.bind(self.path)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the socket and remove it and its directory (idempotent)."""
        self._socket.close()
        shutil.rmtree(self._directory, ignore_errors=True)

    async def receive(self) -> Notification:
        """Wait for the next message and return it.

        A message longer than `MAX_MESSAGE` is dropped (systemd drops it
        too). File descriptors sent with a message (``BARRIER=1``) are closed
        once the sender's process group is known: a sender waiting for that
        close (``systemd-notify`` does) is still alive when it is looked up.

        Cancellation: safe; a message is either returned or left queued.
        """
        space = socket.CMSG_SPACE(_UCRED.size) + socket.CMSG_SPACE(
            _MAX_FDS * array.array("i").itemsize
        )
        while True:
            data, ancillary, flags, _ = await self._socket.recvmsg(
                MAX_MESSAGE + 1, space, socket.MSG_CMSG_CLOEXEC
            )
            pid: int | None = None
            fds: list[int] = []
            for level, kind, payload in ancillary:
                if level != socket.SOL_SOCKET:  # pragma: no cover - AF_UNIX only
                    continue
                if kind == socket.SCM_CREDENTIALS and len(payload) >= _UCRED.size:
                    pid = _UCRED.unpack_from(payload)[0]
                elif kind == socket.SCM_RIGHTS:
                    received = array.array("i")
                    whole = len(payload) - len(payload) % received.itemsize
                    received.frombytes(payload[:whole])
                    fds.extend(received)
            try:
                pgid = None
                if pid is not None:
                    with contextlib.suppress(OSError):
                        pgid = os.getpgid(pid)
            finally:
                for fd in fds:
                    os.close(fd)
            if flags & socket.MSG_TRUNC or len(data) > MAX_MESSAGE:
                logger.warning(
                    "a notification longer than %d bytes was dropped", MAX_MESSAGE
                )
                continue
            return Notification(parse(data), pid, pgid)


@final
class ServiceNotifier:
    """What ``trioproc run`` tells the service manager that started it
    (systemd, with ``Type=notify``), if one did.

    `from_environment` takes ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and
    ``WATCHDOG_PID`` out of the environment (as ``sd_notify`` with
    *unset_environment* does), so that the fleet's processes do not inherit
    them and notify systemd as if they were the service.

    Attributes:
      socket: the manager's ``NOTIFY_SOCKET``, or ``None``: notify nothing.
      watchdog: seconds between the manager's watchdog deadlines, or ``None``
        (unset, invalid, or meant for another pid).
    """

    def __init__(self, socket_name: str | None, watchdog: float | None) -> None:
        self.socket = socket_name
        self.watchdog = watchdog if socket_name is not None else None
        self._stopping = False

    @classmethod
    def from_environment(
        cls, environment: MutableMapping[str, str] = os.environ
    ) -> ServiceNotifier:
        """The notifier *environment* (default: this process's) describes;
        the three variables are removed from it."""
        name, usec, pid = (environment.pop(key, None) for key in _ENVIRONMENT)
        watchdog = None
        ours = pid is None or (pid.isdigit() and int(pid) == os.getpid())
        if usec is not None and usec.isdigit() and int(usec) > 0 and ours:
            watchdog = int(usec) / 1e6
        return cls(name or None, watchdog)

    def send(self, message: str) -> None:
        """Send *message* to the manager, if there is one."""
        if self.socket is not None:
            notify(self.socket, message)

    def ready(self) -> None:
        """Every process is up and ready: ``READY=1``."""
        self.send("READY=1\nSTATUS=every process is ready")

    def stopping(self) -> None:
        """The fleet is being stopped: ``STOPPING=1`` (once)."""
        if not self._stopping:
            self._stopping = True
            self.send("STOPPING=1\nSTATUS=stopping every process")

    async def keep_alive(self, healthy: Callable[[], bool]) -> None:
        """Send ``WATCHDOG=1`` every half watchdog period while *healthy*()
        says the fleet is; forever (returns at once without a watchdog).

        A fleet that stays unhealthy (a process down, restarting or not
        ready) for the whole period is then restarted by the manager, as
        ``WatchdogSec=`` says; so is one whose event loop is stuck.
        """
        if self.watchdog is None:
            await trio.lowlevel.checkpoint()
            return
        while True:
            if healthy() and not self._stopping:
                self.send("WATCHDOG=1")
            await trio.sleep(self.watchdog / 2)
