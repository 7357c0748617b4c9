"""`run`: start a child, feed it, collect its output, wait for it."""

from __future__ import annotations

import contextlib
import inspect
import locale
import math
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal, overload

import trio

from ._arguments import shell_argv
from ._options import NOT_GIVEN, NotGiven, Redirect, StrOrBytesPath
from ._protocol import ProcessProtocol
from ._spawn import spawn

__all__ = ["run"]

#: The shell that runs ``shell=True`` commands, as in `subprocess`.
_POSIX_SHELL: Final = "/bin/sh"
#: spawn()'s keyword arguments that run() hands on as they are.
_SPAWN_KEYWORDS: Final = frozenset(
    name
    for name, parameter in inspect.signature(spawn).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
) - {"stdin", "stdout", "stderr"}


class _Collector(ProcessProtocol):
    """Keeps every chunk each fd delivers, in order."""

    def __init__(self) -> None:
        self.chunks: dict[int, list[bytes]] = {}

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self.chunks.setdefault(childFD, []).append(data)


@overload
async def run(
    argv: StrOrBytesPath | Iterable[StrOrBytesPath],
    *,
    input: str | None = None,
    capture_output: bool | None = None,
    check: bool = True,
    shell: bool = False,
    text: Literal[True],
    universal_newlines: bool | None = None,
    encoding: str | None = None,
    errors: str | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - subprocess.run's name
    stdin: Redirect | NotGiven = NOT_GIVEN,
    stdout: Redirect | NotGiven = NOT_GIVEN,
    stderr: Redirect | NotGiven = NOT_GIVEN,
    **spawn_kwargs: Any,
) -> subprocess.CompletedProcess[str]: ...


@overload
async def run(
    argv: StrOrBytesPath | Iterable[StrOrBytesPath],
    *,
    input: str | None = None,
    capture_output: bool | None = None,
    check: bool = True,
    shell: bool = False,
    text: bool | None = None,
    universal_newlines: bool | None = None,
    encoding: str,
    errors: str | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - subprocess.run's name
    stdin: Redirect | NotGiven = NOT_GIVEN,
    stdout: Redirect | NotGiven = NOT_GIVEN,
    stderr: Redirect | NotGiven = NOT_GIVEN,
    **spawn_kwargs: Any,
) -> subprocess.CompletedProcess[str]: ...


@overload
async def run(
    argv: StrOrBytesPath | Iterable[StrOrBytesPath],
    *,
    input: bytes | bytearray | memoryview | None = None,
    capture_output: bool | None = None,
    check: bool = True,
    shell: bool = False,
    text: Literal[False] | None = None,
    universal_newlines: Literal[False] | None = None,
    encoding: None = None,
    errors: None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - subprocess.run's name
    stdin: Redirect | NotGiven = NOT_GIVEN,
    stdout: Redirect | NotGiven = NOT_GIVEN,
    stderr: Redirect | NotGiven = NOT_GIVEN,
    **spawn_kwargs: Any,
) -> subprocess.CompletedProcess[bytes]: ...


@overload
async def run(
    argv: StrOrBytesPath | Iterable[StrOrBytesPath],
    *,
    input: str | bytes | bytearray | memoryview | None = None,
    capture_output: bool | None = None,
    check: bool = True,
    shell: bool = False,
    text: bool | None = None,
    universal_newlines: bool | None = None,
    encoding: str | None = None,
    errors: str | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - subprocess.run's name
    stdin: Redirect | NotGiven = NOT_GIVEN,
    stdout: Redirect | NotGiven = NOT_GIVEN,
    stderr: Redirect | NotGiven = NOT_GIVEN,
    **spawn_kwargs: Any,
) -> subprocess.CompletedProcess[Any]: ...


