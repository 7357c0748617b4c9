"""run() speaks subprocess.run's vocabulary: shell, text, timeout, redirects."""

from __future__ import annotations

import inspect
import io
import locale
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

import trioproc

from .helpers import CAT, PY, alive, kill_marked, marked, marked_alive, python

#: Writes "o0" to fd 1, "e0" to fd 2, "o1" to fd 1 ... each by one write(2).
INTERLEAVED = python(
    "import os\n"
    "for i in range(200):\n"
    "    os.write(1 + i % 2, b'%c%d;' % (111 if i % 2 == 0 else 101, i))\n"
)
INTERLEAVED_OUTPUT = b"".join(
    b"%c%d;" % (111 if i % 2 == 0 else 101, i) for i in range(200)
)


def fd_target(fd: int) -> list[str]:
    """A child that prints where its *fd* leads (the /proc link)."""
    return python(f"import os; print(os.readlink('/proc/self/fd/{fd}'))")


# -- shell=True ---------------------------------------------------------------


async def test_shell_runs_a_command_line_with_pipes_and_variables() -> None:
    """shell=True runs a str with /bin/sh -c: pipes, $0 and expansions work,
    and args is the command line as given."""
    command = "printf 'b\\na\\n' | sort; echo \"$0\" ${HOME:+home}"
    result = await trioproc.run(command, shell=True)
    assert result.args == command
    assert result.stdout == b"a\nb\n/bin/sh home\n"


async def test_shell_with_a_list_gives_the_shell_its_positional_args() -> None:
    """As subprocess on POSIX: [command, $0, $1 ...] with shell=True."""
    result = await trioproc.run(
        ['echo "$0|$1|$2"', "zero", "one", "two words"], shell=True
    )
    assert result.stdout == b"zero|one|two words\n"


async def test_shell_takes_bytes_and_executable_replaces_sh() -> None:
    """A bytes command line works; executable= replaces /bin/sh itself
    (subprocess's rule), so argv[0] of the shell is the executable."""
    assert (await trioproc.run(b"echo bytes", shell=True)).stdout == b"bytes\n"
    result = await trioproc.run(
        ["import sys; print(sys.argv)", "x"], shell=True, executable=PY
    )
    assert result.stdout == b"['-c', 'x']\n"


async def test_shell_errors_are_the_commands_own() -> None:
    """A failing command line raises CalledProcessError with the shell's
    status, and its stderr collected."""
    with pytest.raises(subprocess.CalledProcessError) as info:
        await trioproc.run("echo oops >&2; exit 3", shell=True)
    assert (info.value.returncode, info.value.stderr) == (3, b"oops\n")
    assert info.value.cmd == "echo oops >&2; exit 3"


async def test_shell_rejects_what_subprocess_rejects() -> None:
    """A path object and an empty list are no command line."""
    with pytest.raises(TypeError, match="path-like args is not allowed"):
        await trioproc.run(Path("/bin/true"), shell=True)
    with pytest.raises(ValueError, match="needs a command line"):
        await trioproc.run([], shell=True)


async def test_a_command_line_without_shell_suggests_shell_or_shlex() -> None:
    """run("ls -l") does not suggest ['ls -l'] (which would fail again) but
    shell=True or shlex.split; a single word still suggests a list."""
    with pytest.raises(TypeError) as info:
        await trioproc.run("ls -l")
    message = str(info.value)
    assert "shlex.split('ls -l') == ['ls', '-l']" in message
    assert "run('ls -l', shell=True)" in message
    assert "['ls -l']" not in message
    with pytest.raises(TypeError, match=r"did you mean \['ls'\]\?"):
        await trioproc.run("ls")
    with pytest.raises(TypeError, match=r"did you mean shlex.split\(\), or"):
        await trioproc.run("echo 'unbalanced")
    with pytest.raises(TypeError, match=r"shlex.split\('a b'\)"):
        trioproc.spawn(b"a b")


async def test_errors_for_runs_own_call_name_run() -> None:
    """A keyword neither run() nor spawn() has is reported as run()'s."""
    with pytest.raises(TypeError, match=r"^run\(\) got an unexpected keyword.*'bogus'"):
        await trioproc.run(["true"], bogus=1)
    with pytest.raises(TypeError, match="takes no protocol"):
        await trioproc.run(["true"], protocol=None)


# -- text mode ----------------------------------------------------------------


