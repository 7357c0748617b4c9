"""`pipeline`: children joined by kernel pipes, like the shell's ``a | b | c``.

Each stage is an ordinary `spawn` block, run in a task of the pipeline's own
nursery, so that every stage ends with the pipeline's block and all of them
are stopped at once when it is cancelled. The pipes between stages are made
here and handed to the children as ``child_fds`` ints; the parent closes its
copies as soon as the stage that holds them has started, so that each reader
sees end of file when its writer ends and no byte passes through Python.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, final

import trio

from ._options import DEFAULT_KILL_AFTER, SpawnOptions, StrOrBytesPath
from ._spawn import spawn
from ._util import NoPublicConstructor, ends_in_order, exit_nursery

if TYPE_CHECKING:
    from ._streams import OutputStream, StdinStream
    from ._transport import ProcessTransport


__all__ = ["Pipeline", "pipeline"]

_STDERR_CHOICES = (subprocess.PIPE, subprocess.DEVNULL, subprocess.STDOUT)


def pipeline(
    stages: Sequence[Iterable[StrOrBytesPath]],
    *,
    env: Mapping[str, str] | Mapping[bytes, bytes] | None = None,
    cwd: StrOrBytesPath | None = None,
    stderr: int | None = None,
    check: bool = False,
    kill_after: float = DEFAULT_KILL_AFTER,
) -> Pipeline:
    """Run *stages* joined by pipes for the duration of an ``async with`` block.

    ::

        stages = [["find", "."], ["grep", "-v", "/test"], ["sort"]]
        async with trioproc.pipeline(stages) as p:
            async for line in p.stdout.lines():
                print(line)
        print(p.returncodes)   # [0, 0, 0]

    Each stage's stdout is the next one's stdin, through a kernel pipe: the
    data does not pass through the parent. The ends are in stream mode:
    `Pipeline.stdin` writes to the first stage, `Pipeline.stdout` reads the
    last one. Each stage runs as a `spawn` block, with its rules: leaving
    normally closes ``stdin``, discards unread output of ``stdout`` and waits
    for every stage to exit; leaving by an exception or a cancellation stops
    every stage at once (SIGTERM, SIGKILL after *kill_after*), and the block
    returns only when all are reaped.

    Args:
      stages: two or more argvs (one is allowed: a lone `spawn`), each as
        for `spawn`.
      env, cwd: as for `spawn`, for every stage.
      stderr: where each stage's stderr goes. ``None`` (the default): the
        parent's stderr, as in the shell. ``subprocess.PIPE``: a stream
        per stage, ``p.transports[i].stderr``, to be read (a full buffer
        blocks that stage). ``subprocess.DEVNULL``: discarded.
        ``subprocess.STDOUT``: into the stage's stdout, as ``2>&1 |``. An
        fd: that fd of the parent.
      check: after a normal exit, raise `subprocess.CalledProcessError` if
        a stage failed, as ``set -o pipefail`` reports it: for the
        rightmost stage with a non-zero status. A stage killed by SIGPIPE
        because a later one stopped reading counts as failed, as in the
        shell.
      kill_after: seconds between SIGTERM and SIGKILL for each stage.

    Raises:
      TypeError, ValueError: at this call, for a bad argument.
      FileNotFoundError, PermissionError, NotADirectoryError: on entering,
        when a stage cannot start; the stages started before it are stopped
        and reaped, and no fd is left open.
      subprocess.CalledProcessError: with *check*, on leaving normally.

    Errors: as for `spawn`, a single error leaves the block as itself;
    several at once leave as an `ExceptionGroup`.
    """
    if isinstance(stages, (str, bytes)) or not isinstance(stages, Sequence):
        raise TypeError("stages must be a list of argvs, e.g. [['ls'], ['wc', '-l']]")
    if not stages:
        raise ValueError("a pipeline needs at least one stage")
    argvs = []
    for index, argv in enumerate(stages):
        if isinstance(argv, (str, bytes)):
            raise TypeError(
                f"stages[{index}] must be a sequence of arguments, not a single "
                f"string (did you mean [{argv!r}]?)"
            )
        argvs.append(list(argv))
        # Every argument checked now, as spawn() checks at its call; the pipe
        # fds of child_fds exist only once the block is entered.
        SpawnOptions.check(argvs[-1], env=env, cwd=cwd, kill_after=kill_after)
    if stderr is not None and (
        isinstance(stderr, bool)
        or not isinstance(stderr, int)
        or (stderr < 0 and stderr not in _STDERR_CHOICES)
    ):
        raise ValueError(
            "stderr must be None, subprocess.PIPE, subprocess.DEVNULL, "
            f"subprocess.STDOUT or an fd, not {stderr!r}"
        )
    return Pipeline._create(argvs, env, cwd, stderr, check, kill_after)


@final
class Pipeline(metaclass=NoPublicConstructor):
    """The ``async with`` block of a pipeline, returned by `pipeline`; the
    block gives this same object."""

    __slots__ = (
        "_check",
        "_cwd",
        "_entered",
        "_env",
        "_kill_after",
        "_leave",
        "_nursery",
        "_nursery_manager",
        "_stderr",
        "args",
        "transports",
    )

    args: list[list[StrOrBytesPath]]
    """The stages' argvs."""
    transports: list[ProcessTransport]
    """Each stage's transport, in order, once the block is entered."""
    _env: Mapping[str, str] | Mapping[bytes, bytes] | None
    _cwd: StrOrBytesPath | None
    _stderr: int | None
    _check: bool
    _kill_after: float
    _entered: bool
    _leave: trio.Event
    _nursery_manager: Any
    _nursery: trio.Nursery | None

    _made_by = "pipeline()"

    def __init__(
        self,
        argvs: list[list[StrOrBytesPath]],
        env: Mapping[str, str] | Mapping[bytes, bytes] | None,
        cwd: StrOrBytesPath | None,
        stderr: int | None,
        check: bool,
        kill_after: float,
    ) -> None:
        """Made by `pipeline` (``Pipeline._create``), which checked the arguments."""
        self.args = argvs
        self._env = env
        self._cwd = cwd
        self._stderr = stderr
        self._check = check
        self._kill_after = kill_after
        self.transports = []
        self._entered = False
        self._leave = trio.Event()
        self._nursery_manager = None
        self._nursery = None

    @property
    def stdin(self) -> StdinStream | None:
        """The first stage's stdin, a `StdinStream` (``None`` before entering)."""
        return self.transports[0].stdin if self.transports else None

    @property
    def stdout(self) -> OutputStream | None:
        """The last stage's stdout, an `OutputStream` (``None`` before entering)."""
        return self.transports[-1].stdout if self.transports else None

    @property
    def returncodes(self) -> list[int | None]:
        """Each stage's exit status (``-signum`` after a signal), ``None``
        for one still running."""
        return [transport.returncode for transport in self.transports]

    @property
    def returncode(self) -> int | None:
        """The pipeline's status as ``set -o pipefail`` gives it: that of the
        rightmost stage that failed, else 0; ``None`` while any stage runs."""
        codes = self.returncodes
        if not codes or None in codes:
            return None
        return next((code for code in reversed(codes) if code), 0)

    async def wait(self) -> int:
        """Wait until every stage has exited; return `returncode`.

        Cancellation: the stages go on running.
        """
        for transport in self.transports:
            await transport.wait()
        await trio.lowlevel.checkpoint()
        code = self.returncode
        assert code is not None
        return code

    async def __aenter__(self) -> StreamPipeline:
        if self._entered:
            raise RuntimeError("this pipeline() block was already entered")
        self._entered = True
        await trio.lowlevel.checkpoint_if_cancelled()
        manager = self._nursery_manager = trio.open_nursery()
        nursery = self._nursery = await manager.__aenter__()
        held: set[int] = set()  # the parent's copies still open
        try:
            if self._stderr == subprocess.DEVNULL:
                devnull = os.open(os.devnull, os.O_WRONLY)  # not inherited (PEP 446)
                held.add(devnull)
            read_end: int | None = None
            for index, argv in enumerate(self.args):
                fds: dict[int, Literal["r", "w"] | int] = {
                    0: "w" if read_end is None else read_end
                }
                next_read = write_end = None
                if index == len(self.args) - 1:
                    fds[1] = "r"
                else:
                    next_read, write_end = os.pipe()  # not inherited (PEP 446)
                    held.update((next_read, write_end))
                    fds[1] = write_end
                if self._stderr is None:
                    fds[2] = 2
                elif self._stderr == subprocess.PIPE:
                    fds[2] = "r"
                elif self._stderr == subprocess.DEVNULL:
                    fds[2] = devnull
                elif self._stderr == subprocess.STDOUT:
                    fds[2] = fds[1]
                else:
                    fds[2] = self._stderr
                try:
                    transport = await nursery.start(self._stage, argv, fds)
                finally:
                    # spawn() has copied them for the child by now, whether
                    # it started or not: ours would keep the pipes open.
                    for fd in (read_end, write_end):
                        if fd is not None:
                            held.discard(fd)
                            os.close(fd)
                self.transports.append(transport)
                read_end = next_read
        except BaseException as exc:
            for fd in held:
                os.close(fd)
            nursery.cancel_scope.cancel()
            self._nursery_manager = None
            await exit_nursery(manager, type(exc), exc, exc.__traceback__)
            raise
        for fd in held:
            os.close(fd)
        return self  # type: ignore[return-value]  # entered: the ends are there

    async def _stage(
        self,
        argv: list[StrOrBytesPath],
        fds: dict[int, Literal["r", "w"] | int],
        *,
        task_status: trio.TaskStatus[ProcessTransport] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with spawn(
            argv,
            env=self._env,
            cwd=self._cwd,
            child_fds=fds,
            kill_after=self._kill_after,
        ) as transport:
            task_status.started(transport)
            await self._leave.wait()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        manager = self._nursery_manager
        assert manager is not None
        assert self._nursery is not None
        self._nursery_manager = None
        if ends_in_order(exc, self._nursery):
            self._leave.set()  # each stage leaves its block as a block does
        suppressed = await exit_nursery(manager, exc_type, exc, tb)
        if exc is None and self._check:
            code = self.returncode
            if code:
                failed = max(i for i, c in enumerate(self.returncodes) if c)
                raise subprocess.CalledProcessError(code, self.args[failed])
        return suppressed


if TYPE_CHECKING:
    # What the block gives, for the type checker only: the same `Pipeline`,
    # whose ends are there once it is entered.
    @final
    class StreamPipeline(Pipeline):  # type: ignore[misc]  # a typing view
        """An entered `Pipeline`: ``stdin`` and ``stdout`` are there."""

        @property
        def stdin(self) -> StdinStream: ...
        @property
        def stdout(self) -> OutputStream: ...