async def run(
    argv: StrOrBytesPath | Iterable[StrOrBytesPath],
    *,
    input: str | bytes | bytearray | memoryview | None = None,
    capture_output: bool | None = None,
    check: bool = True,
    shell: bool = False,
    text: bool | None = None,
    universal_newlines: bool | None = None,
    encoding: str | None = None,
    errors: str | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - subprocess.run's name
    stdin: Redirect | NotGiven = NOT_GIVEN,
    stdout: Redirect | NotGiven = NOT_GIVEN,
    stderr: Redirect | NotGiven = NOT_GIVEN,
    **spawn_kwargs: Any,
) -> subprocess.CompletedProcess[Any]:
    """Run a child to completion and return what it wrote and how it ended.

    The arguments that `subprocess.run` also has mean what they mean there;
    the differences are trioproc's defaults: output is captured, the child's
    stdin is ``/dev/null`` rather than the parent's, *check* is on, and on a
    timeout the child is stopped gracefully (SIGTERM, then SIGKILL after
    *kill_after*) together with its process group.

    Args:
      argv: as for `spawn`; with *shell*, the command line.
      input: written to the child's stdin, which is then closed: bytes, or
        str in text mode. With ``None`` (and no *stdin*) the child's stdin is
        ``/dev/null``: at end of file, never the parent's terminal.
      capture_output: ``True`` collects the child's stdout and stderr (and
        then *stdout* and *stderr* must not be given, as in `subprocess`);
        ``False`` leaves those not given to the parent's own fds. By default
        (``None``) whichever of the two *stdout* / *stderr* do not redirect
        is collected.
      check: raise `subprocess.CalledProcessError` for a non-zero exit.
      shell: run *argv*, a str (or bytes), with ``/bin/sh -c``: pipes,
        redirections, ``$VAR``... work. As in `subprocess`, a sequence is
        ``[command, $0, $1, ...]`` for the shell, and *executable* replaces
        ``/bin/sh``. Quote untrusted values with `shlex.quote`.
      text, universal_newlines: text mode (also set by *encoding* or
        *errors*): *input* is a str, and the result's ``stdout`` and
        ``stderr`` are str, decoded and with ``\\r\\n`` and ``\\r`` turned into
        ``\\n``. *universal_newlines* is `subprocess`'s old name for *text*.
      encoding, errors: for text mode; the encoding defaults to the
        locale's (``locale.getpreferredencoding(False)``, UTF-8 in UTF-8
        mode), *errors* to ``"strict"``.
      timeout: seconds the child may take. On expiry it is stopped, its
        remaining output read, and `subprocess.TimeoutExpired` is raised.
      stdin, stdout, stderr: as for `spawn`: ``subprocess.PIPE``,
        ``subprocess.DEVNULL``, ``subprocess.STDOUT`` (*stderr* only: merged
        into stdout in the order written), a file object or an fd, or
        ``None`` (the parent's). A collected fd is a ``PIPE``. *stdin* and
        *input* cannot both be given.
      **spawn_kwargs: any keyword argument of `spawn` but *protocol*. With
        *child_fds*, every ``"r"`` fd is collected, and ``stdout`` / ``stderr``
        of the result are those of fds 1 and 2 when they are ``"r"``.

    Returns:
      A `subprocess.CompletedProcess` with ``args`` (*argv* as given),
      ``returncode`` (``-signum`` after a signal), ``stdout`` and ``stderr``
      (bytes, str in text mode, or ``None`` when not collected; ``None`` for
      ``stderr=subprocess.STDOUT``).

    Raises:
      subprocess.TimeoutExpired: after *timeout* seconds; its ``output`` and
        ``stderr`` hold what the child wrote until it was gone (bytes or str,
        as the result would; ``None`` when not collected).
      subprocess.CalledProcessError: with *check*, for a non-zero exit.
      subprocess.SubprocessError: *text* and *universal_newlines* disagree.
      TypeError, ValueError, OSError: for a bad argument, or as `spawn`
        raises them.

    Cancellation: the child is stopped and reaped before the cancellation
    propagates, as when any ``spawn()`` block is cancelled.
    """
    unknown = sorted(set(spawn_kwargs) - _SPAWN_KEYWORDS)
    if unknown:
        if unknown[0] == "protocol":
            raise TypeError("run() collects output itself and takes no protocol")
        raise TypeError(f"run() got an unexpected keyword argument {unknown[0]!r}")
    if (
        text is not None
        and universal_newlines is not None
        and bool(text) != bool(universal_newlines)
    ):
        raise subprocess.SubprocessError(
            "Cannot disambiguate when both text and universal_newlines are "
            "supplied but different. Pass one or the other."
        )
    text_mode = bool(encoding or errors or text or universal_newlines)
    if text_mode and encoding is None:
        encoding = locale.getpreferredencoding(False)
    data = _check_input(input, text_mode, encoding, errors)
    deadline = _check_timeout(timeout)
    args = argv if isinstance(argv, (str, bytes, os.PathLike)) else list(argv)
    # Not a sequence without *shell*: spawn() says what was meant.
    command: Any = _shell_argv(args, spawn_kwargs) if shell else args
    std = _plan_standard_fds(
        data is not None, capture_output, stdin, stdout, stderr, spawn_kwargs
    )
    child_fds = spawn_kwargs.get("child_fds")
    layout: Mapping[int, object]
    if spawn_kwargs.get("pty", False) is not False:
        # A terminal is fds 0, 1 and 2 at once; what it shows arrives as fd 1.
        layout = {0: "w", 1: "r"}
    elif child_fds is not None and isinstance(child_fds, Mapping):
        layout = {**child_fds, **_as_child_fds(std)}
    else:
        layout = _as_child_fds(std)
    if data is not None and layout.get(0) != "w":
        raise ValueError("input needs child fd 0 to be 'w' in child_fds")
    collector = _Collector()
    block = spawn(command, collector, **std, **spawn_kwargs)
    transport = None
    # No timeout, no cancel scope: it would only cost its entering and leaving.
    scope = trio.move_on_after(deadline) if deadline != math.inf else None
    with contextlib.nullcontext() if scope is None else scope:
        async with block as transport:
            if data is not None:
                transport.write(data)
            transport.closeStdin()
    output: list[bytes | str | None] = []
    for fd in (1, 2):
        if layout.get(fd) != "r":
            output.append(None)
            continue
        collected = b"".join(collector.chunks.get(fd, ()))
        if text_mode:
            assert encoding is not None
            output.append(_decode(collected, encoding, errors))
        else:
            output.append(collected)
    if scope is not None and scope.cancelled_caught:
        assert timeout is not None
        raise subprocess.TimeoutExpired(
            args, timeout, output=output[0], stderr=output[1]
        )
    assert transport is not None
    returncode = transport.returncode
    assert returncode is not None
    if check and returncode:
        raise subprocess.CalledProcessError(returncode, args, output[0], output[1])
    return subprocess.CompletedProcess(args, returncode, output[0], output[1])


