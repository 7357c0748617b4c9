"""The fake_spawn fixture: scripted children for code that spawns processes.

The fixture comes from the pytest11 entry point that installing trioproc
registers; nothing here imports the plugin module.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import trio
import trio.testing

import trioproc
from trioproc.testing import FakeSpawner, UnregisteredCommand

from .helpers import Recorder
from .test_readme import run_pytest


async def test_run_gets_the_scripted_output(fake_spawn: FakeSpawner) -> None:
    """trioproc.run() of a registered command returns its scripted result,
    and calls records the argv."""
    fake_spawn.register(["git", "rev-parse", "HEAD"], stdout=b"abc123\n")
    result = await trioproc.run(["git", "rev-parse", "HEAD"])
    assert result.stdout == b"abc123\n"
    assert result.returncode == 0
    assert fake_spawn.calls == [["git", "rev-parse", "HEAD"]]


async def test_a_failing_command_raises_as_for_real(fake_spawn: FakeSpawner) -> None:
    """returncode and signal end the fake child; run(check=True) raises."""
    fake_spawn.register(["make"], stderr=b"no rule\n", returncode=2)
    fake_spawn.register(["flaky"], signal=signal.SIGSEGV)
    with pytest.raises(subprocess.CalledProcessError) as info:
        await trioproc.run(["make"])
    assert (info.value.returncode, info.value.stderr) == (2, b"no rule\n")
    result = await trioproc.run(["flaky"], check=False)
    assert result.returncode == -signal.SIGSEGV


async def test_registrations_serve_one_call_each_in_order(
    fake_spawn: FakeSpawner,
) -> None:
    """Registering a command twice queues two runs; times=None serves all."""
    fake_spawn.register(["date"], stdout=b"monday\n")
    fake_spawn.register(["date"], stdout=b"tuesday\n")
    fake_spawn.register(["uptime"], stdout=b"up\n", times=None)
    assert (await trioproc.run(["date"])).stdout == b"monday\n"
    assert (await trioproc.run(["date"])).stdout == b"tuesday\n"
    for _ in range(3):
        assert (await trioproc.run(["uptime"])).stdout == b"up\n"
    with pytest.raises(UnregisteredCommand, match=r"spawn\(\['date'\]\)"):
        await trioproc.run(["date"])
    assert fake_spawn.unused == []


async def test_patterns_and_predicates_match_argv(fake_spawn: FakeSpawner) -> None:
    """A regular expression is searched for in the shell-joined argv; a
    predicate gets the argv list."""
    fake_spawn.register(re.compile(r"curl -s https://\S+"), stdout=b"{}", times=None)
    fake_spawn.register(lambda argv: argv[0] == "ls", stdout=b"a b\n")
    assert (
        await trioproc.run(["curl", "-s", "https://example.test/x"])
    ).stdout == b"{}"
    assert (await trioproc.run(["ls", "/tmp"])).stdout == b"a b\n"
    with pytest.raises(UnregisteredCommand, match="register it with"):
        await trioproc.run(["curl", "-v", "https://example.test/x"])


async def test_stdin_written_is_readable_per_call(fake_spawn: FakeSpawner) -> None:
    """What the code wrote to each call's stdin is kept per run."""
    fake_spawn.register(["wc", "-l"], stdout=b"2\n", times=None)
    await trioproc.run(["wc", "-l"], input=b"a\nb\n")
    async with trioproc.spawn(["wc", "-l"]) as child:
        assert child.stdin is not None
        await child.stdin.send_all(b"via stream\n")
    assert [run.stdin for run in fake_spawn.runs] == [b"a\nb\n", b"via stream\n"]


