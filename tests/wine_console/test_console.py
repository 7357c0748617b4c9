"""The ``trioproc`` command on a Windows console: Ctrl-C and colours.

A headless Windows program under Wine has no console, so these tests run
from Linux: each starts the Windows CPython (``winpy-console``, which
tools/wine/setup.sh writes beside ``winpy``) on a pseudo-terminal, where
Wine gives it a console of its own. Typing Ctrl-C there is what a user
does in a Windows terminal; the console turns it into ``CTRL_C_EVENT``.
``make test-windows`` runs them once Wine is set up
(``TRIOPROC_WINPY_CONSOLE`` names the wrapper).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest
import trio

import trioproc

WINPY = os.environ.get("TRIOPROC_WINPY_CONSOLE", "")
REPOSITORY = Path(__file__).resolve().parent.parent.parent

#: The trioproc command, then the console's output mode on the last line
#: (``ENABLE_VIRTUAL_TERMINAL_PROCESSING`` is 4; no spaces, which Wine's
#: console may draw as cursor moves).
COMMAND = (
    "import tests.windows._wine_shim as s; s.install()\n"
    "import ctypes, msvcrt\n"
    "from ctypes import wintypes\n"
    "from trioproc._cli._main import main\n"
    "code = main()\n"
    "mode = wintypes.DWORD()\n"
    "kernel32 = ctypes.WinDLL('kernel32')\n"
    "kernel32.GetConsoleMode(msvcrt.get_osfhandle(1), ctypes.byref(mode))\n"
    "print(f'console-mode={mode.value}', flush=True)\n"
    "raise SystemExit(code)\n"
)


def _fleet(tmp_path: Path) -> str:
    """A Procfile with one worker that says it is up and sleeps; the
    worker's file name, unique to this test (its processes are found by it)."""
    worker = f"worker-{uuid.uuid4().hex[:8]}.py"
    (tmp_path / worker).write_text(
        "import os, time\nprint('up', os.getpid(), flush=True)\ntime.sleep(120)\n"
    )
    (tmp_path / "Procfile").write_text(
        f"worker: C:\\python311\\python.exe -I -S {worker}\n"
    )
    return worker


def _running(name: str) -> list[int]:
    """The pids of this machine's processes whose command line names *name*
    (a Windows process under Wine is a Linux process too)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if name.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def _on_console(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, ctrl_c: bool
) -> tuple[int | None, str]:
    """Run ``trioproc ARGS`` on a console; with *ctrl_c*, type Ctrl-C once the
    worker is up. Its output (the terminal's bytes, decoded) and exit code."""
    environment = {
        **os.environ,
        "PYTHONPATH": "Z:" + str(REPOSITORY).replace("/", "\\"),
        **(env or {}),
    }
    async with trioproc.spawn(
        [WINPY, "-c", COMMAND, *args],
        pty=True,
        cwd=tmp_path,
        env=environment,
        kill_after=10,
    ) as child:
        if ctrl_c:
            await child.stdout.expect(rb" up \d+\r")  # the worker is up
            await child.stdin.send_all(b"\x03")
        output = bytearray()
        async for chunk in child.stdout:
            output += chunk
    return child.returncode, output.decode(errors="replace")


def _plain(terminal: str) -> str:
    """*terminal*'s text without its escape sequences or carriage returns."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal).replace("\r", "")


@pytest.mark.deadline(120)
async def test_ctrl_c_on_the_console_stops_the_fleet(tmp_path: Path) -> None:
    """Ctrl-C typed on a Windows console stops every process: the run says
    so, ends with 0, and no process of the fleet is left."""
    worker = _fleet(tmp_path)
    with trio.fail_after(90):
        code, out = await _on_console(tmp_path, "run", "Procfile", ctrl_c=True)
    text = _plain(out)
    assert code == 0, text
    assert "SIGINT: stopping every process" in text
    assert "all processes stopped" in text
    assert _running(worker) == []


@pytest.mark.deadline(120)
async def test_colours_on_the_console_and_none_with_no_color(tmp_path: Path) -> None:
    """On a Windows console the prefixes are coloured and the console is set
    to interpret colour sequences; NO_COLOR turns the colours off. Nothing
    is said about cgroups (a Job Object holds each tree)."""
    _fleet(tmp_path)
    with trio.fail_after(90):
        code, out = await _on_console(
            tmp_path, "run", "Procfile", "--for", "3", ctrl_c=False
        )
        assert code == 0, _plain(out)
        plain_code, plain_out = await _on_console(
            tmp_path,
            "run",
            "Procfile",
            "--for",
            "3",
            env={"NO_COLOR": "1"},
            ctrl_c=False,
        )
    assert plain_code == 0, _plain(plain_out)
    assert re.search(r"\x1b\[36mworker +\|", out), out
    [mode] = re.findall(r"console-mode=(\d+)", _plain(out))
    assert int(mode) & 4  # ENABLE_VIRTUAL_TERMINAL_PROCESSING
    assert "\x1b[36m" not in plain_out
    assert re.search(r"worker +\| up \d+", _plain(plain_out))
    assert "no cgroups here" not in _plain(out)