async def test_text_mode_decodes_output_translates_newlines_and_encodes_input() -> None:
    """text=True: str in, str out, with \\r\\n and \\r turned into \\n."""
    child = python(
        "import sys\n"
        "data = sys.stdin.buffer.read()\n"
        "sys.stdout.buffer.write(data.upper() + b'\\r\\nx\\ry\\r')\n"
        "sys.stderr.buffer.write(b'e\\r\\n')\n"
    )
    result = await trioproc.run(child, input="héllo", text=True, encoding="utf-8")
    assert (result.stdout, result.stderr) == ("HéLLO\nx\ny\n", "e\n")
    alias = await trioproc.run(["printf", "a\\r\\n"], universal_newlines=True)
    assert alias.stdout == "a\n"


async def test_a_non_utf8_encoding_and_errors_replace() -> None:
    """encoding= is used both ways; errors= decides what undecodable bytes
    become."""
    echo_hex = python(
        "import sys; print(sys.stdin.buffer.read().hex(), end='');"
        "sys.stderr.buffer.write(b'caf\\xe9 \\xff')"
    )
    latin = await trioproc.run(echo_hex, input="café", encoding="latin-1")
    assert latin.stdout == "636166e9"
    assert latin.stderr == "café ÿ"
    replaced = await trioproc.run(echo_hex, encoding="utf-8", errors="replace")
    assert replaced.stderr == "caf\ufffd \ufffd"
    with pytest.raises(UnicodeDecodeError):
        await trioproc.run(echo_hex, text=True, encoding="utf-8")
    only_errors = await trioproc.run(["printf", "\\377"], errors="ignore")
    assert only_errors.stdout == ""


async def test_text_mode_defaults_to_the_locale_encoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without encoding=, text mode uses locale.getpreferredencoding(False),
    as subprocess does."""
    asked: list[bool] = []

    def preferred(do_setlocale: bool = True) -> str:
        asked.append(do_setlocale)
        return "cp1252"

    monkeypatch.setattr(locale, "getpreferredencoding", preferred)
    result = await trioproc.run(["printf", "\\200"], text=True)
    assert result.stdout == "€"
    assert asked == [False]


async def test_text_mode_output_in_errors_is_str() -> None:
    """CalledProcessError carries the decoded output too."""
    with pytest.raises(subprocess.CalledProcessError) as info:
        await trioproc.run("echo out; echo err >&2; exit 1", shell=True, text=True)
    assert (info.value.stdout, info.value.stderr) == ("out\n", "err\n")


async def test_text_arguments_are_checked() -> None:
    """text and universal_newlines must agree; input's type follows the mode."""
    with pytest.raises(subprocess.SubprocessError, match="Cannot disambiguate"):
        await trioproc.run(["true"], text=True, universal_newlines=False)
    with pytest.raises(TypeError, match="input must be str in text mode"):
        await trioproc.run(CAT, input=b"x", text=True)
    with pytest.raises(TypeError, match="pass text=True"):
        await trioproc.run(CAT, input="x")
    with pytest.raises(TypeError, match="input must be bytes or None, not int"):
        await trioproc.run(CAT, input=1)  # type: ignore[call-overload]


# -- timeout ------------------------------------------------------------------


async def test_timeout_stops_the_child_and_raises_with_the_output_so_far() -> None:
    """On expiry the child (and its process group) is ended and
    TimeoutExpired carries the command, the timeout and what was written
    so far -- including what the child wrote while it was being stopped."""
    mark = "run-timeout"
    child = python(
        "import os, signal, subprocess, sys, time\n"
        "def bye(*_):\n"
        "    os.write(1, b'bye\\n')\n"
        "    os._exit(3)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "subprocess.Popen(['sleep', '60'])\n"
        "os.write(1, b'%d partial\\n' % os.getpid())\n"
        "os.write(2, b'err\\n')\n"
        "time.sleep(60)\n"
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired) as info:
            await trioproc.run(child, timeout=1, env=marked(mark))
        pid, _, rest = info.value.output.partition(b" ")
        assert rest == b"partial\nbye\n"
        assert info.value.stderr == b"err\n"
        assert (info.value.cmd, info.value.timeout) == (child, 1)
        assert not alive(int(pid))
        assert marked_alive(mark) == []  # the grandchild in its group too
    finally:
        kill_marked(mark)


