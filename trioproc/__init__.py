"""trioproc: child processes under Trio's structured concurrency.

``async with trioproc.spawn(argv, protocol) as transport:`` runs a child for
the length of a block, with Twisted's process transport contract and Trio
streams; `run` runs one to completion. See the README for a tour.
"""

from __future__ import annotations

import logging as _logging

from ._contract import ProcessAddress as ProcessAddress
from ._errors import (
    ChildNotReady as ChildNotReady,
    ChildUnkillable as ChildUnkillable,
    ProcessDone as ProcessDone,
    ProcessEnded as ProcessEnded,
    ProcessExitedAlready as ProcessExitedAlready,
    ProcessTerminated as ProcessTerminated,
    RestartIntensityExceeded as RestartIntensityExceeded,
)
from ._interfaces import (
    IProcessProtocol as IProcessProtocol,
    IProcessTransport as IProcessTransport,
    IProducer as IProducer,
    IPushProducer as IPushProducer,
)
from ._os._cgroupfs import CgroupUnavailableError as CgroupUnavailableError
from ._pipeline import Pipeline as Pipeline, pipeline as pipeline
from ._protocol import ProcessProtocol as ProcessProtocol
from ._run import run as run
from ._spawn import Spawn as Spawn, spawn as spawn
from ._ssh import (
    AuthenticationError as AuthenticationError,
    HostKeyError as HostKeyError,
    HostUnreachableError as HostUnreachableError,
    RemoteError as RemoteError,
)
from ._statistics import (
    FDStatistics as FDStatistics,
    TransportStatistics as TransportStatistics,
)
from ._streams import (
    LineTooLong as LineTooLong,
    OutputStream as OutputStream,
    StdinStream as StdinStream,
    UnexpectedEOF as UnexpectedEOF,
)
from ._supervision._child import SupervisedChild as SupervisedChild
from ._supervision._policy import Backoff as Backoff
from ._supervision._readiness import (
    ready_on_notify as ready_on_notify,
    ready_on_output as ready_on_output,
    ready_on_port as ready_on_port,
)
from ._supervision._spec import (
    ChildSpec as ChildSpec,
    SupervisorEvent as SupervisorEvent,
    print_lines as print_lines,
)
from ._supervision._supervisor import Supervisor as Supervisor
from ._transport import ProcessTransport as ProcessTransport

__version__ = "0.1.0.dev0"

__all__ = [
    "AuthenticationError",
    "Backoff",
    "CgroupUnavailableError",
    "ChildNotReady",
    "ChildSpec",
    "ChildUnkillable",
    "FDStatistics",
    "HostKeyError",
    "HostUnreachableError",
    "IProcessProtocol",
    "IProcessTransport",
    "IProducer",
    "IPushProducer",
    "LineTooLong",
    "OutputStream",
    "Pipeline",
    "ProcessAddress",
    "ProcessDone",
    "ProcessEnded",
    "ProcessExitedAlready",
    "ProcessProtocol",
    "ProcessTerminated",
    "ProcessTransport",
    "RemoteError",
    "RestartIntensityExceeded",
    "Spawn",
    "StdinStream",
    "SupervisedChild",
    "Supervisor",
    "SupervisorEvent",
    "TransportStatistics",
    "UnexpectedEOF",
    "pipeline",
    "print_lines",
    "ready_on_notify",
    "ready_on_output",
    "ready_on_port",
    "run",
    "spawn",
]

# A library logs, and leaves showing the log to the application (the logging
# HOWTO's advice): without this, warnings would reach stderr unasked.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())

# Public names report where users find them, not the private module they
# live in: tracebacks, reprs and docs then point at ``trioproc``.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("trioproc._"):
        _obj.__module__ = __name__
del _name, _obj
