"""Testing code that uses trioproc, without starting processes.

* `FakeProcessTransport` -- the process transport contract in memory, for
  unit tests of protocols: the test plays the child (`deliver`, `lose`,
  `exit`, `stall`, `drain`) and checks what the protocol did (`value`,
  `signals`, `closedChildFDs`, `producer` ...).
* The ``fake_spawn`` pytest fixture (installed with trioproc) -- scripted
  children for code that calls ``trioproc.spawn`` or ``trioproc.run``: a
  `FakeSpawner` where a test registers commands and afterwards reads `calls`
  and `runs`. It runs on Trio's clock, so it works with ``autojump_clock``.
"""

from __future__ import annotations

from ._fake import FakeProcessTransport as FakeProcessTransport
from ._spawner import (
    Command as Command,
    FakeRun as FakeRun,
    FakeSpawner as FakeSpawner,
    UnregisteredCommand as UnregisteredCommand,
)

__all__ = [
    "Command",
    "FakeProcessTransport",
    "FakeRun",
    "FakeSpawner",
    "UnregisteredCommand",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("trioproc.testing._"):
        _obj.__module__ = __name__
del _name, _obj
