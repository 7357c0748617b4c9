"""`spawn`: start a child in its own nursery, and end it with the block."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Literal,
    TypeVar,
    final,
    overload,
)

import attrs
import trio

from ._options import (
    DEFAULT_HIGH_WATER,
    DEFAULT_KILL_AFTER,
    DEFAULT_LOW_WATER,
    NOT_GIVEN,
    NotGiven,
    Redirect,
    SpawnOptions,
    StrOrBytesPath,
    check_protocol,
)
from ._os import _backends
from ._os._backends import check_options, current_backend
from ._ssh import RemoteSession, check_remote
from ._streams import StreamProtocol
from ._transport import ProcessTransport
from ._util import ends_in_order, exit_nursery, exit_scope, raise_in_task

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._interfaces import IProcessProtocol
    from ._options import SpawnKeywords
    from ._os._cgroupfs import CgroupUnavailableError
    from ._streams import OutputStream, StdinStream

    # What `spawn` gives in stream mode with the default fds, for the type
    # checker only: the object is a `ProcessTransport`, whose streams are
    # Optional because protocol mode and *child_fds* may leave them out.
    @final
    class StreamTransport(ProcessTransport):  # type: ignore[misc]  # a typing view
        """Stream mode's `ProcessTransport`: ``stdin``, ``stdout`` and
        ``stderr`` are there."""

        @property
        def stdin(self) -> StdinStream: ...
        @property
        def stdout(self) -> OutputStream: ...
        @property
        def stderr(self) -> OutputStream: ...

    @final
    class PtyStreamTransport(ProcessTransport):  # type: ignore[misc]  # a typing view
        """Stream mode's `ProcessTransport` on a pty: the terminal is
        ``stdin`` and ``stdout`` (which carries fd 2's output too)."""

        @property
        def stdin(self) -> StdinStream: ...
        @property
        def stdout(self) -> OutputStream: ...
        @property
        def stderr(self) -> None: ...


__all__ = ["cgroups_unavailable", "find_program", "spawn"]

#: What a `Spawn` block gives: a `ProcessTransport`, typed by `spawn`'s overloads.
_T_co = TypeVar("_T_co", bound=ProcessTransport, covariant=True)


@overload
def spawn(
    argv: Iterable[StrOrBytesPath],
    protocol: None = None,
    *,
    child_fds: None = None,
    pty: Literal[False] = False,
    stdin: NotGiven = NOT_GIVEN,
    stdout: NotGiven = NOT_GIVEN,
    stderr: NotGiven = NOT_GIVEN,
    **options: Unpack[SpawnKeywords],
) -> Spawn[StreamTransport]: ...
@overload
def spawn(
    argv: Iterable[StrOrBytesPath],
    protocol: None = None,
    *,
    child_fds: None = None,
    pty: Literal[True] | tuple[int, int],
    stdin: NotGiven = NOT_GIVEN,
    stdout: NotGiven = NOT_GIVEN,
    stderr: NotGiven = NOT_GIVEN,
    **options: Unpack[SpawnKeywords],
) -> Spawn[PtyStreamTransport]: ...
@overload
def spawn(
    argv: Iterable[StrOrBytesPath],
    protocol: IProcessProtocol | None = None,
    *,
    child_fds: Mapping[int, Literal["r", "w"] | int] | None = None,
    pty: bool | tuple[int, int] = False,
    stdin: Redirect | NotGiven = NOT_GIVEN,
    stdout: Redirect | NotGiven = NOT_GIVEN,
    stderr: Redirect | NotGiven = NOT_GIVEN,
    **options: Unpack[SpawnKeywords],
) -> Spawn[ProcessTransport]: ...


def spawn(
    argv: Iterable[StrOrBytesPath],
    protocol: IProcessProtocol | None = None,
    *,
    executable: StrOrBytesPath | None = None,
    env: Mapping[str, str] | Mapping[bytes, bytes] | None = None,
    cwd: StrOrBytesPath | None = None,
    child_fds: Mapping[int, Literal["r", "w"] | int] | None = None,
    pty: bool | tuple[int, int] = False,
    uid: int | str | None = None,
    gid: int | str | None = None,
    new_session: bool = False,
    process_group: bool = True,
    cgroup: bool = False,
    kill_after: float = DEFAULT_KILL_AFTER,
    high_water: int = DEFAULT_HIGH_WATER,
    low_water: int = DEFAULT_LOW_WATER,
    stdin: Redirect | NotGiven = NOT_GIVEN,
    stdout: Redirect | NotGiven = NOT_GIVEN,
    stderr: Redirect | NotGiven = NOT_GIVEN,
    host: str | None = None,
    ssh_options: Sequence[str] | StrOrBytesPath | None = None,
) -> Spawn[ProcessTransport]:
    """Run a child process for the duration of an ``async with`` block.

    ::

        async with trioproc.spawn(["sort"], MyProtocol()) as transport:
            transport.write(b"b\\na\\n")

    Entering starts the child and calls ``protocol.makeConnection(transport)``.
    Leaving normally writes out pending input, closes the parent's write ends,
    delivers output until end of file, reaps the child, ends what it left
    running in its process group, and calls ``processEnded`` before the block
    returns. Leaving by an exception or a cancellation stops the child and its
    group -- SIGTERM and SIGCONT, SIGKILL after *kill_after* seconds -- while
    its output is still read and delivered, reaps it, and lets the exception
    go on. No child, nor anything in its process group, outlives its block; a
    process stuck in the kernel that outlives SIGKILL makes the block raise
    `ChildUnkillable` rather than hang.

    Args:
      argv: the program and its arguments; ``argv[0]`` is searched on
        ``PATH`` (the child's, from *env*, when *env* is given).
      protocol: a `ProcessProtocol` (or any object with the contract's
        callbacks); ``None`` for stream mode, where ``transport.stdout`` and
        ``transport.stderr`` are Trio streams and unread output is discarded
        when the block ends. (For type checkers, stream mode with the default
        fds gives ``stdin``, ``stdout`` and ``stderr`` that are not
        ``None``; with *pty*, ``stdin`` and ``stdout``.)
      executable: the program to run instead of ``argv[0]``.
      env: the child's whole environment (``{}``: empty); ``None`` inherits.
      cwd: the child's working directory.
      child_fds: child fd -> ``"w"`` (the parent writes), ``"r"`` (the child
        writes), or a parent fd handed to the child at that number. Default
        ``{0: "w", 1: "r", 2: "r"}``. An int is always a *parent* fd:
        ``{1: "r", 2: 1}`` gives the child the parent's stdout as its stderr,
        not its own stdout pipe -- use ``stderr=subprocess.STDOUT`` for that.
        The child gets exactly these fds and no other fd of the parent, with
        one rule for fds 0, 1 and 2: one that neither *child_fds* nor
        *stdin*/*stdout*/*stderr* names is opened on ``/dev/null`` rather than
        left closed (``{1: f.fileno()}``: stdin and stderr are ``/dev/null``),
        because a program started without fd 2 writes its errors into the
        next file it opens. To hand the child the parent's own fd, name it:
        ``stderr=None`` or ``child_fds={2: 2}``.
      stdin, stdout, stderr: the child's fds 0, 1 and 2 in `subprocess`'s
        words, a readable alternative to *child_fds* for them:
        ``subprocess.PIPE`` (a pipe to the parent: ``transport.stdin`` /
        ``stdout`` / ``stderr`` in stream mode, `childDataReceived` with a
        protocol; the default), ``subprocess.DEVNULL``, ``subprocess.STDOUT``
        (*stderr* only: fd 2 is the very pipe or file of fd 1, so what the
        child writes to both arrives in the order written), a file object or
        an open fd (handed to the child; the caller keeps it and closes it),
        or ``None`` (the parent's own fd 0, 1 or 2). Naming an fd both here
        and in *child_fds* is a ``ValueError``.
      pty: ``True`` or ``(rows, cols)``: fds 0, 1 and 2 are a new
        pseudo-terminal, the child's controlling terminal.
      uid, gid: switch identity in the child (needs privilege); the child
        keeps no supplementary group of the parent.
      new_session: the child leads a new session (and process group): it
        has no controlling terminal, and a terminal's hang-up does not
        reach it.
      process_group: the child leads a new process group (the default), so
        that ending the block ends what it started too: the block's
        SIGTERM/SIGKILL go to the whole group, and the block returns only
        once no live process is left in it. A child in its own group is not
        in the terminal's foreground: Ctrl-C reaches the parent only, and a
        child that reads the parent's terminal is stopped by SIGTTIN. Pass
        ``False`` for an interactive child that shares the parent's terminal;
        then only the child itself is stopped.
      cgroup: the child is born in a cgroup-v2 cgroup of its own (Linux),
        which holds every process it ever starts, double-forking daemons
        included; the block then ends the whole cgroup (SIGTERM to every
        process in it, then ``cgroup.kill``) and removes it once empty. Needs
        root or a delegated cgroup subtree.
      kill_after: seconds between SIGTERM and SIGKILL when the block stops it.
      high_water, low_water: bytes queued for the child's stdin at which a
        streaming producer is paused, and below which it is resumed;
        ``stdin.send_all`` waits while the queue is at ``high_water``.
      host: run the child on this host through the system's ``ssh``
        (``"user@host"``, an alias of the ssh configuration): *argv*, *env*
        (``None``: the remote login's environment; a mapping: exactly that)
        and *cwd* are the remote program's; signals, ``pid`` and the stop
        sequence are the remote program's too. See the README's "Remote
        children" for the guarantees and their limits.
      ssh_options: with *host*: a list of ``"Key=Value"`` options, as ``ssh
        -o`` takes them, or the path of an ssh_config file (``ssh -F``).

    Raises:
      TypeError, ValueError: at this call, for a bad argument.
      FileNotFoundError, PermissionError, NotADirectoryError: on entering,
        when the program or *cwd* cannot be used; nothing is left behind.
      OSError: on entering, ``EBADF`` naming *child_fds* for a parent fd
        closed since this call.
      CgroupUnavailableError: on entering with *cgroup*, when no cgroup-v2
        cgroup can be made and entered; its message names what is missing.
      RemoteError: on entering with *host*, when ssh cannot connect
        (`HostUnreachableError`), log in (`AuthenticationError`) or trust the
        host's key (`HostKeyError`); a remote program or cwd that cannot be
        used raises `FileNotFoundError` & co., naming the host.

    Errors: an exception from the body, or from a single protocol callback,
    leaves the block as itself, so ``except SomeError`` works; cancellations
    that accompany it are dropped (Trio re-delivers them at the next
    checkpoint). Only when several errors happen at once -- say the body
    raises while a callback also fails -- does an `ExceptionGroup` of them
    leave the block.
    """
    options = SpawnOptions.check(
        argv,
        executable=executable,
        env=env,
        cwd=cwd,
        child_fds=child_fds,
        pty=pty,
        uid=uid,
        gid=gid,
        new_session=new_session,
        process_group=process_group,
        cgroup=cgroup,
        kill_after=kill_after,
        high_water=high_water,
        low_water=low_water,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
    )
    if host is not None:
        remote = check_remote(
            host, ssh_options, options, child_fds_given=child_fds is not None
        )
        options = attrs.evolve(options, remote=remote)
    elif ssh_options is not None:
        raise ValueError("ssh_options= needs host=")
    check_options(options)
    checked = check_protocol(protocol)
    if _hook is not None:
        return _hook(options, checked)  # type: ignore[no-any-return]  # a test double
    return Spawn(options, checked)


#: Set by `trioproc.testing`'s ``fake_spawn`` fixture: ``spawn()`` then hands
#: its checked arguments to the fake instead of starting a child. Checking
#: stays here, so bad input fails the same way under the fake.
_hook: Callable[[SpawnOptions, IProcessProtocol | None], Any] | None = None


@final
class Spawn(Generic[_T_co]):
    """The ``async with`` block of one child, returned by `spawn`."""

    __slots__ = (
        "_alone",
        "_nursery",
        "_nursery_manager",
        "_options",
        "_protocol",
        "_scope",
        "_session",
        "_transport",
    )

    def __init__(
        self, options: SpawnOptions, protocol: IProcessProtocol | None
    ) -> None:
        self._options: SpawnOptions | None = options
        self._protocol = protocol
        self._transport: ProcessTransport | None = None
        self._nursery_manager: Any = None
        self._nursery: trio.Nursery | None = None
        self._session: RemoteSession | None = None
        self._scope: trio.CancelScope | None = None
        self._alone = False

    async def __aenter__(self) -> _T_co:
        options = self._options
        if options is None:
            raise RuntimeError("this spawn() block was already entered")
        await trio.lowlevel.checkpoint_if_cancelled()
        # Only the launch needs them: a block that runs long holds less.
        self._options = None
        session = None
        if options.remote is not None:
            # The local child is ssh; the wrapper reports the remote start.
            session = self._session = RemoteSession.open(options)
            options = session.local_options()
        backend = current_backend()
        try:
            launched = await backend.launch(options, remote=session)
        except BaseException:
            if session is not None:
                session.close()
            raise
        stream_mode = self._protocol is None
        protocol = StreamProtocol() if stream_mode else self._protocol
        assert protocol is not None
        transport = self._transport = ProcessTransport._create(
            backend,
            launched,
            protocol,
            kill_after=options.kill_after,
            stream_mode=stream_mode,
        )
        if transport._has_tasks or session is not None:
            manager = self._nursery_manager = trio.open_nursery()
            self._nursery = await manager.__aenter__()
            transport._start_tasks(self._nursery)
        else:
            # Nothing to pump or write: no task; a scope around the body for
            # a failing protocol callback to cancel, unless in stream mode.
            self._alone = True
            if not stream_mode:
                self._scope = trio.CancelScope()
                self._scope.__enter__()
            transport._start_alone(self._scope)
        if session is not None:
            assert self._nursery is not None
            self._nursery.start_soon(session.serve_signals, launched.process.reaped)
        try:
            transport._connect()
            await trio.lowlevel.cancel_shielded_checkpoint()
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return transport  # type: ignore[return-value]  # spawn()'s overloads type it

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        transport = self._transport
        assert transport is not None
        if self._alone:
            return await self._exit_alone(transport, self._scope, exc)
        manager = self._nursery_manager
        assert manager is not None
        self._nursery_manager = None
        assert self._nursery is not None
        in_order = ends_in_order(exc, self._nursery)
        if in_order:
            transport._finish()
        else:
            transport._abandon()
        ended = await transport._end(in_order)
        leaving, error = _leaving_by(exc, ended)
        if error is not None:  # ChildUnkillable: it leaves as a task's error
            self._nursery.start_soon(raise_in_task, error, name="trioproc end")
        try:
            if leaving is not exc:
                assert leaving is not None
                exc_type, tb = type(leaving), leaving.__traceback__
            return _suppresses(
                await exit_nursery(manager, exc_type, leaving, tb), leaving, given=exc
            )
        finally:
            transport._release()
            if self._session is not None:
                self._session.close()

    async def _exit_alone(
        self,
        transport: ProcessTransport,
        scope: trio.CancelScope | None,
        exc: BaseException | None,
    ) -> bool:
        """`__aexit__` of a block with no task: the same end, in this task."""
        self._alone = False
        self._scope = None
        in_order = ends_in_order(exc, scope)
        if in_order:
            transport._finish()
        else:
            transport._abandon()
        try:
            # A child not reaped yet is waited for in order, unshielded:
            # that is the checkpoint.
            waited = in_order and transport.pid is not None
            ended = await transport._end(in_order)
            errors = list(transport._watch_errors or ())
            leaving, error = _leaving_by(exc, ended)
            if error is not None:
                errors.append(error)
            return _suppresses(
                await exit_scope(scope, leaving, errors, waited=waited),
                leaving,
                given=exc,
            )
        finally:
            transport._release()


def _leaving_by(
    exc: BaseException | None, ended: BaseException | None
) -> tuple[BaseException | None, BaseException | None]:
    """What a block left with *exc* leaves by once its end raised *ended*,
    and the error of that end that must leave beside it: a cancellation of
    the end's wait takes the place of no exception; `ChildUnkillable` is an
    error of its own."""
    if isinstance(ended, trio.Cancelled):
        return (ended if exc is None else exc), None
    return exc, ended


def _suppresses(
    suppressed: bool, leaving: BaseException | None, *, given: BaseException | None
) -> bool:
    """``__aexit__``'s answer: an exception the block leaves by that it was
    not *given* (its end's cancellation) is raised, not returned as False."""
    if not suppressed and leaving is not given and leaving is not None:
        raise leaving
    return suppressed


# What the layers above spawn() ask of the OS layer, so that they talk to
# spawn and the transport only (tests/test_layers.py holds them to it).


def cgroups_unavailable() -> CgroupUnavailableError | None:
    """Why a child started now cannot get a cgroup of its own, or ``None`` if
    it can: for callers that use cgroups wherever they exist (the
    Supervisor). See `trioproc._os._backends.unavailable`.

    Raises:
      ValueError: a bad ``TRIOPROC_BACKEND``.
    """
    return _backends.unavailable()


def find_program(name: bytes, search_path: bytes | None) -> bytes:
    """The path of the program *name*, searched on *search_path* (the child's
    ``PATH``; ``None``: the parent's) like ``execvp``; a name with a slash is
    used as it is. See `trioproc._os._launch.find_program`.

    Raises:
      FileNotFoundError: no directory on the path has it.
      PermissionError: only entries that cannot be executed were found.
    """
    from ._os._launch import find_program  # POSIX launcher: imported where used

    return find_program(name, search_path)
