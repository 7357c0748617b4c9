"""trioproc: child processes under Trio's structured concurrency.

``async with trioproc.spawn(argv, protocol) as transport:`` runs a child for
the length of a block, with Twisted's process transport contract and Trio
streams; `run` runs one to completion. See the README for a tour.
"""

from __future__ import annotations

from ._errors import (
    ProcessDone as ProcessDone,
)
from ._errors import (
    ProcessEnded as ProcessEnded,
)
from ._errors import (
    ProcessExitedAlready as ProcessExitedAlready,
)
from ._errors import (
    ProcessTerminated as ProcessTerminated,
)
from ._interfaces import (
    IProcessProtocol as IProcessProtocol,
)
from ._interfaces import (
    IProcessTransport as IProcessTransport,
)
from ._protocol import ProcessProtocol as ProcessProtocol
from ._run import run as run
from ._spawn import Spawn as Spawn
from ._spawn import spawn as spawn
from ._streams import OutputStream as OutputStream
from ._streams import StdinStream as StdinStream
from ._transport import (
    ProcessAddress as ProcessAddress,
)
from ._transport import (
    ProcessTransport as ProcessTransport,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "IProcessProtocol",
    "IProcessTransport",
    "OutputStream",
    "ProcessAddress",
    "ProcessDone",
    "ProcessEnded",
    "ProcessExitedAlready",
    "ProcessProtocol",
    "ProcessTerminated",
    "ProcessTransport",
    "Spawn",
    "StdinStream",
    "run",
    "spawn",
]

# Public names report where users find them, not the private module they
# live in: tracebacks, reprs and docs then point at ``trioproc``.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("trioproc._"):
        _obj.__module__ = __name__
del _name, _obj
