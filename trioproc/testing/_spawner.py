"""The scripted fake spawn behind the ``fake_spawn`` fixture.

While a `FakeSpawner` is installed, ``trioproc.spawn()`` (and so
``trioproc.run()``) starts no process: it matches the argv against the
registered commands and plays the first match as a scripted child on a
`FakeProcessTransport`, in a task of its own block's nursery. Everything is on
Trio's clock, so under ``autojump_clock`` a child that takes 30 s, or a
``kill_after`` grace, costs no real time.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import signal as _signal
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, final

import attrs
import trio

from .. import _spawn
from .._spawn import Spawn
from .._util import ends_in_order, exit_nursery
from ._fake import FakeProcessTransport, ScriptDriver

if TYPE_CHECKING:
    from .._interfaces import IProcessProtocol
    from .._options import SpawnOptions

__all__ = ["Command", "FakeRun", "FakeSpawner", "UnregisteredCommand"]

# Signals whose default action is not to end a process.
_HARMLESS = frozenset(
    getattr(_signal, name)
    for name in (
        "SIGCHLD",
        "SIGCONT",
        "SIGURG",
        "SIGWINCH",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
    )
    if hasattr(_signal, name)  # Windows has none of them
)


class UnregisteredCommand(LookupError):
    """Code under test spawned a command no registration matches."""


def _chunks(what: str, value: bytes | Sequence[bytes]) -> list[bytes]:
    if isinstance(value, bytes):
        return [value] if value else []
    if isinstance(value, (str, bytearray, memoryview)) or not all(
        isinstance(chunk, bytes) for chunk in value
    ):
        raise TypeError(f"{what} must be bytes or a sequence of bytes chunks")
    return list(value)


@final
@attrs.define(eq=False)
class Command:
    """One registered command: what it matches and how its child behaves.

    Made by `FakeSpawner.register`; `remaining` counts the calls it still
    serves (``None``: every call).
    """

    matcher: Any
    output: tuple[tuple[int, bytes, float], ...]
    returncode: int
    signal: int | None
    delay: float
    ignores_sigterm: bool
    reads_stdin: bool
    waits_for_stdin: bool
    remaining: int | None

    def matches(self, argv: list[str]) -> bool:
        """Whether *argv* is this command's."""
        matcher = self.matcher
        if isinstance(matcher, re.Pattern):
            return matcher.search(shlex.join(argv)) is not None
        if callable(matcher):
            return bool(matcher(argv))
        return list(matcher) == argv

    def describe(self) -> str:
        matcher = self.matcher
        if isinstance(matcher, re.Pattern):
            return f"re.compile({matcher.pattern!r})"
        return repr(matcher)


@final
@attrs.define(eq=False)
class FakeRun:
    """One spawn the code under test made, as the fake saw it.

    Attributes:
      argv: the command, as a list of str.
      transport: the `FakeProcessTransport` the code got.
      options: every ``spawn()`` argument after checking (``cwd``, ``env``,
        ``child_fds``, ``kill_after`` ...), as bytes where the real spawn uses
        bytes.
    """

    argv: list[str]
    transport: FakeProcessTransport
    options: SpawnOptions

    @property
    def stdin(self) -> bytes:
        """What the code under test wrote to the child's stdin."""
        return self.written(0)

    def written(self, fd: int) -> bytes:
        """What the code under test wrote to the child's *fd* (b"" if none)."""
        return ScriptDriver(self.transport).written(fd)

    @property
    def signals(self) -> list[Any]:
        """The signals the code sent, as it named them."""
        return self.transport.signals

    @property
    def returncode(self) -> int | None:
        """How the fake child ended (``None`` while it runs)."""
        return self.transport.returncode


