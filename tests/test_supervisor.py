"""Supervisor: strategies, restart types, intensity, readiness, backoff,
shutdown -- with real children (and, for time, the fake spawn)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from typing import Any

import pytest
import trio
import trio.testing

import trioproc
from trioproc.testing import FakeSpawner

from .helpers import IGNORES_TERM, alive, python, wait_gone

#: Prints "up <pid>" and sleeps until stopped.
SERVICE = python(
    "import os, time\nprint('up', os.getpid(), flush=True)\ntime.sleep(120)"
)
QUICK = trioproc.Backoff(initial=0.05, jitter=0)


def spec(name: str, argv: list[str] = SERVICE, **kwargs: Any) -> trioproc.ChildSpec:
    kwargs.setdefault("ready", trioproc.ready_on_output(b"up"))
    kwargs.setdefault("backoff", QUICK)
    return trioproc.ChildSpec(name, argv=argv, **kwargs)


class Events:
    """An on_event sink that lets a test wait for an event."""

    def __init__(self) -> None:
        self.seen: list[trioproc.SupervisorEvent] = []
        self._news = trio.Event()

    def __call__(self, event: trioproc.SupervisorEvent) -> None:
        self.seen.append(event)
        self._news.set()
        self._news = trio.Event()

    def kinds(self, name: str | None = None) -> list[str]:
        return [e.kind for e in self.seen if name is None or e.name == name]

    async def wait_for(self, kind: str, name: str, count: int = 1) -> None:
        while self.kinds(name).count(kind) < count:
            await self._news.wait()


def supervisor(
    strategy: str = "one_for_one", **kwargs: Any
) -> tuple[trioproc.Supervisor, Events]:
    events = Events()
    kwargs.setdefault("on_output", None)
    sup = trioproc.Supervisor(strategy, on_event=events, **kwargs)  # type: ignore[arg-type]
    return sup, events


@pytest.mark.parametrize(
    ("strategy", "changed"),
    [
        ("one_for_one", {"b"}),
        ("one_for_all", {"a", "b", "c"}),
        ("rest_for_one", {"b", "c"}),
    ],
)
async def test_strategies_restart_the_right_children(
    strategy: str, changed: set[str]
) -> None:
    """Kill the middle child from outside with SIGKILL: which pids change is
    what the strategy says."""
    sup, events = supervisor(strategy)
    async with sup:
        for name in "abc":
            await sup.start(spec(name))
        before = {name: sup.child(name).pid for name in "abc"}
        os.kill(before["b"], signal.SIGKILL)  # type: ignore[arg-type]
        for name in changed:
            await events.wait_for("ready", name, count=2)
        await trio.sleep(0.1)  # anything else would have restarted by now
        after = {name: sup.child(name).pid for name in "abc"}
    assert {name for name in "abc" if before[name] != after[name]} == changed
    assert sup.child("b").restarts == 1
    for name in "abc":
        assert not alive(after[name])  # type: ignore[arg-type]


async def test_one_for_all_stops_siblings_in_reverse_and_restarts_in_order() -> None:
    """The group restart stops the others last-started first, then starts
    everyone in start order."""
    sup, events = supervisor("one_for_all")
    async with sup:
        for name in "abc":
            await sup.start(spec(name))
        os.kill(sup.child("a").pid, signal.SIGKILL)  # type: ignore[arg-type]
        await events.wait_for("ready", "c", count=2)
    restart = events.seen[[e.kind for e in events.seen].index("exited") :]
    order = [(e.kind, e.name) for e in restart if e.kind in ("stopped", "started")]
    assert order[:5] == [
        ("stopped", "c"),
        ("stopped", "b"),
        ("started", "a"),
        ("started", "b"),
        ("started", "c"),
    ]


@pytest.mark.parametrize(
    ("restart", "code", "restarted"),
    [
        ("permanent", 0, True),
        ("permanent", 3, True),
        ("transient", 0, False),
        ("transient", 3, True),
        ("temporary", 3, False),
    ],
)
async def test_restart_types(restart: str, code: int, restarted: bool) -> None:
    """permanent always comes back; transient only after a failure;
    temporary never (and is forgotten)."""
    sup, events = supervisor(max_restarts=10)
    program = python(
        "import time\nprint('up', flush=True)\ntime.sleep(0.2)\n"
        f"raise SystemExit({code})"
    )
    async with sup:
        await sup.start(spec("job", program, restart=restart))
        await events.wait_for("exited", "job")
        with trio.move_on_after(0.5):
            await events.wait_for("started", "job", count=2)
        assert (events.kinds("job").count("started") == 2) is restarted
        if restart == "temporary":  # forgotten: the name may be used afresh
            await sup.start(spec("job", program, restart=restart))
        elif not restarted:  # down, still supervised: restart() brings it back
            await sup.restart("job")
            assert sup.child("job").running


async def test_intensity_exceeded_raises_and_leaves_nothing_running() -> None:
    """A child failing again and again: more than max_restarts in max_seconds
    and RestartIntensityExceeded leaves the block, with every child stopped."""
    sup, events = supervisor(max_restarts=2, max_seconds=10)
    crasher = python("print('up', flush=True)\nraise SystemExit(1)")
    with pytest.raises(
        trioproc.RestartIntensityExceeded,
        match="3 restarts needed within 10s, more than max_restarts=2",
    ):
        async with sup:
            await sup.start(spec("steady"))
            await sup.start(spec("crasher", crasher, ready=None))
            await trio.sleep_forever()
    steady = [e for e in events.seen if e.name == "steady" and e.kind == "started"]
    assert not alive(steady[0].pid)  # type: ignore[arg-type]
    assert "gave_up" in events.kinds()
    assert events.kinds("crasher").count("exited") == 3


async def test_ready_by_output_works_with_and_without_a_sink() -> None:
    """start() returns once the ready line appeared, whether output goes to a
    callback or is discarded."""
    lines: list[tuple[str, int, bytes]] = []
    program = python(
        "import sys, time\n"
        "print('warming up', flush=True)\n"
        "time.sleep(0.3)\n"
        "print('listening on 1', file=sys.stderr, flush=True)\n"
        "time.sleep(60)\n"
    )
    for sink in (lambda *line: lines.append(line), None):
        async with trioproc.Supervisor(on_output=sink) as sup:
            start = trio.current_time()
            child = await sup.start(
                trioproc.ChildSpec(
                    "web",
                    argv=program,
                    ready=trioproc.ready_on_output(rb"listening on"),
                )
            )
            assert child.ready
            assert trio.current_time() - start >= 0.3
    assert lines == [("web", 1, b"warming up"), ("web", 2, b"listening on 1")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_ready_by_port() -> None:
    """ready_on_port(port): start() returns once a connection succeeds."""
    port = _free_port()
    server = python(
        "import socket, time\n"
        "time.sleep(0.3)\n"
        f"s = socket.create_server(('127.0.0.1', {port}))\n"
        "time.sleep(60)\n"
    )
    async with trioproc.Supervisor(on_output=None) as sup:
        start = trio.current_time()
        await sup.start(
            trioproc.ChildSpec("srv", argv=server, ready=trioproc.ready_on_port(port))
        )
        assert trio.current_time() - start >= 0.3
        async with await trio.open_tcp_stream("127.0.0.1", port):
            pass


async def test_not_ready_in_time_is_stopped_and_start_raises() -> None:
    """A child that never gets ready: after ready_timeout it is stopped, not
    supervised, and start() raises ChildNotReady."""
    sup, events = supervisor()
    async with sup:
        with pytest.raises(trioproc.ChildNotReady, match=r"not ready within 0\.3s"):
            await sup.start(
                spec("slow", python("import time; time.sleep(60)"), ready_timeout=0.3)
            )
        with pytest.raises(KeyError):
            sup.child("slow")
        failing = python("raise SystemExit(4)")
        with pytest.raises(trioproc.ChildNotReady, match=r"exited \(4\)") as info:
            await sup.start(spec("dies", failing))
        assert info.value.returncode == 4
    started = [e for e in events.seen if e.name == "slow" and e.kind == "started"]
    assert not alive(started[0].pid)  # type: ignore[arg-type]


async def test_backoff_grows_on_trios_clock(
    fake_spawn: FakeSpawner, autojump_clock: trio.testing.MockClock
) -> None:
    """Restart delays double up to the cap, measured on the autojump clock
    with scripted children that fail after 0.1 s."""
    fake_spawn.register(["crash"], returncode=1, delay=0.1, times=None)
    sup, events = supervisor(max_restarts=100, max_seconds=1)
    backoff = trioproc.Backoff(initial=1, factor=2, cap=8, jitter=0)
    async with sup:
        await sup.start(trioproc.ChildSpec("crash", argv=["crash"], backoff=backoff))
        await events.wait_for("restarting", "crash", count=6)
    delays = [e.delay for e in events.seen if e.kind == "restarting"]
    assert delays == [1, 2, 4, 8, 8, 8]
    assert len(fake_spawn.calls) == 6


async def test_shutdown_stops_children_in_reverse_start_order() -> None:
    """Leaving the block stops the last-started child first."""
    sup, events = supervisor()
    async with sup:
        for name in "xyz":
            await sup.start(spec(name))
    stopped = [e.name for e in events.seen if e.kind == "stopped"]
    assert stopped == ["z", "y", "x"]


async def test_a_child_started_again_is_stopped_first_at_shutdown() -> None:
    """Reverse start order means the latest start: a child stopped and
    started again under its old name is stopped before the children it now
    follows (the policy decides the order, not where its name was first)."""
    sup, events = supervisor()
    async with sup:
        for name in "xyz":
            await sup.start(spec(name))
        await sup.stop("x")
        await sup.start(spec("x"))
    stopped = [e.name for e in events.seen if e.kind == "stopped"]
    assert stopped == ["x", "x", "z", "y"]


async def test_parallel_shutdown_stops_all_at_once() -> None:
    """shutdown="parallel": children that ignore SIGTERM are killed together,
    after one kill_after, not one after another."""
    program = [*IGNORES_TERM[:-1], IGNORES_TERM[-1].replace("'ready'", "'up'")]
    sup, _ = supervisor(shutdown="parallel")
    async with sup:
        for name in "pqr":
            await sup.start(spec(name, program, kill_after=0.5))
        start = trio.current_time()
    assert 0.5 <= trio.current_time() - start < 1.4  # in turn it would be 1.5 s


@pytest.mark.parametrize("new_session", [True, False])
async def test_the_shutdown_deadline_kills_what_is_left(new_session: bool) -> None:
    """shutdown_timeout bounds the whole shutdown: past it, SIGKILL -- to a
    child that leads no process group too, without waiting for its own
    kill_after."""
    program = [*IGNORES_TERM[:-1], IGNORES_TERM[-1].replace("'ready'", "'up'")]
    sup, events = supervisor(shutdown_timeout=0.3)
    async with sup:
        await sup.start(
            spec("stubborn", program, kill_after=30, new_session=new_session)
        )
        start = trio.current_time()
    assert trio.current_time() - start < 5
    assert [e.returncode for e in events.seen if e.kind == "stopped"] == [
        -signal.SIGKILL
    ]


async def test_a_grandchild_is_gone_after_shutdown() -> None:
    """Children lead their own session: stopping one reaches its children."""
    lines: list[bytes] = []
    async with trioproc.Supervisor(
        on_output=lambda n, fd, line: lines.append(line)
    ) as sup:
        await sup.start(
            trioproc.ChildSpec(
                "parent",
                argv=["sh", "-c", "sleep 100 & echo grandchild $!; wait"],
                ready=trioproc.ready_on_output(rb"grandchild \d+"),
            )
        )
        grandchild = int(lines[0].split()[1])
        assert alive(grandchild)
    assert wait_gone(grandchild)


async def test_a_task_child_beside_process_children() -> None:
    """A trio task is supervised like a process: a task that raises is
    restarted; task_status.started() makes it ready."""
    runs: list[int] = []

    async def flaky(
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        runs.append(len(runs))
        task_status.started()
        await trio.sleep(0.1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        await trio.sleep_forever()

    sup, events = supervisor()
    async with sup:
        await sup.start(spec("proc"))
        task = await sup.start(trioproc.ChildSpec("task", task=flaky, backoff=QUICK))
        assert task.pid is None
        await events.wait_for("started", "task", count=3)
        assert sup.child("proc").restarts == 0
    assert runs == [0, 1, 2]
    errors = [e.error for e in events.seen if e.kind == "exited"]
    assert errors == ["RuntimeError('boom')"] * 2


@pytest.mark.parametrize("at_once", [False, True], ids=["later", "at once"])
async def test_a_task_that_fails_too_often_is_the_cause_and_its_traceback_is_logged(
    caplog: pytest.LogCaptureFixture, at_once: bool
) -> None:
    """When a task child's failures make the supervisor give up, the error
    says how many restarts were needed against max_restarts, its cause is
    the task's own exception (not the cancellation that stopped the rest),
    and each failure is logged with the task's traceback: the one place a
    task's frames are kept. So too for a task that fails as soon as it said
    it started, before its start() returned."""
    caplog.set_level(logging.INFO, logger="trioproc.supervisor")

    def lookup() -> None:
        raise KeyError("missing")

    async def failing(
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()
        if not at_once:
            await trio.sleep(0.01)
        lookup()

    with trio.fail_after(10):
        with pytest.raises(trioproc.RestartIntensityExceeded) as caught:
            async with trioproc.Supervisor(max_restarts=0, on_output=None) as sup:
                await sup.start(trioproc.ChildSpec("t", task=failing))
                await trio.sleep_forever()
    assert str(caught.value) == (
        "1 restart needed within 5s, more than max_restarts=0 allows (last: t); "
        "giving up"
    )
    assert isinstance(caught.value.__cause__, KeyError)
    failures = [r for r in caplog.records if r.getMessage().startswith("t failed")]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert failures[0].exc_info[1] is caught.value.__cause__
    assert "lookup" in caplog.text


async def test_a_nested_supervisor_is_a_task_child() -> None:
    """Supervision trees: a task child that runs its own Supervisor."""
    inner_pids: list[int] = []

    async def subtree(
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with trioproc.Supervisor(on_output=None) as inner:
            child = await inner.start(spec("leaf"))
            assert child.pid is not None
            inner_pids.append(child.pid)
            task_status.started()
            await trio.sleep_forever()

    sup, _ = supervisor()
    async with sup:
        await sup.start(trioproc.ChildSpec("tree", task=subtree))
        assert alive(inner_pids[0])
        await sup.stop("tree")
        assert not alive(inner_pids[0])


async def test_stop_restart_and_the_child_handle() -> None:
    """child() shows pid/restarts/running; stop() is for good; restart()
    brings a new life; names are unique."""
    sup, _ = supervisor()
    async with sup:
        child = await sup.start(spec("svc"))
        assert child.running
        assert child.ready
        first = child.pid
        with pytest.raises(ValueError, match="supervised already"):
            await sup.start(spec("svc"))
        await sup.restart("svc")
        assert child.pid != first
        assert child.restarts == 1
        await sup.stop("svc")
        assert not child.running
        assert child.pid is None
        assert child.returncode == -signal.SIGTERM
        await trio.sleep(0.2)
        assert not child.running  # not restarted
        again = await sup.start(spec("svc"))
        assert again.running
        assert [c.name for c in sup.children] == ["svc"]
        with pytest.raises(KeyError, match="no supervised child named 'nope'"):
            sup.child("nope")


async def test_stop_during_backoff_is_immediate_and_final() -> None:
    """A child waiting out its backoff is stopped at once and stays down."""
    sup, events = supervisor()
    crasher = python("print('up', flush=True)\nraise SystemExit(1)")
    async with sup:
        await sup.start(
            spec("c", crasher, backoff=trioproc.Backoff(initial=10, jitter=0))
        )
        await events.wait_for("restarting", "c")
        start = trio.current_time()
        await sup.stop("c")
        assert trio.current_time() - start < 0.5
    assert events.kinds("c").count("started") == 1


async def test_events_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Lifecycle events go to the trioproc.supervisor logger too."""
    caplog.set_level(logging.INFO, logger="trioproc.supervisor")
    async with trioproc.Supervisor(on_output=None) as sup:
        await sup.start(spec("logged"))
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("logged started (pid ") for m in messages)
    assert "logged is ready" in messages
    assert any("logged stopped" in m for m in messages)