async def test_timeout_output_is_str_in_text_mode_and_none_when_not_collected() -> None:
    """TimeoutExpired's output follows the result's types."""
    with pytest.raises(subprocess.TimeoutExpired) as info:
        await trioproc.run(
            "echo so far; exec sleep 60", shell=True, timeout=0.5, text=True
        )
    assert (info.value.output, info.value.stderr) == ("so far\n", "")
    with pytest.raises(subprocess.TimeoutExpired) as info:
        await trioproc.run(
            "exec sleep 60", shell=True, timeout=0, stdout=subprocess.DEVNULL
        )
    assert info.value.output is None


async def test_a_timeout_that_does_not_expire_changes_nothing() -> None:
    """A child done in time returns as usual."""
    result = await trioproc.run(["echo", "quick"], timeout=20)
    assert result.stdout == b"quick\n"


async def test_a_bad_timeout_raises_at_the_call() -> None:
    """timeout is a number of seconds or None."""
    with pytest.raises(TypeError, match="timeout must be a number"):
        await trioproc.run(["true"], timeout="1")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="not NaN"):
        await trioproc.run(["true"], timeout=float("nan"))


# -- stdin=, stdout=, stderr= ---------------------------------------------------


async def test_stderr_stdout_merges_in_the_order_written() -> None:
    """stderr=subprocess.STDOUT: fd 2 is fd 1's pipe, so interleaved writes
    arrive in order; the result's stderr is None."""
    result = await trioproc.run(INTERLEAVED, stderr=subprocess.STDOUT)
    assert result.stdout == INTERLEAVED_OUTPUT
    assert result.stderr is None