async def test_output_on_any_fd_with_delays(
    fake_spawn: FakeSpawner, autojump_clock: trio.testing.MockClock
) -> None:
    """output= scripts chunks on any fd, with delays on Trio's clock."""
    fake_spawn.register(
        ["worker"], output=[(3, b"ready", 0.5), (1, b"tick", 2.0), (1, b"tock", 2.0)]
    )
    protocol = Recorder()
    start = trio.current_time()
    async with trioproc.spawn(["worker"], protocol, child_fds={1: "r", 3: "r"}):
        await protocol.wait_for_output(b"ready", fd=3)
        assert trio.current_time() - start == pytest.approx(0.5)
    assert protocol.out(1) == b"ticktock"
    assert trio.current_time() - start == pytest.approx(4.5)


async def test_a_thirty_second_timeout_costs_no_real_time(
    fake_spawn: FakeSpawner, autojump_clock: trio.testing.MockClock
) -> None:
    """A child that runs 30 s and ignores SIGTERM, under a 10 s timeout: the
    block stops it, waits kill_after, kills it -- in Trio's time only."""
    fake_spawn.register(["backup"], delay=30, ignores_sigterm=True)
    real_start, start = time.monotonic(), trio.current_time()
    with trio.move_on_after(10) as scope:
        await trioproc.run(["backup"], kill_after=15)
    assert scope.cancelled_caught
    assert trio.current_time() - start == pytest.approx(25)
    assert fake_spawn.runs[0].returncode == -signal.SIGKILL
    assert time.monotonic() - real_start < 5  # Trio's clock jumped


async def test_a_child_that_handles_sigterm_ends_at_once(
    fake_spawn: FakeSpawner, autojump_clock: trio.testing.MockClock
) -> None:
    """Without ignores_sigterm, stopping the child ends it by SIGTERM."""
    fake_spawn.register(["server"], delay=3600)
    async with trioproc.spawn(["server"], Recorder()) as child:
        assert await child.stop() == -signal.SIGTERM
    assert fake_spawn.runs[0].signals == ["TERM"]


async def test_a_child_that_never_reads_stdin(fake_spawn: FakeSpawner) -> None:
    """reads_stdin=False: writes queue, so send_all waits (real backpressure)."""
    fake_spawn.register(["sink"], reads_stdin=False, delay=60)
    async with trioproc.spawn(["sink"]) as child:
        stdin = child.stdin
        assert stdin is not None
        with trio.move_on_after(0.05) as scope:
            await stdin.send_all(b"x" * 1_000_000)
        assert scope.cancelled_caught
        assert 0 < stdin.committed < 1_000_000
        await child.stop()


async def test_a_child_that_reads_all_input_first(fake_spawn: FakeSpawner) -> None:
    """waits_for_stdin=True: output only after the parent closes stdin."""
    fake_spawn.register(["sort"], stdout=b"a\nb\n", waits_for_stdin=True)
    async with trioproc.spawn(["sort"]) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        await child.stdin.send_all(b"b\na\n")
        with trio.move_on_after(0.05) as scope:
            await child.stdout.receive_some()
        assert scope.cancelled_caught  # nothing comes while stdin is open
        await child.stdin.aclose()
        assert await child.stdout.receive_some() == b"a\nb\n"
    assert fake_spawn.runs[0].stdin == b"b\na\n"


async def test_the_spawn_arguments_are_recorded(fake_spawn: FakeSpawner) -> None:
    """Each run keeps the checked spawn() arguments (cwd, env, ...)."""
    fake_spawn.register(["env"])
    await trioproc.run(["env"], env={"A": "1"}, cwd="/tmp", new_session=True)
    options = fake_spawn.runs[0].options
    assert options.env == (b"A=1",)
    assert options.cwd == b"/tmp"
    assert options.new_session


async def test_bad_arguments_still_fail_at_the_call(fake_spawn: FakeSpawner) -> None:
    """spawn()'s checks run as usual under the fake."""
    with pytest.raises(TypeError, match="did you mean"):
        trioproc.spawn("ls -l")
    assert fake_spawn.calls == []


async def test_passthrough_runs_unregistered_commands_for_real(
    fake_spawn: FakeSpawner,
) -> None:
    """passthrough=True: what is not registered starts a real child."""
    fake_spawn.passthrough = True
    fake_spawn.register(["echo", "fake"], stdout=b"scripted\n")
    assert (await trioproc.run(["echo", "fake"])).stdout == b"scripted\n"
    assert (await trioproc.run(["echo", "real"])).stdout == b"real\n"
    assert fake_spawn.calls == [["echo", "fake"], ["echo", "real"]]


