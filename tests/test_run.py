"""run(): start, feed, collect, wait -- subprocess.run's shape, Trio's manners."""

from __future__ import annotations

import signal
import subprocess

import pytest
import trio

import trioproc

from .helpers import CAT, SLEEP, python


async def test_run_collects_output_and_returns_completed_process() -> None:
    """stdout and stderr are collected separately; args are what was passed."""
    result = await trioproc.run(["sh", "-c", "echo out; echo err >&2"])
    assert isinstance(result, subprocess.CompletedProcess)
    assert (result.args, result.returncode) == (
        ["sh", "-c", "echo out; echo err >&2"],
        0,
    )
    assert (result.stdout, result.stderr) == (b"out\n", b"err\n")


async def test_run_feeds_input_and_closes_stdin() -> None:
    """input= is written whole, then stdin is closed."""
    result = await trioproc.run(CAT, input=b"payload" * 50_000)
    assert result.stdout == b"payload" * 50_000


async def test_run_without_input_gives_end_of_file_at_once() -> None:
    """With no input the child's stdin is at end of file (never the terminal)."""
    result = await trioproc.run(python("import sys; print(repr(sys.stdin.read()))"))
    assert result.stdout == b"''\n"


async def test_run_check_false_returns_failures() -> None:
    """check=False returns the non-zero status instead of raising."""
    result = await trioproc.run(["sh", "-c", "exit 7"], check=False)
    assert result.returncode == 7


async def test_run_reports_a_signal_as_negative_returncode() -> None:
    """A child ended by a signal gives -signum, as subprocess does."""
    with pytest.raises(subprocess.CalledProcessError) as info:
        await trioproc.run(["sh", "-c", "kill -KILL $$"])
    assert info.value.returncode == -signal.SIGKILL


async def test_run_without_capture_passes_the_parents_fds(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """capture_output=False: the child writes to the parent's own stdout/stderr."""
    result = await trioproc.run(
        ["sh", "-c", "echo visible; echo also >&2"], capture_output=False
    )
    assert (result.stdout, result.stderr) == (None, None)
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("visible\n", "also\n")


@pytest.mark.linux_backend("gives a child pipes on fds 0, 1 and 2 only")
async def test_run_with_custom_child_fds_collects_each_r_fd() -> None:
    """child_fds works with run(); fd 1 only collected when it is "r"."""
    result = await trioproc.run(
        ["sh", "-c", "echo three >&3; echo two >&2"], child_fds={2: "r", 3: "r"}
    )
    assert result.stdout is None
    assert result.stderr == b"two\n"


async def test_run_is_cancellable_and_reaps() -> None:
    """Cancelling run() stops and reaps the child before propagating."""
    with trio.move_on_after(0.2) as scope:
        await trioproc.run(SLEEP(30))
    assert scope.cancelled_caught


async def test_run_missing_program_raises_file_not_found() -> None:
    """Start-up errors are OSErrors from run() itself, with nothing left behind."""
    with pytest.raises(FileNotFoundError):
        await trioproc.run(["/definitely/missing"])