async def test_stderr_stdout_follows_stdout_to_a_file_and_to_devnull(
    tmp_path: Path,
) -> None:
    """Merged into stdout wherever stdout goes: a file, or /dev/null."""
    async with await trio.open_file(tmp_path / "both", "wb") as file:
        result = await trioproc.run(INTERLEAVED, stdout=file, stderr=subprocess.STDOUT)
    assert (result.stdout, result.stderr) == (None, None)
    assert (tmp_path / "both").read_bytes() == INTERLEAVED_OUTPUT
    nowhere = await trioproc.run(
        python(
            "import os, sys\nsys.exit(os.readlink('/proc/self/fd/2') != '/dev/null')\n"
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    assert (nowhere.returncode, nowhere.stdout, nowhere.stderr) == (0, None, None)


async def test_devnull_for_each_fd() -> None:
    """DEVNULL: the child's fd is /dev/null and nothing is collected for it."""
    result = await trioproc.run(
        python(
            "import os, sys\n"
            "print(os.readlink('/proc/self/fd/1'), file=sys.stderr)\n"
            "print(repr(sys.stdin.read()), file=sys.stderr)\n"
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    assert (result.stdout, result.stderr) == (None, b"/dev/null\n''\n")
    quiet = await trioproc.run(fd_target(2), stderr=subprocess.DEVNULL)
    assert (quiet.stdout, quiet.stderr) == (b"/dev/null\n", None)


async def test_a_file_object_and_an_fd_are_handed_to_the_child(
    tmp_path: Path,
) -> None:
    """A file object (anything with fileno()) or an int fd becomes the
    child's fd; the caller keeps and closes it."""
    (tmp_path / "in").write_bytes(b"from a file\n")
    async with (
        await trio.open_file(tmp_path / "in", "rb") as source,
        await trio.open_file(tmp_path / "out", "wb") as sink,
    ):
        result = await trioproc.run(CAT, stdin=source, stdout=sink)
        assert not source.closed
        assert not sink.closed
    assert result.stdout is None
    assert (tmp_path / "out").read_bytes() == b"from a file\n"
    fd = os.open(tmp_path / "err", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        result = await trioproc.run("echo out; echo err >&2", shell=True, stderr=fd)
    finally:
        os.close(fd)
    assert (result.stdout, result.stderr) == (b"out\n", None)
    assert (tmp_path / "err").read_bytes() == b"err\n"


async def test_none_is_the_parents_own_fd(capfd: pytest.CaptureFixture[str]) -> None:
    """stdout=None: the child writes to the parent's fd 1, while stderr,
    not given, is still collected by default."""
    result = await trioproc.run("echo mine; echo theirs >&2", shell=True, stdout=None)
    assert (result.stdout, result.stderr) == (None, b"theirs\n")
    assert capfd.readouterr().out == "mine\n"


@pytest.fixture
def parent_stdin() -> Iterator[int]:
    """Our fd 0 replaced by a pipe for the test; yields its write end."""
    saved = os.dup(0)
    read_end, write_end = os.pipe()
    os.dup2(read_end, 0)
    os.close(read_end)
    try:
        yield write_end
    finally:
        os.dup2(saved, 0)
        os.close(saved)


async def test_stdin_none_is_the_parents_stdin(parent_stdin: int) -> None:
    """stdin=None: the child reads the parent's own fd 0 (here a pipe put in
    its place), not /dev/null as by default."""
    os.write(parent_stdin, b"typed at the parent\n")
    os.close(parent_stdin)
    assert (await trioproc.run(CAT, stdin=None)).stdout == b"typed at the parent\n"
    assert (await trioproc.run(CAT)).stdout == b""


async def test_input_with_stdin_none_or_pipe() -> None:
    """input= makes stdin a pipe; stdin=None beside it is allowed, as in
    subprocess, and stdin=PIPE without input is at end of file at once."""
    assert (await trioproc.run(CAT, input=b"in", stdin=None)).stdout == b"in"
    assert (await trioproc.run(CAT, stdin=subprocess.PIPE)).stdout == b""


async def test_capture_output_false_with_one_pipe(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """capture_output=False leaves the fds not given to the parent; a PIPE
    still collects."""
    result = await trioproc.run(
        "echo shown; echo kept >&2",
        shell=True,
        capture_output=False,
        stderr=subprocess.PIPE,
    )
    assert (result.stdout, result.stderr) == (None, b"kept\n")
    assert capfd.readouterr().out == "shown\n"
    explicit = await trioproc.run(["echo", "x"], capture_output=True, stdout=None)
    assert explicit.stdout == b"x\n"


@pytest.mark.linux_backend("gives a child pipes on fds 0, 1 and 2 only")
async def test_redirects_with_child_fds_and_text() -> None:
    """stdout= works beside child_fds for other fds, and with text mode."""
    result = await trioproc.run(
        "echo three >&3; echo one; echo two >&2",
        shell=True,
        child_fds={3: "r"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert (result.stdout, result.stderr) == ("one\ntwo\n", None)


class BadFileno:
    """A file object whose fileno() is no fd."""

    def fileno(self) -> int:
        return -1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"capture_output": True, "stdout": subprocess.PIPE},
            ValueError,
            "may not be used with capture_output",
        ),
        (
            {"capture_output": True, "stderr": subprocess.DEVNULL},
            ValueError,
            "may not be used with capture_output",
        ),
        (
            {"input": b"x", "stdin": subprocess.DEVNULL},
            ValueError,
            "stdin and input arguments may not both be used",
        ),
        ({"stdout": subprocess.STDOUT}, ValueError, "only stderr can be merged"),
        ({"stdin": subprocess.STDOUT}, ValueError, "only stderr can be merged"),
        ({"stdout": -7}, ValueError, "not an fd nor a subprocess constant"),
        ({"stdout": 987_654}, ValueError, "fd 987654 is not open in the parent"),
        ({"stdout": True}, TypeError, "stdout must be subprocess.PIPE"),
        ({"stderr": "file.txt"}, TypeError, "not str"),
        ({"stdout": io.BytesIO()}, ValueError, "BytesIO has no fd"),
        ({"stdin": BadFileno()}, ValueError, r"BadFileno.fileno\(\) gave -1"),
        ({"capture_output": 1}, TypeError, "capture_output must be True"),
        (
            {"child_fds": {1: "r"}, "stdout": subprocess.PIPE},
            ValueError,
            r"stdout= and child_fds\[1\] both",
        ),
        ({"pty": True, "stdout": None}, ValueError, "cannot be combined with pty"),
    ],
)
async def test_bad_redirects_raise_at_the_call(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Each redirect mistake raises before any child starts, naming it."""
    with pytest.raises(error, match=match):
        await trioproc.run(CAT, **kwargs)


def test_the_redirect_defaults_read_as_not_given() -> None:
    """help(run) shows stdin=NOT_GIVEN: None already means the parent's fd."""
    parameters = inspect.signature(trioproc.run).parameters
    assert repr(parameters["stdout"].default) == "NOT_GIVEN"
    assert parameters["stdout"].default is not None
    with pytest.raises(TypeError, match=r"did you mean \[PosixPath\('ls'\)\]\?"):
        trioproc.spawn(Path("ls"))
