"""Supervisor: a start() (or restart()) still waiting for its child's ready
check when a sibling's crash restarts their group -- with real children."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import trioproc

from .helpers import alive, python
from .test_supervisor import Events, spec, supervisor

#: Ready ("up") only after 0.7 s: long enough for a sibling to crash meanwhile.
SLOW = python(
    "import os, time\ntime.sleep(0.7)\nprint('up', os.getpid(), flush=True)\n"
    "time.sleep(120)"
)
#: Dies (exit 3) after 0.3 s, before it is ever ready.
DIES = python("import time\ntime.sleep(0.3)\nraise SystemExit(3)")
GROUPS = pytest.mark.parametrize("strategy", ["one_for_all", "rest_for_one"])


def crasher(lives: Path, crashes: int, *, before_ready: bool = False) -> list[str]:
    """A sibling whose first *crashes* lives exit 1 after 0.1 s; later lives
    stay up. Each life prints "up" at once -- except, with *before_ready*,
    the crashing lives after the first, which fail before they are ready (so
    that one group restart fails and is decided again)."""
    return python(
        "import os, time\n"
        f"path = {str(lives)!r}\n"
        "n = int(open(path).read()) if os.path.exists(path) else 0\n"
        "open(path, 'w').write(str(n + 1))\n"
        f"if n == 0 or n >= {crashes} or not {before_ready}:\n"
        "    print('up', flush=True)\n"
        "time.sleep(0.1)\n"
        f"if n < {crashes}:\n"
        "    raise SystemExit(1)\n"
        "time.sleep(120)\n"
    )


async def event_after(
    events: Events, index: int, kind: str, name: str
) -> trioproc.SupervisorEvent:
    """The first *kind* event of *name* at or after ``events.seen[index]``."""
    while True:
        for event in events.seen[index:]:
            if event.kind == kind and event.name == name:
                return event
        await events.wait_for(kind, name, count=events.kinds(name).count(kind) + 1)


def nth(events: Events, kind: str, name: str, count: int) -> int:
    """Index in ``events.seen`` of the *count*-th *kind* event of *name*."""
    found = [i for i, e in enumerate(events.seen) if e.kind == kind and e.name == name]
    return found[count - 1]


@GROUPS
@pytest.mark.parametrize("before_ready", [False, True])
async def test_start_waits_for_the_life_its_group_restart_brings_up(
    strategy: str, before_ready: bool, tmp_path: Path
) -> None:
    """A sibling crashes three times while start() waits for a child's ready
    check: the group restart stops that child and starts it again with the
    group, and start() returns once it is ready -- running, ready, supervised
    (killed later, it is restarted), as start() promises."""
    sup, events = supervisor(strategy, max_restarts=50, max_seconds=30)
    async with sup:
        lives = tmp_path / "lives"
        await sup.start(spec("crasher", crasher(lives, 3, before_ready=before_ready)))
        child = await sup.start(spec("slow", SLOW))
        assert child.running
        assert child.ready
        assert child.pid is not None
        assert alive(child.pid)
        assert child in sup.children
        assert "stopped" in events.kinds("slow")  # a group restart did hit it
        await events.wait_for("started", "crasher", count=4)  # its calm life
        await event_after(events, nth(events, "started", "crasher", 4), "ready", "slow")
        pid = child.pid
        assert pid is not None
        restarts = child.restarts
        index = len(events.seen)
        os.kill(pid, signal.SIGKILL)
        exited = await event_after(events, index, "exited", "slow")
        assert exited.returncode == -signal.SIGKILL
        await event_after(events, index, "ready", "slow")
        assert child.running
        assert child.pid != pid
        assert child.restarts == restarts + 1