def _check_input(
    input: object, text_mode: bool, encoding: str | None, errors: str | None
) -> bytes | None:
    """*input* as the bytes to write, encoded in text mode."""
    if input is None:
        return None
    if text_mode:
        if not isinstance(input, str):
            raise TypeError(
                f"input must be str in text mode, not {type(input).__name__}"
            )
        assert encoding is not None
        return input.encode(encoding, errors or "strict")
    if isinstance(input, str):
        raise TypeError("input must be bytes, not str (pass text=True for str)")
    if not isinstance(input, (bytes, bytearray, memoryview)):
        raise TypeError(f"input must be bytes or None, not {type(input).__name__}")
    return bytes(input)


def _check_timeout(timeout: object) -> float:
    """*timeout* as seconds for `trio.move_on_after` (``inf``: none)."""
    if timeout is None:
        return math.inf
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(
            f"timeout must be a number of seconds or None, not {type(timeout).__name__}"
        )
    seconds = float(timeout)
    if math.isnan(seconds):
        raise ValueError("timeout must be a number of seconds, not NaN")
    # As in subprocess, a timeout already past expires at once.
    return max(seconds, 0.0)


def _shell_argv(
    args: StrOrBytesPath | list[StrOrBytesPath], spawn_kwargs: dict[str, Any]
) -> list[StrOrBytesPath]:
    """The argv that runs the command line *args* with the system's shell.

    Matches `subprocess` on POSIX: ``[/bin/sh, -c, *args]``, with
    *executable* (taken out of *spawn_kwargs*) in place of ``/bin/sh``.
    """
    if isinstance(args, os.PathLike):
        raise TypeError("path-like args is not allowed when shell is true")
    if sys.platform == "win32":  # pragma: no cover - another issue's work
        return _windows_shell_argv(args)
    words: list[StrOrBytesPath] = (
        [args] if isinstance(args, (str, bytes)) else list(args)
    )
    if not words:
        raise ValueError("shell=True needs a command line to run, not []")
    shell = spawn_kwargs.pop("executable", None)
    return [_POSIX_SHELL if shell is None else shell, "-c", *words]


