"""No task waits for a child: one exit watcher per run reaps them all."""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import subprocess

import pytest
import trio

import trioproc

from .helpers import SLEEP, alive, open_fds, python

pytestmark = pytest.mark.skipif(
    os.environ.get("TRIOPROC_BACKEND") == "portable",
    reason="the portable backend waits for each child in a system task of its own",
)


def _tasks_of_run() -> int:
    """How many tasks the current Trio run has, system tasks included."""
    count = 0
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        count += 1
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return count


async def test_an_idle_child_costs_no_task() -> None:
    """A program that holds many children does not hold a task for each:
    the run has as many tasks with thirty running children as with one."""
    with trio.fail_after(20):
        with trio.CancelScope() as scope:
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(
                    trioproc.spawn(SLEEP(30), trioproc.ProcessProtocol(), child_fds={})
                )
                await trio.lowlevel.checkpoint()
                with_one = _tasks_of_run()
                for _ in range(29):
                    await stack.enter_async_context(
                        trioproc.spawn(
                            SLEEP(30), trioproc.ProcessProtocol(), child_fds={}
                        )
                    )
                await trio.lowlevel.checkpoint()
                with_thirty = _tasks_of_run()
                scope.cancel()
    assert with_thirty == with_one


async def test_an_exit_is_seen_while_the_body_waits_for_something_else() -> None:
    """processExited and processEnded come while the body is busy elsewhere
    (no task of the block waits for the exit), and every waiter sees it."""
    ended = trio.Event()
    seen: list[str] = []

    class Protocol(trioproc.ProcessProtocol):
        def processExited(self, reason: object) -> None:
            seen.append("exited")

        def processEnded(self, reason: object) -> None:
            seen.append("ended")
            ended.set()

    with trio.fail_after(10):
        async with trioproc.spawn(
            python("import os; os._exit(3)"), Protocol(), child_fds={}
        ) as transport:
            await ended.wait()
            assert seen == ["exited", "ended"]
            assert transport.returncode == 3
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(transport.wait)


async def test_cancelling_one_block_stops_that_child_only_at_once() -> None:
    """Per-child cancellation stays exact: cancelling one child's block
    stops and reaps that child before the cancellation leaves, and the
    child beside it keeps running."""
    with trio.fail_after(10):
        async with trioproc.spawn(SLEEP(30), child_fds={}) as other:
            with trio.CancelScope() as scope:
                async with trioproc.spawn(SLEEP(30), child_fds={}) as first:
                    scope.cancel()
                    await trio.sleep_forever()
            assert first.returncode == -signal.SIGTERM
            assert other.pid is not None
            assert alive(other.pid)
            await other.stop()


async def test_a_callback_that_fails_in_the_watcher_fails_its_block() -> None:
    """A processExited that raises (it runs where the watcher noticed the
    exit) cancels the block's body and leaves the block as itself; the
    watcher goes on serving other children."""

    class Fails(trioproc.ProcessProtocol):
        def processExited(self, reason: object) -> None:
            raise KeyError("from processExited")

    with trio.fail_after(10):
        with pytest.raises(KeyError, match="from processExited"):
            async with trioproc.spawn(
                python("pass"), Fails(), child_fds={}
            ) as transport:
                await trio.sleep_forever()
        assert transport.returncode == 0
        assert (await trioproc.run(python("print('still')"))).stdout == b"still\n"


async def test_callbacks_from_the_watcher_see_the_blocks_context() -> None:
    """The protocol's exit callbacks run in the context of the block that
    spawned the child, as its other callbacks (from the block's tasks) do:
    context variables such as a request id are there."""
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    seen: list[str] = []

    class Protocol(trioproc.ProcessProtocol):
        def processExited(self, reason: object) -> None:
            seen.append(request_id.get("unset"))

    request_id.set("r-42")
    with trio.fail_after(10):
        async with trioproc.spawn(python("pass"), Protocol(), child_fds={}):
            pass
    assert seen == ["r-42"]


