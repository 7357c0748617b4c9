"""trioproc.pipeline(): stages joined by kernel pipes (SPEC section 9)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess

import pytest
import trio

import trioproc

from .helpers import CAT, EXIT, alive, children, open_fds, python

#: Reads all of stdin, then exits with the code in argv[1].
DRAIN_THEN_EXIT = python(
    "import os, sys\nsys.stdin.buffer.read()\nos._exit(int(sys.argv[1]))"
)


def pipe_inode(pid: int, fd: int) -> str:
    return os.readlink(f"/proc/{pid}/fd/{fd}")


def my_fd_targets() -> set[str]:
    targets = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own fd, closed
            targets.add(os.readlink(f"/proc/self/fd/{fd}"))
    return targets


async def read_all(stream: trio.abc.ReceiveStream) -> bytes:
    chunks = []
    while chunk := await stream.receive_some():
        chunks.append(chunk)
    return b"".join(chunks)


async def test_a_pipeline_gives_what_the_shell_gives() -> None:
    """find | grep -v | sort, read line by line from the last stage, is what
    the same pipeline in the shell prints; every stage exits 0."""
    here = os.path.dirname(__file__)
    stages = [["find", here, "-name", "*.py"], ["grep", "-v", "/test_"], ["sort"]]
    shell = (
        await trio.run_process(
            ["sh", "-c", f"find {here} -name '*.py' | grep -v /test_ | sort"],
            capture_stdout=True,
        )
    ).stdout
    async with trioproc.pipeline(stages) as p:
        assert p.stdout is not None
        lines = [line async for line in p.stdout.lines()]
        assert await p.wait() == 0
    assert b"".join(lines) == shell
    assert p.returncodes == [0, 0, 0]
    assert p.returncode == 0
    assert p.args == stages


async def test_stages_are_joined_by_kernel_pipes_the_parent_does_not_hold() -> None:
    """Each stage's stdout is the next one's stdin, one kernel pipe, and the
    parent holds no end of it (an end kept open by the parent means the
    reader never sees end of file: the leak users hit first)."""
    before = open_fds()
    async with trioproc.pipeline([CAT, CAT, CAT]) as p:
        pids = [t.pid for t in p.transports]
        assert None not in pids
        first, middle, last = (pid for pid in pids if pid is not None)
        joints = [pipe_inode(first, 1), pipe_inode(middle, 1)]
        assert joints[0] == pipe_inode(middle, 0)
        assert joints[1] == pipe_inode(last, 0)
        assert all(joint.startswith("pipe:") for joint in joints)
        assert not set(joints) & my_fd_targets()
        # The parent's own fds: the two stream ends, the stages' pidfds and
        # the epoll set of the run's exit watcher, which waits on them all.
        assert len(open_fds() - before) <= 2 + 3 + 1
        assert p.stdin is not None
        await p.stdin.aclose()
    assert open_fds() == before


@pytest.mark.deadline(30)
async def test_data_streams_through_both_ends_without_deadlock() -> None:
    """Write 8 MB into the first stage while reading the last: it all comes
    through, in order, while the pipes between are full at times."""
    payload = os.urandom(1 << 20) * 8
    async with trioproc.pipeline([CAT, ["cat"], CAT]) as p:
        assert p.stdin is not None
        assert p.stdout is not None
        stdin, stdout = p.stdin, p.stdout

        async def feed() -> None:
            await stdin.send_all(payload)
            await stdin.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed)
            got = await read_all(stdout)
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    assert p.returncodes == [0, 0, 0]


async def test_leaving_normally_closes_stdin_and_waits_for_every_stage() -> None:
    """A block that never touches stdin still ends: leaving closes it, the
    end of file travels down the pipeline, and each stage's status is known."""
    async with trioproc.pipeline([CAT, [*DRAIN_THEN_EXIT, "4"], CAT]) as p:
        assert p.returncode is None
    assert p.returncodes == [0, 4, 0]
    assert p.returncode == 4


async def test_returncode_is_the_rightmost_failure_as_with_pipefail() -> None:
    """returncode is what ``set -o pipefail`` reports: the rightmost stage
    that failed, signals as -signum; check=True raises CalledProcessError
    for that stage."""
    stages = [EXIT(2), [*DRAIN_THEN_EXIT, "5"], CAT]
    async with trioproc.pipeline(stages) as p:
        assert await p.wait() == 5
    assert p.returncodes == [2, 5, 0]
    with pytest.raises(subprocess.CalledProcessError) as info:
        async with trioproc.pipeline(stages, check=True):
            pass
    assert info.value.returncode == 5
    assert info.value.cmd == stages[1]
    async with trioproc.pipeline([CAT, CAT], check=True) as p:
        pass
    assert p.returncode == 0