async def test_default_output_is_prefixed_lines(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Without on_output, each line is printed with the child's name."""
    async with trioproc.Supervisor() as sup:
        await sup.start(spec("named"))
    out = capfd.readouterr().out
    assert out.startswith("named | up ")


@pytest.mark.parametrize("moment", ["start", "ready", "backoff", "restart", "shutdown"])
async def test_cancelling_at_any_moment_leaves_nothing(moment: str) -> None:
    """Cancelled while starting, waiting for readiness, in backoff, restarting
    or shutting down: no process, fd or task is left (the guard checks)."""
    pids: list[int] = []
    slow_ready = python(
        "import os, time\nprint('pid', os.getpid(), flush=True)\ntime.sleep(0.3)\n"
        "print('up', flush=True)\ntime.sleep(60)"
    )
    crasher = python(
        "import os\nprint('up', os.getpid(), flush=True)\nraise SystemExit(1)"
    )

    def remember(name: str, fd: int, line: bytes) -> None:
        if line.startswith((b"up ", b"pid ")):
            pids.append(int(line.split()[1]))

    sup, events = supervisor(on_output=remember)
    with trio.move_on_after(5) as scope:
        async with sup:
            if moment == "start":
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(sup.start, spec("s", slow_ready))
                    await trio.sleep(0.1)
                    scope.cancel()
            elif moment == "ready":
                await sup.start(spec("a"))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(sup.start, spec("s", slow_ready))
                    await trio.sleep(0.1)
                    scope.cancel()
            elif moment == "backoff":
                await sup.start(
                    spec("c", crasher, backoff=trioproc.Backoff(initial=10))
                )
                await events.wait_for("restarting", "c")
                scope.cancel()
            elif moment == "restart":
                await sup.start(
                    spec(
                        "c",
                        [*slow_ready[:-1], slow_ready[-1] + "\nraise SystemExit(1)"],
                    )
                )
                os.kill(pids[-1], signal.SIGKILL)
                await events.wait_for("started", "c", count=2)
                scope.cancel()
            else:
                await sup.start(
                    spec(
                        "a",
                        [
                            *IGNORES_TERM[:-1],
                            IGNORES_TERM[-1].replace("'ready'", "'up'"),
                        ],
                        kill_after=0.5,
                    )
                )
                await sup.start(spec("b"))
            await trio.sleep_forever() if moment != "shutdown" else None
    if moment == "shutdown":
        pass
    assert pids, "the test should have seen a child"
    assert not [pid for pid in pids if alive(pid)]


async def test_a_supervisor_entered_cancelled_leaves_at_once() -> None:
    """A Supervisor entered in a scope that is already cancelled leaves
    with the cancellation, its body not run (it hung for ever, out of reach
    of any deadline: so this runs in a child interpreter with a timeout)."""
    code = (
        "import trio, trioproc\n"
        "async def main():\n"
        "    ran = False\n"
        "    with trio.move_on_after(0) as scope:\n"
        "        async with trioproc.Supervisor(on_output=None):\n"
        "            ran = True\n"
        "    print(scope.cancelled_caught, ran)\n"
        "trio.run(main)\n"
    )
    with trio.fail_after(30):
        done = await trioproc.run([sys.executable, "-c", code], timeout=20)
    assert done.stdout == b"True False\n"


def test_bad_specs_and_supervisors_are_refused() -> None:
    """Errors at the call that made them, naming what was wrong."""
    with pytest.raises(TypeError, match="exactly one of argv= or task="):
        trioproc.ChildSpec("x")
    with pytest.raises(TypeError, match="exactly one of argv= or task="):
        trioproc.ChildSpec("x", argv=["true"], task=trio.sleep_forever)
    with pytest.raises(ValueError, match="restart must be one of"):
        trioproc.ChildSpec("x", argv=["true"], restart="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name must be a non-empty str"):
        trioproc.ChildSpec("", argv=["true"])
    with pytest.raises(ValueError, match="ready_timeout"):
        trioproc.ChildSpec("x", argv=["true"], ready_timeout=-1)
    with pytest.raises(TypeError, match="did you mean"):
        trioproc.ChildSpec("x", argv="ls -l")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strategy must be one of"):
        trioproc.Supervisor("all_for_one")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shutdown must be"):
        trioproc.Supervisor(shutdown="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="port must be from 1 to 65535, not 70000"):
        trioproc.ready_on_port(70000)
    with pytest.raises(TypeError, match="port must be an int, not str"):
        trioproc.ready_on_port("80")  # type: ignore[arg-type]


async def test_a_ready_line_printed_before_the_check_starts_counts() -> None:
    """Regression: a child that prints its ready line at once, before the
    ready check has started waiting, is still seen as ready."""

    async def late_check(child: trioproc.SupervisedChild) -> None:
        await trio.sleep(0.3)  # the child printed long ago
        await child.wait_for_output(rb"^up")

    sup, _ = supervisor()
    async with sup:
        child = await sup.start(spec("early", ready=late_check))
        assert child.ready


async def test_a_child_ready_then_gone_at_once_is_restarted() -> None:
    """Regression: a child that passed its ready check and ended before
    start() returned is still restarted by its policy."""
    blip = python(
        "import os\nprint('up', os.getpid(), flush=True)\nraise SystemExit(2)"
    )

    async def ready_until_it_ends(child: trioproc.SupervisedChild) -> None:
        await child.wait_for_output(b"up")
        assert child.transport is not None
        await child.transport.wait()  # ready -- and gone already

    sup, events = supervisor(max_restarts=10)
    async with sup:
        await sup.start(spec("blip", blip, ready=ready_until_it_ends))
        await events.wait_for("restarting", "blip")


def test_spec_checks_its_callables_and_backoff() -> None:
    """task, ready and backoff are checked where the spec is made."""
    with pytest.raises(TypeError, match="task must be an async function"):
        trioproc.ChildSpec("x", task=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ready must be an async callable"):
        trioproc.ChildSpec("x", argv=["true"], ready="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"backoff must be a trioproc\.Backoff"):
        trioproc.ChildSpec("x", argv=["true"], backoff=0.5)  # type: ignore[arg-type]


async def test_long_and_unterminated_lines_are_delivered() -> None:
    """A line longer than 64 KiB comes in 64 KiB pieces; a last line without
    a newline still arrives at end of file."""
    lines: list[bytes] = []
    program = python(
        "import sys\nsys.stdout.write('x' * 70000 + chr(10) + 'end without newline')"
    )
    async with trioproc.Supervisor(
        on_output=lambda n, fd, line: lines.append(line)
    ) as sup:
        await sup.start(
            trioproc.ChildSpec(
                "talker",
                argv=program,
                restart="temporary",
                ready=trioproc.ready_on_output(b"end without"),
            )
        )
        assert "talker" in repr(sup.child("talker"))
    assert [len(line) for line in lines] == [65536, 70000 - 65536, 19]
    assert lines[-1] == b"end without newline"


async def test_misuse_of_the_block_is_refused() -> None:
    """start() needs the block and a ChildSpec; a supervisor is entered once."""
    sup = trioproc.Supervisor(on_output=None)
    with pytest.raises(RuntimeError, match="needs the supervisor's async with block"):
        await sup.start(spec("early"))
    async with sup:
        with pytest.raises(TypeError, match="takes a ChildSpec"):
            await sup.start(["true"])  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="already entered"):
            await sup.__aenter__()


async def test_a_body_error_leaves_as_itself_after_stopping_children() -> None:
    """An exception in the block stops every child, then leaves unwrapped."""
    sup, events = supervisor()
    with pytest.raises(ZeroDivisionError):
        async with sup:
            await sup.start(spec("a"))
            1 / 0  # noqa: B018
    assert events.kinds("a")[-1] == "stopped"


async def test_tasks_without_task_status_and_tasks_that_return() -> None:
    """A task without task_status runs at once; one that returns has exited
    normally: permanent brings it back, transient does not."""
    runs: dict[str, int] = {"perm": 0, "trans": 0}

    def counting(name: str) -> Any:
        async def task() -> None:
            runs[name] += 1
            await trio.sleep(0.05)

        return task

    sup, events = supervisor(max_restarts=100, max_seconds=1)
    async with sup:
        await sup.start(
            trioproc.ChildSpec("perm", task=counting("perm"), backoff=QUICK)
        )
        await sup.start(
            trioproc.ChildSpec("trans", task=counting("trans"), restart="transient")
        )
        await events.wait_for("started", "perm", count=3)
    assert runs["trans"] == 1
    assert [
        e.returncode for e in events.seen if e.name == "trans" and e.kind == "exited"
    ] == [0]


async def test_restart_brings_back_a_child_stopped_for_good() -> None:
    """restart() after stop(): supervised again, with a new life."""
    sup, events = supervisor()
    async with sup:
        child = await sup.start(spec("svc"))
        await sup.stop("svc")
        await sup.restart("svc")
        assert child.running
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        await events.wait_for("ready", "svc", count=3)
        assert child.restarts == 2


async def test_a_restart_that_cannot_start_counts_as_a_failure(tmp_path: Any) -> None:
    """The program vanished between lives: the OSError is reported and
    counted, until the intensity gives up."""
    program = tmp_path / "service"
    program.write_text("#!/bin/sh\necho up\nexec sleep 60\n")
    program.chmod(0o755)
    sup, events = supervisor(max_restarts=2, max_seconds=30)
    with pytest.raises(trioproc.RestartIntensityExceeded):
        async with sup:
            child = await sup.start(spec("svc", [str(program)]))
            program.unlink()
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
            await trio.sleep_forever()
    errors = [e.error for e in events.seen if e.kind == "exited" and e.error]
    assert errors
    assert all("FileNotFoundError" in error for error in errors)


async def test_a_group_restart_skips_a_child_stopped_meanwhile() -> None:
    """one_for_all: stopping a sibling during the backoff keeps it down."""
    sup, events = supervisor("one_for_all")
    async with sup:
        await sup.start(spec("a", backoff=trioproc.Backoff(initial=0.5, jitter=0)))
        await sup.start(spec("b"))
        os.kill(sup.child("a").pid, signal.SIGKILL)  # type: ignore[arg-type]
        await events.wait_for("restarting", "a")
        await sup.stop("b")
        await events.wait_for("ready", "a", count=2)
        await trio.sleep(0.1)
        assert not sup.child("b").running
    assert events.kinds("b").count("started") == 1


async def test_a_start_cancelled_before_ready_leaves_no_child() -> None:
    """start() cancelled while the ready check runs: the half-started child
    is stopped, not left running unsupervised, and the name is free again."""
    sup, events = supervisor()
    async with sup:
        with trio.move_on_after(0.5):
            await sup.start(
                spec("slow", SERVICE, ready=trioproc.ready_on_output("never"))
            )
        started = [e for e in events.seen if e.name == "slow" and e.kind == "started"]
        assert started
        assert wait_gone(started[0].pid)  # type: ignore[arg-type]
        with pytest.raises(KeyError):
            sup.child("slow")
        again = await sup.start(spec("slow"))
        assert again.running


async def test_a_ready_check_that_raises_is_a_child_not_ready() -> None:
    """A ready check's own error: ChildNotReady with it as the cause, and the
    child stopped."""

    async def broken(child: trioproc.SupervisedChild) -> None:
        await child.wait_for_output(b"up")
        raise LookupError("no such service")

    sup, events = supervisor()
    async with sup:
        with pytest.raises(trioproc.ChildNotReady, match="ready check failed") as info:
            await sup.start(spec("svc", ready=broken))
        assert isinstance(info.value.__cause__, LookupError)
    started = [e for e in events.seen if e.kind == "started"]
    assert wait_gone(started[0].pid)  # type: ignore[arg-type]


async def test_a_restart_whose_ready_check_raises_counts_as_a_failure() -> None:
    """On a restart a raising ready check is a failed start, counted against
    the intensity, not a crash of the supervisor."""
    lives = 0

    async def only_once(child: trioproc.SupervisedChild) -> None:
        nonlocal lives
        lives += 1
        await child.wait_for_output(b"up")
        if lives > 1:
            raise LookupError("unhealthy")

    sup, events = supervisor(max_restarts=2, max_seconds=30)
    with pytest.raises(trioproc.RestartIntensityExceeded):
        async with sup:
            child = await sup.start(spec("svc", ready=only_once))
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
            await trio.sleep_forever()
    assert lives == 3  # the first life, and two restarts that failed
    assert "gave_up" in events.kinds()


async def run_a_child_that_leaves_a_leftover(leftover: str, **spec: Any) -> int:
    """Supervise a shell that starts *leftover* in the background (holding
    its stdout) and exits 3; return the leftover's pid once the supervisor
    has seen the exit."""
    lines: list[bytes] = []
    events = Events()
    async with trioproc.Supervisor(
        on_output=lambda n, fd, line: lines.append(line), on_event=events
    ) as sup:
        command = f"{leftover} & echo left $!; exit 3"
        await sup.start(
            trioproc.ChildSpec(
                "forks", argv=["sh", "-c", command], restart="temporary", **spec
            )
        )
        with trio.fail_after(3):
            await events.wait_for("exited", "forks")
        assert not sup.child("forks").running
        assert sup.child("forks").returncode == 3
        return int(lines[0].split()[1])


async def test_an_exit_is_noticed_though_a_leftover_holds_the_output() -> None:
    """The child exits, leaving a background process that holds its stdout:
    the supervisor still sees the exit at once, and (own session) stops the
    leftover."""
    assert wait_gone(await run_a_child_that_leaves_a_leftover("sleep 60"))


async def test_a_leftover_that_ignores_sigterm_is_killed_after_kill_after() -> None:
    """The leftover ignores SIGTERM: SIGKILL follows after the child's
    kill_after, and the exit is still reported."""
    ignores = "(trap '' TERM; exec sleep 60)"
    leftover = await run_a_child_that_leaves_a_leftover(ignores, kill_after=0.3)
    assert wait_gone(leftover)


async def test_without_its_own_session_a_leftover_is_stopped_too() -> None:
    """new_session=False: the exit is noticed, and the leftover is stopped
    all the same, since the child leads its own process group by default."""
    leftover = await run_a_child_that_leaves_a_leftover("sleep 60", new_session=False)
    try:
        assert wait_gone(leftover, timeout=0.5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(leftover, signal.SIGKILL)


async def test_restart_during_shutdown_is_refused() -> None:
    """restart() while the supervisor shuts down raises, and starts nothing."""
    errors: list[BaseException] = []
    sup, events = supervisor()
    async with trio.open_nursery() as nursery, sup:
        await sup.start(spec("a"))
        await sup.start(spec("b"))

        async def restart_when_b_stops() -> None:
            await events.wait_for("stopped", "b")
            try:
                await sup.restart("a")
            except RuntimeError as exc:
                errors.append(exc)

        nursery.start_soon(restart_when_b_stops)
        await trio.sleep(0.05)
    assert [str(e) for e in errors] == ["restart() during the supervisor's shutdown"]
    assert events.kinds("a").count("started") == 1


async def test_a_failed_restart_leaves_the_child_unsupervised() -> None:
    """restart() whose new life is not ready raises; the child is down and no
    longer supervised, and start() may bring it back."""
    lives = 0

    async def first_only(child: trioproc.SupervisedChild) -> None:
        nonlocal lives
        lives += 1
        await child.wait_for_output(b"up")
        if lives == 2:
            raise LookupError("unhealthy")

    sup, events = supervisor()
    async with sup:
        child = await sup.start(spec("svc", ready=first_only))
        with pytest.raises(trioproc.ChildNotReady):
            await sup.restart("svc")
        assert not child.running
        await trio.sleep(0.2)  # no restart comes
        assert events.kinds("svc").count("started") == 2
        again = await sup.start(spec("svc", ready=first_only))
        assert again.running
