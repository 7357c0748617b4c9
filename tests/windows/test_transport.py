"""The process transport on Windows (SPEC section 3, with the win32 semantics)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio

import trioproc
from trioproc.testing import RecordingProtocol

from ._children import (
    CAT,
    EXIT,
    PY,
    SLEEP,
    STARTS_GRANDCHILD,
    alive,
    python,
    wait_gone,
)
from ._wine_shim import running_under_wine


async def test_callbacks_come_in_the_contracts_order() -> None:
    protocol = RecordingProtocol()
    child = python(
        "import os, sys\n"
        "data = sys.stdin.buffer.read()\n"
        "sys.stdout.buffer.write(data.upper()); sys.stdout.flush()\n"
        "sys.stderr.write('warning'); sys.stderr.flush()\n"
    )
    with trio.fail_after(30):
        async with trioproc.spawn(child, protocol) as transport:
            assert transport.pid == protocol.pids_at["makeConnection"]
            assert "backend=portable" in repr(transport)
            transport.write(b"hello ")
            transport.writeSequence([b"wor", b"ld"])
            transport.closeStdin()
    assert protocol.out(1) == b"HELLO WORLD"
    assert protocol.out(2) == b"warning"
    kinds = protocol.kinds()
    assert kinds[0] == "connectionMade"
    assert kinds.count("exited") == kinds.count("ended") == 1
    assert kinds.index("exited") < kinds.index("ended") == len(kinds) - 1
    assert sorted(e for e in protocol.events if e[0] == "lost") == [
        ("lost", 0),
        ("lost", 1),
        ("lost", 2),
    ]
    assert protocol.events[-1] == ("ended", "ProcessDone", 0, None)
    assert transport.pid is None


@pytest.mark.parametrize("code", [0, 3, 255])
async def test_exit_codes_reach_the_reason(code: int) -> None:
    protocol = RecordingProtocol()
    with trio.fail_after(30):
        async with trioproc.spawn(EXIT(code), protocol) as transport:
            assert await transport.wait() == code
    kind = "ProcessDone" if code == 0 else "ProcessTerminated"
    assert protocol.events[-1] == ("ended", kind, code, None)


@pytest.mark.parametrize("signal_id", ["KILL", "TERM", 9, 15])
async def test_kill_and_term_end_the_child_in_process_terminated(
    signal_id: str | int,
) -> None:
    protocol = RecordingProtocol()
    with trio.fail_after(30):
        async with trioproc.spawn(SLEEP(60), protocol) as transport:
            transport.signalProcess(signal_id)
            assert await transport.wait() == 1
            with pytest.raises(trioproc.ProcessExitedAlready):
                transport.signalProcess("KILL")
    assert protocol.events[-1] == ("ended", "ProcessTerminated", 1, None)


async def test_signals_without_a_windows_counterpart_are_refused() -> None:
    with trio.fail_after(30):
        async with trioproc.spawn(SLEEP(60)) as transport:
            for bad in ("HUP", "STOP", 1, 19):
                with pytest.raises(ValueError, match="no counterpart on Windows"):
                    transport.signalProcess(bad)
            with pytest.raises(TypeError):
                transport.signalProcess(2.0)  # type: ignore[arg-type]
            transport.signalProcess("KILL")


async def test_write_to_child_takes_fd_0_only() -> None:
    protocol = RecordingProtocol()
    with trio.fail_after(30):
        async with trioproc.spawn(CAT, protocol) as transport:
            for fd in (1, 2, 3):
                with pytest.raises(KeyError):
                    transport.writeToChild(fd, b"x")
            transport.writeToChild(0, b"ping")
            transport.closeChildFD(0)
    assert protocol.out(1) == b"ping"


async def test_lose_connection_closes_every_fd_and_the_child_sees_eof() -> None:
    protocol = RecordingProtocol()
    reads_to_eof = python("import sys; sys.stdin.buffer.read()")
    with trio.fail_after(30):
        async with trioproc.spawn(reads_to_eof, protocol) as transport:
            transport.write(b"before")
            transport.loseConnection()
            assert await transport.wait() == 0
    assert sorted(e for e in protocol.events if e[0] == "lost") == [
        ("lost", 0),
        ("lost", 1),
        ("lost", 2),
    ]
    assert protocol.events[-1] == ("ended", "ProcessDone", 0, None)


async def test_pause_producing_holds_output_until_resumed() -> None:
    protocol = RecordingProtocol()
    with trio.fail_after(30):
        async with trioproc.spawn(CAT, protocol) as transport:
            transport.pauseProducing()
            transport.write(b"held")
            await trio.sleep(0.5)
            assert protocol.out(1) == b""
            transport.resumeProducing()
            transport.closeStdin()
    assert protocol.out(1) == b"held"


async def test_a_pull_producer_is_asked_until_it_unregisters() -> None:
    chunks = [b"a" * 1000, b"b" * 1000, b"c"]

    class Pull:
        def __init__(self, transport: trioproc.ProcessTransport) -> None:
            self.transport = transport

        def resumeProducing(self) -> None:
            if chunks:
                self.transport.write(chunks.pop(0))
            else:
                self.transport.unregisterProducer()
                self.transport.closeStdin()

        def pauseProducing(self) -> None:
            pass

        def stopProducing(self) -> None:
            pass

    protocol = RecordingProtocol()
    with trio.fail_after(30):
        async with trioproc.spawn(CAT, protocol) as transport:
            transport.registerProducer(Pull(transport), False)
            assert await transport.wait() == 0
    assert protocol.out(1) == b"a" * 1000 + b"b" * 1000 + b"c"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"child_fds": {0: "w", 1: "r", 2: "r", 3: "r"}}, "child_fds"),
        ({"uid": 0}, "uid"),
        ({"gid": 0}, "gid"),
        ({"new_session": True}, "new_session"),
        ({"pty": True}, "pty"),
        ({"cgroup": True}, "cgroup"),
    ],
)
async def test_options_windows_cannot_honour_are_refused_at_the_call(
    options: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError, match=named) as caught:
        trioproc.spawn(SLEEP(1), **options)  # type: ignore[call-overload]
    assert "Windows" in str(caught.value)


async def test_a_missing_program_raises_file_not_found_from_entering() -> None:
    block = trioproc.spawn([r"C:\no\such\program.exe"])
    with trio.fail_after(30), pytest.raises(FileNotFoundError):
        async with block:
            pass  # pragma: no cover - never entered


async def test_env_cwd_and_executable_work(tmp_path: Path) -> None:
    code = (
        "import json, os, sys\n"
        "print(json.dumps([os.environ.get('TRIOPROC_X'), os.getcwd(), sys.argv[0],"
        " 'PATH' in os.environ]))"
    )
    env = {"TRIOPROC_X": "a b", "SYSTEMROOT": os.environ["SYSTEMROOT"]}
    with trio.fail_after(30):
        done = await trioproc.run(
            ["not-python", "-I", "-S", "-c", code],
            executable=PY,
            env=env,
            cwd=tmp_path,
            capture_output=True,
        )
    value, cwd, argv0, has_path = json.loads(done.stdout)
    assert value == "a b"
    assert os.path.normcase(cwd) == os.path.normcase(str(tmp_path))
    assert argv0 == "-c"  # python's own; the program itself came from executable=
    assert has_path is False  # env= replaces the environment


async def test_argv_is_joined_by_the_standard_rules() -> None:
    args = ["plain", "with space", 'with "quote"', "back\\slash\\", ""]
    with trio.fail_after(30):
        done = await trioproc.run(
            python("import sys, json; print(json.dumps(sys.argv[1:]))") + args,
            capture_output=True,
        )
    assert json.loads(done.stdout) == args


async def test_a_grandchild_is_gone_once_a_cancelled_block_returns() -> None:
    with trio.fail_after(30):
        with trio.move_on_after(5) as scope:
            async with trioproc.spawn(STARTS_GRANDCHILD, kill_after=0.5) as child:
                assert child.stdout is not None
                grandchild = int(await child.stdout.receive_some())
                assert alive(grandchild)
                scope.cancel()
                await trio.sleep(60)
    assert scope.cancelled_caught
    assert not alive(grandchild)


async def test_a_killed_parent_takes_its_childrens_trees_with_it() -> None:
    """KILL_ON_JOB_CLOSE: the OS closes the job when the process holding it
    dies, and the job's processes with it. The holder is started without
    trioproc, so that no job of ours holds its tree."""
    parent = (
        "import tests.windows._wine_shim as shim, trio, trioproc\n"
        "shim.install()\n"
        "async def main():\n"
        f"    async with trioproc.spawn({STARTS_GRANDCHILD!r}) as child:\n"
        "        grandchild = int(await child.stdout.receive_some())\n"
        "        print(grandchild, child.pid, flush=True)\n"
        "        await trio.sleep(60)\n"
        "trio.run(main)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with trio.fail_after(60):
        holder = await trio.lowlevel.open_process(
            [PY, "-c", parent], env=env, stdout=subprocess.PIPE
        )
        try:
            assert holder.stdout is not None
            line = b""
            while b"\n" not in line:
                line += await holder.stdout.receive_some()
            grandchild, child = (int(word) for word in line.split())
            assert alive(grandchild)
            assert alive(child)
        finally:
            holder.kill()  # TerminateProcess: no clean-up code of trioproc runs
            await holder.wait()
            await holder.stdout.aclose()
        await wait_gone(grandchild, child)


async def test_thirty_concurrent_children_leave_nothing_behind() -> None:
    pids: list[int] = []
    codes: list[int] = []

    async def one(n: int) -> None:
        async with trioproc.spawn(
            python(f"import os; print({n}, flush=True); os._exit({n % 4})")
        ) as child:
            assert child.pid is not None
            pids.append(child.pid)
            assert child.stdout is not None
            out = b""
            while chunk := await child.stdout.receive_some():
                out += chunk
            assert out.strip() == str(n).encode()
            codes.append(await child.wait())

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for n in range(30):
                nursery.start_soon(one, n)
    assert sorted(codes) == sorted(n % 4 for n in range(30))
    assert not any(alive(pid) for pid in pids)


@pytest.mark.skipif(
    running_under_wine(),
    reason="Wine does not deliver CTRL_BREAK_EVENT (its console only propagates "
    "CTRL_C_EVENT)",
)
async def test_int_sends_ctrl_break_to_the_childs_group() -> None:  # pragma: no cover
    handler = python(
        "import signal, sys, time\n"
        "signal.signal(signal.SIGBREAK, lambda *a: sys.exit(42))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    with trio.fail_after(30):
        async with trioproc.spawn(handler) as child:
            assert child.stdout is not None
            await child.stdout.receive_some()
            child.signalProcess("INT")
            assert await child.wait() == 42
