"""The control channel's wire format and limits: newline-delimited JSON
objects, at most `MAX_REQUEST` bytes a request and `MAX_REPLY` a reply.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

SOCKET_NAME: Final = ".trioproc.sock"
MAX_REQUEST: Final = 64 * 1024
MAX_REPLY: Final = 1024 * 1024
MAX_CLIENTS: Final = 64
REQUEST_TIMEOUT: Final = 30.0
SEND_TIMEOUT: Final = 10.0
#: How long ``trioproc ctl`` waits to connect, and for a reply (not ``logs -f``).
CONNECT_TIMEOUT: Final = 5.0
REPLY_TIMEOUT: Final = 10.0


class ControlError(Exception):
    """The control socket cannot be used: in use by another fleet, owned by
    another user, not a socket, or (for ``ctl``) nobody is listening."""


def socket_path(fleet_file: Path) -> Path:
    """The control socket of the fleet in *fleet_file*."""
    return fleet_file.resolve().parent / SOCKET_NAME


def encode(message: dict[str, Any]) -> bytes:
    """*message* as one line of the wire format."""
    return (json.dumps(message, ensure_ascii=True) + "\n").encode()
