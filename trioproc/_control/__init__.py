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

The rooms: ``_protocol`` (the wire format and its limits), ``_socket``
(taking the socket safely), ``_logs`` (the ring buffers), ``_server``
(`FleetControl`) and ``_client`` (``ctl`` and ``status``).
"""

from ._client import add_commands
from ._protocol import ControlError, socket_path
from ._server import FleetControl

__all__ = ["ControlError", "FleetControl", "add_commands", "socket_path"]
