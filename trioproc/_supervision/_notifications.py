"""A supervised child's ``sd_notify`` socket (`ready_on_notify`,
``watchdog=``): the environment that names it to the child, the messages
received on it, and the watchdog that stops a child whose pings stop.

The protocol itself (parsing, credentials) is `trioproc._notify`; what a
message means to the child is `SupervisedChild._notified`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

import trio

from .._notify import Notification, NotifySocket
from .._options import StrOrBytesPath
from .._spawn import find_program

if TYPE_CHECKING:
    from .._transport import ProcessTransport
    from ._child import SupervisedChild
    from ._spec import ChildSpec

__all__ = ["notify_plan", "receive", "watchdog"]

logger: Final = logging.getLogger("trioproc.supervisor")

# Sets WATCHDOG_PID to the program's own pid, which is known only in the
# child: exec keeps the pid, and os.execv keeps argv[0] exactly. Python
# ignores SIGPIPE and SIGXFSZ, and that would survive exec: reset them.
_WATCHDOG_PID_WRAPPER: Final = (
    "import os, signal, sys\n"
    "for s in (signal.SIGPIPE, signal.SIGXFSZ):\n"
    "    signal.signal(s, signal.SIG_DFL)\n"
    "os.environ['WATCHDOG_PID'] = str(os.getpid())\n"
    "os.execv(sys.argv[1], sys.argv[2:])\n"
)


def notify_plan(
    spec: ChildSpec, notifications: NotifySocket | None
) -> tuple[Sequence[StrOrBytesPath], StrOrBytesPath | None, Mapping[str, str] | None]:
    """The argv, executable and env to spawn *spec*'s child with: as given,
    or with the notify socket and watchdog in its environment.

    With a watchdog the program is started through a small Python step that
    sets ``WATCHDOG_PID`` to the program's own pid; the program is looked up
    here first, so that a missing one still raises ``FileNotFoundError``.
    """
    assert spec.argv is not None
    if notifications is None:
        return spec.argv, spec.executable, spec.env
    env = dict(os.environ if spec.env is None else spec.env)
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(key, None)
    env["NOTIFY_SOCKET"] = notifications.path
    if spec.watchdog is None:
        return spec.argv, spec.executable, env
    env["WATCHDOG_USEC"] = str(round(spec.watchdog * 1e6))
    options = spec.spawn_options()
    program = find_program(options.program, options.search_path)
    wrapper: list[StrOrBytesPath] = [sys.executable, "-I", "-S", "-c"]
    return [*wrapper, _WATCHDOG_PID_WRAPPER, program, *options.argv], None, env


async def receive(
    child: SupervisedChild, transport: ProcessTransport, sock: NotifySocket
) -> None:
    """Read *child*'s notifications for the length of its life."""
    pid = transport.pid
    while True:
        message = await sock.receive()
        if pid is None or not _from(child, pid, message):
            if child._foreign_notification():
                logger.warning(
                    "%s: ignored a notification from pid %s, which is not "
                    "in its process group",
                    child.name,
                    message.pid,
                )
            continue
        child._notified(message.fields, trio.current_time())


def _from(child: SupervisedChild, pid: int, message: Notification) -> bool:
    """Whether *message* came from *child* (pid *pid*) or its process group."""
    if message.pid is None:
        return False
    if message.pid == pid:
        return True
    return child.spec.new_session and message.pgid == pid


async def watchdog(child: SupervisedChild, transport: ProcessTransport) -> None:
    """Stop *child* once it is ready and then misses its watchdog deadline."""
    await child._became_ready.wait()
    while True:
        seconds = child._watchdog_seconds
        assert seconds is not None
        with trio.move_on_at(child._last_ping + seconds):
            await child._pinged.wait()  # a new deadline: compute it again
            continue
        break
    child._expire_watchdog()
    logger.warning("%s: no WATCHDOG=1 within %gs: stopping it", child.name, seconds)
    await transport.stop()