@final
class FakeSpawner:
    """Scripted children for code that calls ``trioproc.spawn`` / ``run``.

    The ``fake_spawn`` fixture gives one, installed for the test. Register a
    command for each spawn the code under test will make; afterwards check
    `calls` and `runs`.
    """

    def __init__(self) -> None:
        self._commands: list[Command] = []
        self.runs: list[FakeRun] = []
        #: Let unregistered commands start real children instead of failing.
        self.passthrough = False
        #: Let the ``fake_spawn`` fixture pass a test that left registrations
        #: unused (see `unused`) instead of failing it at teardown.
        self.allow_unused = False
        self._next_pid = 40000

    def register(
        self,
        argv: Any,
        *,
        stdout: bytes | Sequence[bytes] = b"",
        stderr: bytes | Sequence[bytes] = b"",
        returncode: int = 0,
        signal: int | None = None,
        delay: float = 0.0,
        output: Sequence[tuple[int, bytes] | tuple[int, bytes, float]] = (),
        ignores_sigterm: bool = False,
        reads_stdin: bool = True,
        waits_for_stdin: bool = False,
        times: int | None = 1,
    ) -> Command:
        """Script a command; each registration serves one call (see *times*).

        Args:
          argv: the exact argv (a list of str), a compiled regular expression
            searched for in ``shlex.join(argv)`` (`re.search`: anchor it with
            ``^`` and ``$``), or a predicate taking the argv list.
          stdout, stderr: what the child writes on fds 1 and 2 (bytes, or a
            list of chunks delivered one by one).
          output: chunks for any fds, in order: ``(fd, data)`` or
            ``(fd, data, seconds_before)``; played before stdout and stderr.
          returncode: the exit code.
          signal: end by this signal number instead of exiting.
          delay: seconds the child lives after its output, before it ends.
          ignores_sigterm: SIGTERM does nothing, so stopping the child waits
            ``kill_after`` and then kills it.
          reads_stdin: ``False``: the child never reads its stdin, so writes
            queue up, producers are paused and ``send_all`` waits.
          waits_for_stdin: the child reads stdin to its end (the parent
            closed it) before it writes anything, as ``sort`` does.
          times: how many calls this serves (registering the same command
            twice queues two runs); ``None`` serves every call.

        Returns:
          The `Command`, which says how many calls it still serves.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 or None, not {times!r}")
        played: list[tuple[int, bytes, float]] = []
        for item in output:
            fd, data, *before = item
            played.append((fd, bytes(data), float(before[0]) if before else 0.0))
        played += [(1, chunk, 0.0) for chunk in _chunks("stdout", stdout)]
        played += [(2, chunk, 0.0) for chunk in _chunks("stderr", stderr)]
        if isinstance(argv, (str, bytes)):
            raise TypeError(
                f"register() takes an argv list, a re.Pattern or a predicate, "
                f"not a single {type(argv).__name__} (did you mean [{argv!r}]?)"
            )
        if not isinstance(argv, re.Pattern) and not callable(argv):
            argv = [str(arg) for arg in argv]
        command = Command(
            argv,
            tuple(played),
            returncode,
            signal,
            delay,
            ignores_sigterm,
            reads_stdin,
            waits_for_stdin,
            times,
        )
        self._commands.append(command)
        return command

    @property
    def calls(self) -> list[list[str]]:
        """The argv of every spawn made, in order (passthrough ones too)."""
        return [run.argv for run in self.runs]

    @property
    def unused(self) -> list[Command]:
        """Registrations that still expect calls (those with a count)."""
        return [c for c in self._commands if c.remaining is not None and c.remaining]

    @contextlib.contextmanager
    def installed(self) -> Iterator[FakeSpawner]:
        """Make ``trioproc.spawn`` use this spawner inside the block."""
        if _spawn._hook is not None:
            raise RuntimeError("another FakeSpawner is installed already")
        _spawn._hook = self._spawn
        try:
            yield self
        finally:
            _spawn._hook = None

    def _take(self, argv: list[str]) -> Command | None:
        for command in self._commands:
            if command.remaining != 0 and command.matches(argv):
                if command.remaining is not None:
                    command.remaining -= 1
                return command
        if self.passthrough:
            return None
        known = ", ".join(c.describe() for c in self._commands) or "none"
        raise UnregisteredCommand(
            f"spawn({argv!r}) matches no registered command (registered: {known}); "
            f"register it with fake_spawn.register({argv!r}, ...), or set "
            f"fake_spawn.passthrough = True to run unregistered commands for real"
        )

    def _spawn(self, options: SpawnOptions, protocol: IProcessProtocol | None) -> Any:
        return _FakeBlock(self, options, protocol)


@final
class _FakeBlock:
    """The ``async with spawn(...)`` block of a scripted child."""

    def __init__(
        self,
        spawner: FakeSpawner,
        options: SpawnOptions,
        protocol: IProcessProtocol | None,
    ) -> None:
        self._spawner, self._options, self._protocol = spawner, options, protocol
        self._real: Spawn[Any] | None = None
        self._fake: FakeProcessTransport | None = None
        self._player: _Player | None = None
        self._manager: Any = None
        self._nursery: trio.Nursery | None = None

    async def __aenter__(self) -> Any:
        await trio.lowlevel.checkpoint_if_cancelled()
        options = self._options
        argv = [arg.decode(errors="surrogateescape") for arg in options.argv]
        command = self._spawner._take(argv)
        if command is None:
            self._real = Spawn(options, self._protocol)
            transport = await self._real.__aenter__()
            self._spawner.runs.append(
                FakeRun(argv, FakeProcessTransport(pid=None), options)
            )
            return transport
        spawner = self._spawner
        spawner._next_pid += 1
        fake = FakeProcessTransport(
            self._protocol,
            pid=spawner._next_pid,
            child_fds=options.child_fds,
            pty=options.pty is not None,
            high_water=options.high_water,
            low_water=options.low_water,
            kill_after=options.kill_after,
        )
        driver = ScriptDriver(fake)
        if not command.reads_stdin and 0 in driver.input_fds:
            fake.stall(0)
        spawner.runs.append(FakeRun(argv, fake, options))
        self._fake, self._player = fake, _Player(driver, command)
        driver.on_signal(self._player.on_signal)
        self._manager = trio.open_nursery()
        nursery = self._nursery = await self._manager.__aenter__()
        nursery.start_soon(self._player.play, name=f"fake child {argv!r}")
        nursery.start_soon(driver.run, name=f"fake kernel {argv!r}")
        await trio.lowlevel.cancel_shielded_checkpoint()
        return fake

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._real is not None:
            return await self._real.__aexit__(exc_type, exc, tb)
        fake, manager, nursery = self._fake, self._manager, self._nursery
        assert fake is not None
        assert manager is not None
        assert nursery is not None
        try:
            # As the real block: in order, close the write ends after their
            # data, keep delivering (stream mode: discard), wait for the end;
            # else the player stops the child.
            if ends_in_order(exc, nursery):
                ScriptDriver(fake).leave()
        except BaseException as error:
            nursery.cancel_scope.cancel()
            exc_type, exc, tb = type(error), error, error.__traceback__
        return await exit_nursery(manager, exc_type, exc, tb)


@final
class _Player:
    """Plays a `Command` as the fake child: output, life, signals, end."""

    def __init__(self, driver: ScriptDriver, command: Command) -> None:
        self._driver, self._fake, self._command = driver, driver.fake, command
        self._scope = trio.CancelScope()
        self._killed_by: int | None = None

    def on_signal(self, signum: int) -> bool:
        """React as the child would; ``True`` when the signal ends it."""
        if signum in _HARMLESS:
            return True
        if signum == _signal.SIGTERM and self._command.ignores_sigterm:
            return True
        if self._killed_by is None:
            self._killed_by = signum
            self._scope.cancel()
        return True

    async def play(self) -> None:
        """The child's life: its script, then its end.

        Cancellation (the block ends by an error or a cancellation): the
        child is stopped as the real block stops one -- SIGTERM, and SIGKILL
        after ``kill_after`` if it ignores SIGTERM -- on Trio's clock.
        """
        fake = self._fake
        try:
            with self._scope:
                await self._script()
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                if fake.returncode is None and self._killed_by is None:
                    if self._command.ignores_sigterm:
                        await trio.sleep(self._driver.kill_after)
                        self._killed_by = _signal.SIGKILL
                    else:
                        self._killed_by = _signal.SIGTERM
                self._end()
            raise
        self._end()

    async def _script(self) -> None:
        driver, command = self._driver, self._command
        if command.waits_for_stdin and 0 in driver.input_fds:
            await driver.until_lost(0)
        for fd, data, before in command.output:
            if before:
                await trio.sleep(before)
            await driver.until_reading(fd)
            if fd in driver.open_fds:
                self._fake.deliver(fd, data)
        await trio.sleep(command.delay)

    def _end(self) -> None:
        fake = self._fake
        if fake.returncode is not None:
            return
        if self._killed_by is not None:
            fake.exit(signal=self._killed_by)
        else:
            fake.exit(self._command.returncode, self._command.signal)
