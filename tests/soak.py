"""A seeded soak of cancellations across a child's life.

Each round picks a scenario (before start, during output, during
``send_all``, during exit, through ``run()``, on a pty, with ``uid=``, with
background jobs) and cancels it after a random delay. After each round
nothing may be left: no error but the cancellation escaped, no fd open, no
child (running or zombie), no live process carrying the round's mark.

`tests/test_soak.py` runs a few hundred rounds; ``benchmarks/soak.py`` runs
2,000 by hand.
"""

from __future__ import annotations

import os
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import attrs
import trio

import trioproc

from .helpers import CAT, Recorder, children, kill_marked, marked, marked_alive, python

#: Writes as fast as it can until its stdout is gone.
_CHATTY = python("import os\nwhile True:\n    os.write(1, b'x' * 4096)\n")
#: Sleeps (a uid= child: the trampoline is a Python start-up, ~20 ms).
_SLEEPS = python("import time; time.sleep(30)")

Scenario = Callable[[random.Random, dict[str, str]], Awaitable[None]]


async def _before_start(rng: random.Random, env: dict[str, str]) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        async with trioproc.spawn(_SLEEPS, env=env):
            await trio.sleep_forever()


async def _during_output(rng: random.Random, env: dict[str, str]) -> None:
    protocol = None if rng.random() < 0.5 else Recorder()
    async with (
        trio.open_nursery() as nursery,
        trioproc.spawn(_CHATTY, protocol, env=env, kill_after=0.5) as child,
    ):
        if child.stdout is not None:
            stdout = child.stdout

            async def read() -> None:
                while await stdout.receive_some(1024):
                    pass

            nursery.start_soon(read)
        await trio.sleep_forever()


async def _during_send_all(rng: random.Random, env: dict[str, str]) -> None:
    async with (
        trio.open_nursery() as nursery,
        trioproc.spawn(CAT, env=env, kill_after=0.5) as child,
    ):
        stdin, stdout = child.stdin, child.stdout
        assert stdin is not None
        assert stdout is not None

        async def send() -> None:
            await trio.lowlevel.cancel_shielded_checkpoint()
            for _ in range(100):
                await stdin.send_all(b"y" * rng.choice((10, 70_000, 300_000)))

        nursery.start_soon(send)
        if rng.random() < 0.5:
            while await stdout.receive_some():
                pass
        await trio.sleep_forever()


async def _during_exit(rng: random.Random, env: dict[str, str]) -> None:
    code = rng.choice((0, 1, 3))
    async with trioproc.spawn(
        python(f"import os; os.write(1, b'bye'); os._exit({code})"), Recorder(), env=env
    ) as child:
        await child.wait()


async def _through_run(rng: random.Random, env: dict[str, str]) -> None:
    await trioproc.run(
        ["sh", "-c", "sleep 5 & echo x; sleep 5"], env=env, check=False, kill_after=0.5
    )


async def _on_a_pty(rng: random.Random, env: dict[str, str]) -> None:
    async with trioproc.spawn(
        ["sh", "-c", "echo hi; sleep 5"], pty=True, env=env, kill_after=0.5
    ) as child:
        assert child.stdout is not None
        while await child.stdout.receive_some():
            pass


async def _with_uid(rng: random.Random, env: dict[str, str]) -> None:
    async with trioproc.spawn(_SLEEPS, uid=os.getuid(), env=env, kill_after=0.5):
        await trio.sleep_forever()


async def _background_jobs(rng: random.Random, env: dict[str, str]) -> None:
    async with trioproc.spawn(
        ["sh", "-c", "sleep 30 & sleep 30 & echo up; wait"], Recorder(), env=env
    ):
        await trio.sleep_forever()


SCENARIOS: dict[str, tuple[Scenario, float]] = {
    # name: (scenario, the longest random delay before the cancellation)
    "before start": (_before_start, 0.0),
    "during output": (_during_output, 0.03),
    "during send_all": (_during_send_all, 0.03),
    "during exit": (_during_exit, 0.01),
    "through run()": (_through_run, 0.03),
    "pty": (_on_a_pty, 0.03),
    "uid=": (_with_uid, 0.06),
    "background jobs": (_background_jobs, 0.03),
}


@attrs.define
class SoakResult:
    """What a soak found; every count but `rounds` must be 0."""

    rounds: int = 0
    by_scenario: Counter[str] = attrs.field(factory=Counter)
    escaped: list[str] = attrs.field(factory=list)
    fds: int = 0
    zombies: int = 0
    descendants: int = 0


def _open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


async def soak(rounds: int, seed: int) -> SoakResult:
    """Run *rounds* seeded rounds; return what each check found."""
    rng = random.Random(seed)
    result = SoakResult()
    names = sorted(SCENARIOS)
    if os.getuid() != 0:  # pragma: no cover - the suite runs as root in CI
        names.remove("uid=")
    fds_before, children_before = _open_fds(), children()
    for _ in range(rounds):
        name = rng.choice(names)
        scenario, longest = SCENARIOS[name]
        mark = uuid.uuid4().hex
        result.rounds += 1
        result.by_scenario[name] += 1
        try:
            with trio.move_on_after(rng.uniform(0, longest)):
                await scenario(rng, marked(mark))
        except BaseException as exc:  # counted, not hidden
            result.escaped.append(f"{name}: {exc!r}")
        left = marked_alive(mark)
        result.descendants += len(left)
        kill_marked(mark)
        left_children = children() - children_before
        result.zombies += len(left_children)
        children_before |= left_children  # counted once
        leaked = _open_fds() - fds_before
        result.fds += len(leaked)
        for fd in leaked:  # keep counting the next rounds on their own
            os.close(fd)
    return result