async def test_an_error_in_the_block_stops_the_fake_child(
    fake_spawn: FakeSpawner,
) -> None:
    """Leaving by an exception stops the child and lets the error out as itself."""
    fake_spawn.register(["daemon"], delay=3600)
    with pytest.raises(KeyError):
        async with trioproc.spawn(["daemon"], Recorder()):
            raise KeyError("body")
    assert fake_spawn.runs[0].returncode == -signal.SIGTERM


def test_register_rejects_what_cannot_work() -> None:
    """register() checks its arguments like spawn() does."""
    spawner = FakeSpawner()
    with pytest.raises(TypeError, match="did you mean"):
        spawner.register("ls -l")
    with pytest.raises(TypeError, match="stdout must be bytes"):
        spawner.register(["ls"], stdout="text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times must be"):
        spawner.register(["ls"], times=0)


def test_only_one_spawner_at_a_time(fake_spawn: FakeSpawner) -> None:
    """A second installed spawner would be ambiguous: refused."""
    with (
        pytest.raises(RuntimeError, match="installed already"),
        FakeSpawner().installed(),
    ):
        pass


async def test_a_pattern_is_searched_for_as_re_search_does(
    fake_spawn: FakeSpawner,
) -> None:
    """``re.compile(r"^grep ")`` matches ``grep x file``, as users of
    `re.search` expect; ``$`` anchors the end."""
    fake_spawn.register(re.compile(r"^grep "), stdout=b"x\n")
    fake_spawn.register(re.compile(r"\.log$"), stdout=b"log\n")
    assert (await trioproc.run(["grep", "x", "file"])).stdout == b"x\n"
    assert (await trioproc.run(["tail", "app.log"])).stdout == b"log\n"
    with pytest.raises(UnregisteredCommand):
        await trioproc.run(["tail", "app.log.1"])
    with pytest.raises(UnregisteredCommand):
        await trioproc.run(["fgrep", "x"])


UNUSED_TESTS = """
import trioproc


async def test_unused(fake_spawn):
    fake_spawn.register(["git", "pull"])
    fake_spawn.register(["make"], times=2)
    await trioproc.run(["make"])


async def test_unused_allowed(fake_spawn):
    fake_spawn.allow_unused = True
    fake_spawn.register(["git", "pull"])


async def test_every_call_registration_unused(fake_spawn):
    fake_spawn.register(["uptime"], times=None)


async def test_used(fake_spawn):
    fake_spawn.register(["git", "pull"])
    await trioproc.run(["git", "pull"])


async def test_failing_body(fake_spawn):
    fake_spawn.register(["never-run"])
    assert False, "the body failed"
"""


@pytest.mark.deadline(120)
def test_unused_registrations_fail_the_test_at_teardown(tmp_path: Path) -> None:
    """A test whose code no longer runs a registered command fails, naming
    it, unless ``fake_spawn.allow_unused`` says that is meant; a failing test
    gets no second report for what it left unused."""
    (tmp_path / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\ntrio_mode = true\n"
    )
    (tmp_path / "test_unused.py").write_text(UNUSED_TESTS)
    result = run_pytest(tmp_path, "-q", "-rA", "--rootdir", str(tmp_path))
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "1 failed, 4 passed, 1 error" in out, out
    (error,) = [line for line in out.splitlines() if line.startswith("ERROR ")]
    assert error.startswith("ERROR test_unused.py::test_unused - Failed:"), error
    assert (
        "fake_spawn: registered but never run: ['git', 'pull'] (1 call(s) left); "
        "['make'] (1 call(s) left). Remove the registration, or set "
        "fake_spawn.allow_unused = True"
    ) in out
    assert "['never-run'] (1 call(s) left)" not in out
    assert "FAILED test_unused.py::test_failing_body" in out