async def test_the_watcher_holds_no_fd_once_no_child_runs() -> None:
    """The watcher's epoll set is closed as soon as the last child it
    watched has exited: a program between children holds no extra fd."""
    before = open_fds()
    with trio.fail_after(10):
        async with trioproc.spawn(SLEEP(30), child_fds={}) as transport:
            assert len(open_fds() - before) == 2  # the pidfd, the epoll set
            await transport.stop()
        assert open_fds() == before
        # And a child after that is watched again, through a new set.
        assert (await trioproc.run(python("print(1)"))).stdout == b"1\n"
    assert open_fds() == before


async def test_a_block_with_no_fd_and_a_failing_body_and_callback_raises_both() -> None:
    """A block that serves no fd has no task of its own, and still keeps the
    exception policy: when the body fails while a callback also failed, both
    errors leave, in a group."""
    exited = trio.Event()

    class Fails(trioproc.ProcessProtocol):
        def processExited(self, reason: object) -> None:
            exited.set()
            raise KeyError("from processExited")

    with trio.fail_after(10):
        with pytest.RaisesGroup(
            pytest.RaisesExc(KeyError), pytest.RaisesExc(ValueError)
        ):
            async with trioproc.spawn(python("pass"), Fails(), child_fds={}):
                with trio.CancelScope(shield=True):
                    await exited.wait()
                raise ValueError("from the body")


async def test_each_kind_of_block_without_a_task_holds_none() -> None:
    """Stream mode with every standard fd elsewhere (``DEVNULL``, the
    parent's own) holds no task either."""
    with trio.fail_after(20):
        before = _tasks_of_run()
        async with trioproc.spawn(
            SLEEP(30), stdin=subprocess.DEVNULL, stdout=None, stderr=subprocess.DEVNULL
        ) as transport:
            async with trioproc.spawn(
                SLEEP(30), stdin=None, stdout=None, stderr=None
            ) as other:
                await trio.lowlevel.checkpoint()
                # The run's exit watcher, at most, is new.
                assert _tasks_of_run() <= before + 1
                await other.stop()
            await transport.stop()


async def test_a_block_is_entered_once_even_after_it_failed_to_start() -> None:
    """A ``spawn()`` block whose child could not start is not entered again
    (a block is one child's): it says so."""
    block = trioproc.spawn(["/no/such/program"])
    with trio.fail_after(10):
        with pytest.raises(FileNotFoundError):
            async with block:
                raise AssertionError("not reached")  # pragma: no cover
        with pytest.raises(RuntimeError, match="already entered"):
            async with block:
                raise AssertionError("not reached")  # pragma: no cover


@pytest.mark.parametrize(
    "child_fds",
    [{}, {0: "w"}, {1: "r"}],
    ids=["no fd", "a write end only", "a read end"],
)
async def test_a_cancellation_while_the_end_waits_for_the_child_leaves_the_block(
    child_fds: dict[int, str],
) -> None:
    """A block whose body ended well waits for its child; a cancellation
    from outside meanwhile stops the child and leaves the block as a
    cancellation (code after the block does not run), whatever fds the
    child has."""
    reached = False
    with trio.fail_after(10):
        with trio.move_on_after(0.3) as scope:
            async with trioproc.spawn(
                SLEEP(30), trioproc.ProcessProtocol(), child_fds=child_fds
            ) as transport:
                pass
            reached = True  # pragma: no cover - the cancellation leaves first
    assert scope.cancelled_caught
    assert not reached
    assert transport.returncode == -signal.SIGTERM


async def test_a_body_that_cancels_its_scope_last_leaves_cancelled() -> None:
    """A body whose last statement cancels a scope around its block (no
    checkpoint after it) leaves the block by that cancellation: the block's
    end checkpoints, whatever it waited for shielded."""
    reached = False
    with trio.fail_after(10):
        with trio.CancelScope() as scope:
            async with trioproc.spawn(SLEEP(30), child_fds={}) as transport:
                scope.cancel()
            reached = True  # pragma: no cover - the cancellation leaves first
    assert scope.cancelled_caught
    assert not reached
    assert transport.returncode == -signal.SIGTERM
