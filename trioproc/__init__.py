"""trioproc: child processes under Trio's structured concurrency.

``async with trioproc.spawn(argv, protocol) as transport:`` runs a child for
the length of a block, with Twisted's process transport contract and Trio
streams; `run` runs one to completion. See the README for a tour.
"""

from __future__ import annotations

from ._contract import ProcessAddress as ProcessAddress
from ._errors import (
    ProcessDone as ProcessDone,
    ProcessEnded as ProcessEnded,
    ProcessExitedAlready as ProcessExitedAlready,
    ProcessTerminated as ProcessTerminated,
)
from ._interfaces import (
    IProcessProtocol as IProcessProtocol,
    IProcessTransport as IProcessTransport,
    IProducer as IProducer,
    IPushProducer as IPushProducer,
)
from ._protocol import ProcessProtocol as ProcessProtocol
from ._run import run as run
from ._spawn import Spawn as Spawn, spawn as spawn
from ._statistics import (
    FDStatistics as FDStatistics,
    TransportStatistics as TransportStatistics,
)
from ._streams import OutputStream as OutputStream, StdinStream as StdinStream
from ._transport import ProcessTransport as ProcessTransport

__version__ = "0.1.0.dev0"

__all__ = [
    "FDStatistics",
    "IProcessProtocol",
    "IProcessTransport",
    "IProducer",
    "IPushProducer",
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
    "TransportStatistics",
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
