"""Testing code that uses trioproc, without starting processes.

* `FakeProcessTransport` -- the process transport contract in memory, for
  unit tests of protocols: the test plays the child (`deliver`, `lose`,
  `exit`, `stall`, `drain`) and checks what the protocol did (`value`,
  `signals`, `closedChildFDs`, `producer` ...).
* The ``fake_spawn`` pytest fixture (installed with trioproc) -- scripted
  children for code that calls ``trioproc.spawn`` or ``trioproc.run``: a
  `FakeSpawner` where a test registers commands and afterwards reads `calls`
  and `runs`. It runs on Trio's clock, so it works with ``autojump_clock``.
* `check_transport_contract` -- the contract's checks (`CONTRACT_CHECKS`),
  run against any transport through a `ContractHarness` that plays its
  child; the project runs them against the real transport
  (`RealProcessHarness`) and the fake (`FakeTransportHarness`), and a fake
  of your own can run them too.
* `RecordingProtocol` -- a protocol that records every callback in order.
"""

from __future__ import annotations

from ._checks import (
    CONTRACT_CHECKS as CONTRACT_CHECKS,
    ContractCheck as ContractCheck,
    check_transport_contract as check_transport_contract,
)
from ._fake import FakeProcessTransport as FakeProcessTransport
from ._harness import (
    ContractHarness as ContractHarness,
    FakeTransportHarness as FakeTransportHarness,
    RealProcessHarness as RealProcessHarness,
)
from ._recorder import RecordingProtocol as RecordingProtocol
from ._spawner import (
    Command as Command,
    FakeRun as FakeRun,
    FakeSpawner as FakeSpawner,
    UnregisteredCommand as UnregisteredCommand,
)

__all__ = [
    "CONTRACT_CHECKS",
    "Command",
    "ContractCheck",
    "ContractHarness",
    "FakeProcessTransport",
    "FakeRun",
    "FakeSpawner",
    "FakeTransportHarness",
    "RealProcessHarness",
    "RecordingProtocol",
    "UnregisteredCommand",
    "check_transport_contract",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("trioproc.testing._") and not (
        isinstance(_obj, tuple)
    ):
        _obj.__module__ = __name__
del _name, _obj
