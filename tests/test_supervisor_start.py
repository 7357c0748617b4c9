"""Supervisor: a start() (or restart()) still waiting for its child's ready
check when a sibling's crash restarts their group -- with real children."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest
import trio
import trio.lowlevel

import trioproc

from .helpers import alive, python, wait_gone
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


@GROUPS
async def test_a_child_that_dies_before_ready_still_fails_its_start(
    strategy: str, tmp_path: Path
) -> None:
    """The group restart starts the child again, and that life exits (3)
    before it is ready: start() raises ChildNotReady with that exit -- not the
    SIGTERM of the group restart -- and the child is no longer supervised,
    while its crashing sibling goes on being restarted."""
    sup, events = supervisor(strategy, max_restarts=50, max_seconds=30)
    async with sup:
        await sup.start(spec("crasher", crasher(tmp_path / "lives", 3)))
        with pytest.raises(trioproc.ChildNotReady, match=r"exited \(3\)") as info:
            await sup.start(spec("dies", DIES))
        assert info.value.returncode == 3
        assert "stopped" in events.kinds("dies")  # a group restart did hit it
        with pytest.raises(KeyError):
            sup.child("dies")
        await events.wait_for("ready", "crasher", count=4)  # its calm life
        assert events.kinds("dies").count("started") == 2
    pids = [e.pid for e in events.seen if e.name == "dies" and e.kind == "started"]
    assert all(wait_gone(pid) for pid in pids if pid is not None)


@GROUPS
async def test_a_temporary_child_stopped_by_its_group_fails_its_start(
    strategy: str, tmp_path: Path
) -> None:
    """A temporary child is not started again by a group restart (as in
    Erlang/OTP): its start() raises ChildNotReady saying so, and the name is
    free again."""
    sup, events = supervisor(strategy, max_restarts=50, max_seconds=30)
    async with sup:
        await sup.start(spec("crasher", crasher(tmp_path / "lives", 1)))
        with pytest.raises(trioproc.ChildNotReady, match="does not start it again"):
            await sup.start(spec("slow", SLOW, restart="temporary"))
        with pytest.raises(KeyError):
            sup.child("slow")
        await events.wait_for("ready", "crasher", count=2)
        again = await sup.start(spec("slow", SLOW, restart="temporary"))
        assert again.ready
    assert events.kinds("slow").count("started") == 2


@GROUPS
async def test_a_start_cancelled_while_its_group_restarts_leaves_no_child(
    strategy: str, tmp_path: Path
) -> None:
    """start() cancelled while the group restart that stopped its child is
    still busy: the child is not started again behind the caller's back, and
    nothing of it is left running."""
    sup, events = supervisor(strategy, max_restarts=50, max_seconds=30)
    async with sup:
        lives = tmp_path / "lives"
        await sup.start(spec("crasher", crasher(lives, 3, before_ready=True)))
        with trio.CancelScope() as cancelled:

            async def cancel_while_the_group_restarts() -> None:
                await events.wait_for("started", "crasher", count=2)
                assert events.kinds("slow") == ["started", "stopped"]
                cancelled.cancel()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancel_while_the_group_restarts)
                await sup.start(spec("slow", SLOW))
        assert cancelled.cancelled_caught
        with pytest.raises(KeyError):
            sup.child("slow")
        # The group restart brings the crasher's calm life up, then (at once)
        # would have started "slow".
        await events.wait_for("ready", "crasher", count=2)
        assert events.kinds("slow") == ["started", "stopped"]


async def test_restart_waits_for_the_life_its_group_restart_brings_up(
    tmp_path: Path,
) -> None:
    """restart() keeps the same promise as start(): a sibling's crash that
    restarts the group meanwhile does not make it fail."""
    sup, events = supervisor("one_for_all", max_restarts=50, max_seconds=30)
    async with sup:
        child = await sup.start(spec("slow", SLOW))
        await sup.start(spec("crasher", crasher(tmp_path / "lives", 1)))
        index = len(events.seen)
        await sup.restart("slow")
        assert child.running
        assert child.ready
        assert child in sup.children
        stopped = [e.kind for e in events.seen[index:] if e.name == "slow"]
        assert stopped.count("stopped") == 2  # by restart(), then by the group


@GROUPS
async def test_a_sibling_crashing_for_good_ends_a_waiting_start_by_giving_up(
    strategy: str, tmp_path: Path
) -> None:
    """A sibling that never stops crashing outlasts a waiting start() only
    until the restart intensity gives up: RestartIntensityExceeded leaves
    the block (not the start's ChildNotReady), and no life of the child is
    left running."""
    sup, events = supervisor(strategy, max_restarts=3, max_seconds=30)
    lives = tmp_path / "lives"
    with pytest.raises(trioproc.RestartIntensityExceeded):
        async with sup:
            await sup.start(spec("crasher", crasher(lives, 99, before_ready=True)))
            await sup.start(spec("slow", SLOW))
    assert events.kinds("slow") == ["started", "stopped"]
    assert "gave_up" in events.kinds()
    pid = events.seen[nth(events, "started", "slow", 1)].pid
    assert pid is not None
    assert wait_gone(pid)


async def _stop_while_starting(child_spec: trioproc.ChildSpec) -> list[str]:
    """Start *child_spec* in one task and stop it from another as soon as it
    is registered; return how start() ended, and check nothing is left."""
    events = Events()
    outcome: list[str] = []
    async with trioproc.Supervisor(on_output=None, on_event=events) as sup:

        async def starter() -> None:
            try:
                await sup.start(child_spec)
                outcome.append("returned")
            except trioproc.ChildNotReady:
                outcome.append("not ready")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(starter)
            while not sup.children:  # until start() has registered it
                await trio.lowlevel.checkpoint()
            await sup.stop("a")
    pids = [e.pid for e in events.seen if e.kind == "started" and e.pid]
    assert not any(alive(pid) for pid in pids)
    return outcome


async def test_a_stop_while_start_starts_the_child_leaves_start_a_documented_end() -> (
    None
):
    """stop() called while start() of the same child is still starting it:
    start() returns (the child came up first) or raises ChildNotReady, and
    nothing else leaves the block; the child is gone afterwards."""
    with trio.fail_after(60):
        for _ in range(5):
            for child_spec in (
                trioproc.ChildSpec("a", argv=["sleep", "30"]),
                trioproc.ChildSpec("a", task=trio.sleep_forever),
            ):
                outcome = await _stop_while_starting(child_spec)
                assert outcome in (["returned"], ["not ready"])


async def _stop_during_restart(spin: int) -> None:
    """Stop a crashing child *spin* checkpoints after its restart began."""
    restarting = trio.Event()

    def on_event(event: trioproc.SupervisorEvent) -> None:
        if event.kind == "restarting":
            restarting.set()

    async with trioproc.Supervisor(
        max_restarts=100, on_output=None, on_event=on_event
    ) as sup:
        await sup.start(
            trioproc.ChildSpec(
                "a",
                argv=["sh", "-c", "exit 1"],
                backoff=trioproc.Backoff(initial=0, jitter=0),
            )
        )
        await restarting.wait()
        for _ in range(spin):
            await trio.lowlevel.checkpoint()
        await sup.stop("a")
        await trio.sleep(0.05)
        assert not sup.child("a").running


async def test_a_stop_during_the_supervisors_own_restart_ends_it_quietly() -> None:
    """stop() while the supervisor restarts that child after a crash: the
    restart is dropped, and no error leaves the block."""
    with trio.fail_after(60):
        for spin in range(0, 40, 2):
            await _stop_during_restart(spin)


async def test_a_start_cancelled_as_the_child_starts_reports_its_end() -> None:
    """A start() cancelled at any moment: every "started" event is followed
    by a "stopped" or "exited" one for that pid, so a log of the events
    (trioproc run's) never leaves a process running that is gone."""
    with trio.fail_after(60):
        for step in range(40):
            events = Events()
            async with trioproc.Supervisor(on_output=None, on_event=events) as sup:
                with (
                    trio.move_on_after(step * 0.0001),
                    contextlib.suppress(trioproc.ChildNotReady),
                ):
                    await sup.start(trioproc.ChildSpec("a", argv=["sleep", "30"]))
            started = [e.pid for e in events.seen if e.kind == "started"]
            ended = [e.pid for e in events.seen if e.kind in ("stopped", "exited")]
            assert started == ended