def _windows_shell_argv(  # pragma: no cover - Windows only
    args: str | bytes | list[StrOrBytesPath],
) -> list[StrOrBytesPath]:
    """``%COMSPEC% /s /c`` for ``shell=True`` on Windows, as in `subprocess`:
    a list is first joined by the standard rules (`subprocess.list2cmdline`);
    the command line reaches ``cmd`` verbatim."""
    if isinstance(args, bytes):
        args = os.fsdecode(args)
    elif not isinstance(args, str):
        args = subprocess.list2cmdline(os.fsdecode(arg) for arg in args)
    if not args:
        raise ValueError("shell=True needs a command line to run, not an empty one")
    return list(shell_argv(args))


def _plan_standard_fds(
    has_input: bool,
    capture_output: bool | None,
    stdin: Redirect | NotGiven,
    stdout: Redirect | NotGiven,
    stderr: Redirect | NotGiven,
    spawn_kwargs: Mapping[str, Any],
) -> dict[str, Any]:
    """spawn()'s ``stdin``/``stdout``/``stderr`` for run()'s arguments.

    Raises:
      ValueError: *input* with *stdin*, or *capture_output* with *stdout* or
        *stderr*, as in `subprocess`.
    """
    if capture_output is not None and not isinstance(capture_output, bool):
        raise TypeError(
            f"capture_output must be True, False or None, not {capture_output!r}"
        )
    if has_input and stdin is not NOT_GIVEN and stdin is not None:
        raise ValueError("stdin and input arguments may not both be used.")
    if capture_output and (
        stdout not in (NOT_GIVEN, None) or stderr not in (NOT_GIVEN, None)
    ):
        raise ValueError(
            "stdout and stderr arguments may not be used with capture_output."
        )
    given: dict[str, Any] = {
        name: value
        for name, value in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr))
        if not isinstance(value, NotGiven)
    }
    if spawn_kwargs.get("pty", False) is not False:
        return given  # spawn() explains what cannot be combined with a pty
    if spawn_kwargs.get("child_fds") is not None:
        # child_fds says what the child gets; what it leaves out is spawn()'s.
        return given
    if has_input:
        given["stdin"] = subprocess.PIPE
    given.setdefault("stdin", subprocess.DEVNULL)
    out = subprocess.PIPE if capture_output is not False else None
    for name in ("stdout", "stderr"):
        if capture_output or name not in given:
            given[name] = out
    return given


def _as_child_fds(std: Mapping[str, Redirect]) -> dict[int, object]:
    """Which of fds 0-2 *std* makes pipes, in child_fds terms."""
    return {
        fd: ("w" if fd == 0 else "r")
        for fd, name in enumerate(("stdin", "stdout", "stderr"))
        if name in std and std[name] == subprocess.PIPE
    }


def _decode(data: bytes, encoding: str, errors: str | None) -> str:
    """*data* as text, with `subprocess`'s newline translation."""
    text = data.decode(encoding, errors or "strict")
    return text.replace("\r\n", "\n").replace("\r", "\n")