async def test_a_cancelled_pipeline_stops_every_stage() -> None:
    """Cancelling the block stops all stages at once (SIGTERM) and reaps
    them before the block is left."""
    with trio.CancelScope() as scope:
        async with trioproc.pipeline([CAT, CAT, CAT]) as p:
            pids = [t.pid for t in p.transports]
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert p.returncodes == [-15, -15, -15]
    assert not any(alive(pid) for pid in pids if pid is not None)


async def test_an_error_in_the_body_stops_every_stage_and_leaves_as_itself() -> None:
    """The body's exception leaves the block as itself (no group), after
    every stage was stopped."""
    with pytest.raises(KeyError, match="body"):
        async with trioproc.pipeline([CAT, CAT]) as p:
            raise KeyError("body")
    assert p.returncodes == [-15, -15]


async def test_a_stage_that_cannot_start_raises_and_leaks_nothing() -> None:
    """A missing program raises FileNotFoundError from entering; the stages
    started before it are stopped and reaped, and no fd stays open."""
    fds, kids = open_fds(), children()
    p = trioproc.pipeline([CAT, CAT, ["/no/such/program"], CAT])
    with pytest.raises(FileNotFoundError):
        async with p:
            raise AssertionError("not reached")  # pragma: no cover
    assert open_fds() == fds
    assert children() == kids
    assert p.returncodes == [-15, -15]  # the two that started, stopped


async def test_stderr_goes_to_the_parents_stderr_by_default(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """As in the shell, each stage writes its stderr to the parent's fd 2."""
    noisy = python("import sys; sys.stderr.write('stage says hi\\n')")
    async with trioproc.pipeline([noisy, CAT]):
        pass
    assert "stage says hi" in capfd.readouterr().err


async def test_stderr_can_be_streams_merged_or_discarded(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """stderr=PIPE: a stream per stage; STDOUT: into the next stage, as
    ``2>&1 |``; DEVNULL: gone; an fd: there."""
    noisy = python("import sys; sys.stderr.write('err\\n'); print('out')")
    # The second stage reads its input first: a stage that exits unread
    # would make the first one's print fail with a broken pipe.
    reads_then_noisy = python(
        "import sys; sys.stdin.buffer.read(); sys.stderr.write('err\\n'); print('out')"
    )
    async with trioproc.pipeline(
        [noisy, reads_then_noisy], stderr=subprocess.PIPE
    ) as p:
        errs = [await read_all(t.stderr) for t in p.transports if t.stderr]
        assert p.stdout is not None
        assert await read_all(p.stdout) == b"out\n"
    assert errs == [b"err\n", b"err\n"]
    async with trioproc.pipeline([noisy, CAT], stderr=subprocess.STDOUT) as p:
        assert p.stdout is not None
        assert sorted((await read_all(p.stdout)).split()) == [b"err", b"out"]
    async with trioproc.pipeline([noisy, CAT], stderr=subprocess.DEVNULL) as p:
        assert p.stdout is not None
        assert await read_all(p.stdout) == b"out\n"
    assert "err" not in capfd.readouterr().err
    read_end, write_end = os.pipe()
    try:
        async with trioproc.pipeline([noisy, CAT], stderr=write_end) as p:
            os.close(write_end)
            write_end = -1
            assert p.stdout is not None
            assert await read_all(p.stdout) == b"out\n"
        assert os.read(read_end, 100) == b"err\n"
    finally:
        os.close(read_end)
        if write_end != -1:
            os.close(write_end)


async def test_a_single_stage_is_a_plain_child() -> None:
    """One stage: its stdin and stdout are both the ends."""
    async with trioproc.pipeline([CAT]) as p:
        assert p.stdin is not None
        assert p.stdout is not None
        await p.stdin.send_all(b"alone")
        await p.stdin.aclose()
        assert await read_all(p.stdout) == b"alone"
    assert p.returncodes == [0]


async def test_bad_arguments_fail_at_the_call() -> None:
    """Bad stages or stderr fail when pipeline() is called, not on entering;
    a pipeline has no public constructor and is entered once."""
    with pytest.raises(TypeError, match="list of argvs"):
        trioproc.pipeline("ls | wc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one stage"):
        trioproc.pipeline([])
    with pytest.raises(TypeError, match=r"did you mean \['ls'\]"):
        trioproc.pipeline(["ls"])
    with pytest.raises(TypeError, match="argv"):
        trioproc.pipeline([["ls", 3]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="kill_after"):
        trioproc.pipeline([["ls"]], kill_after=-1)
    for bad in (-7, True, "PIPE"):
        with pytest.raises(ValueError, match="stderr"):
            trioproc.pipeline([["ls"]], stderr=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no public constructor"):
        trioproc.Pipeline()
    p = trioproc.pipeline([EXIT(0)])
    assert p.stdin is None
    assert p.stdout is None
    assert p.returncode is None
    async with p:
        pass
    with pytest.raises(RuntimeError, match="already entered"):
        async with p:
            pass  # pragma: no cover
