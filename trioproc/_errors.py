"""The exceptions of the process contract.

`ProcessDone` and `ProcessTerminated` are not raised by trioproc: they are the
*reason* handed to ``processExited`` and ``processEnded``, as in Twisted, so a
protocol can tell a clean exit from a failure with ``reason.exitCode`` or with
``isinstance``.
"""

from __future__ import annotations

import os
import signal as _signal
from typing import Final, NoReturn, overload

__all__ = [
    "ChildNotReady",
    "ChildUnkillable",
    "ProcessDone",
    "ProcessEnded",
    "ProcessExitedAlready",
    "ProcessTerminated",
    "RestartIntensityExceeded",
]


def _describe(exit_code: int | None, signal: int | None) -> str:
    if signal is not None:
        try:
            name = _signal.Signals(signal).name
        except ValueError:
            name = f"signal {signal}"
        return f"process ended by signal {signal} ({name})"
    return f"process ended with exit code {exit_code}"


class ProcessEnded(Exception):
    """Why a child ended: the base of `ProcessDone` and `ProcessTerminated`.

    Attributes:
      exitCode: the exit code, or ``None`` when a signal ended the child.
      signal: the number of the signal that ended the child, or ``None``.
      status: the raw wait status, as `os.waitpid` returns it.
    """

    exitCode: int | None
    signal: int | None
    status: int | None

    def __init__(
        self,
        exitCode: int | None = None,
        signal: int | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(_describe(exitCode, signal))
        self.exitCode = exitCode
        self.signal = signal
        self.status = status

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt from its fields, not from its message (``args``), so that
        # a copy or an unpickled reason says the same.
        return (_rebuild, (type(self), self.exitCode, self.signal, self.status))

    @classmethod
    def from_wait_status(cls, status: int) -> ProcessEnded:
        """The reason for a raw wait status: `ProcessDone` for exit code 0."""
        # -signum after a signal; on Windows, where there are none, the code.
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            return ProcessTerminated(signal=-code, status=status)
        if code == 0:
            return ProcessDone(status)
        return ProcessTerminated(exitCode=code, status=status)

    # Twisted hands protocols a ``Failure`` wrapping this exception; these
    # members let protocol code written against that keep working unchanged.

    @property
    def value(self) -> ProcessEnded:
        """This exception itself (Twisted code reads ``reason.value``)."""
        return self

    @property
    def parents(self) -> list[str]:
        """The qualified class names this reason answers to, as a Twisted
        ``Failure``'s ``parents`` lists them: its own classes'
        (``trioproc.ProcessDone``, ..., ``builtins.Exception``) and those of
        the ``twisted.internet.error`` classes it stands for
        (``twisted.internet.error.ProcessDone``, ``...ConnectionDone``,
        ``...ConnectionClosed``)."""
        names = [f"{kind.__module__}.{kind.__name__}" for kind in type(self).__mro__]
        twins = [
            f"twisted.internet.error.{name}"
            for name, stands_for in _TWISTED_TWINS.items()
            if isinstance(self, stands_for)
        ]
        # Twisted's where its classes have theirs: before ``builtins.*``.
        at = next(i for i, name in enumerate(names) if name.startswith("builtins."))
        return [*names[:at], *twins, *names[at:]]

    @overload
    def check(self, *types: str) -> str | None: ...
    @overload
    def check(self, *types: type[BaseException]) -> type[BaseException] | None: ...
    @overload
    def check(
        self, *types: type[BaseException] | str
    ) -> type[BaseException] | str | None: ...
    def check(
        self, *types: type[BaseException] | str
    ) -> type[BaseException] | str | None:
        """The first of *types* this reason is an instance of, else ``None``.

        As with a Twisted ``Failure``, a type may also be given by its
        qualified name (``"twisted.internet.error.ProcessDone"``), which
        matches when it is one of `parents`, and is then what is returned.
        Twisted's own classes match too, by name, without importing Twisted:
        ``twisted.internet.error.ProcessDone`` (and its base
        ``ConnectionDone``) matches a `ProcessDone`,
        ``error.ProcessTerminated`` (``ConnectionLost``) a
        `ProcessTerminated`, ``error.ConnectionClosed`` any reason.

        Raises:
          TypeError: one of *types* is neither a class nor a str.
        """
        parents: list[str] | None = None
        for kind in types:
            if isinstance(kind, str):
                if parents is None:
                    parents = self.parents
                if kind in parents:
                    return kind
            elif not isinstance(kind, type):
                raise TypeError(
                    "check() and trap() take exception classes or their "
                    f"qualified names, not {kind!r}"
                )
            elif isinstance(self, (kind, *_twisted_twin(kind))):
                return kind
        return None

    @overload
    def trap(self, *types: str) -> str: ...
    @overload
    def trap(self, *types: type[BaseException]) -> type[BaseException]: ...
    @overload
    def trap(self, *types: type[BaseException] | str) -> type[BaseException] | str: ...
    def trap(self, *types: type[BaseException] | str) -> type[BaseException] | str:
        """Like `check`, but raise this reason when it matches none of *types*.

        Raises:
          ProcessEnded: this reason, when none of *types* matches.
          TypeError: as `check`.
        """
        kind = self.check(*types)
        if kind is None:
            raise self
        return kind

    def getErrorMessage(self) -> str:
        """What this reason says (``str(reason)``)."""
        return str(self)

    def raiseException(self) -> NoReturn:
        """Raise this reason."""
        raise self

    def getTraceback(self) -> str:
        """The text a ``Failure`` with no frames gives: this reason has none
        (it was never raised)."""
        kind = type(self)
        return (
            f"Traceback (failure with no frames): "
            f"<class '{kind.__module__}.{kind.__qualname__}'>: {self}\n"
        )

    # Last: below it, ``type`` in this class's annotations would be this.
    @property
    def type(self) -> type[ProcessEnded]:
        """This reason's class (a ``Failure``'s ``reason.type``)."""
        return type(self)


class ProcessDone(ProcessEnded):
    """The child exited with exit code 0."""

    def __init__(self, status: int | None = 0) -> None:
        super().__init__(exitCode=0, signal=None, status=status)


class ProcessTerminated(ProcessEnded):
    """The child exited with a non-zero exit code, or was ended by a signal."""


def _rebuild(
    kind: type[ProcessEnded],
    exit_code: int | None,
    signal: int | None,
    status: int | None,
) -> ProcessEnded:
    """A reason of class *kind* with these fields (`ProcessEnded.__reduce__`)."""
    reason = kind.__new__(kind)
    ProcessEnded.__init__(reason, exit_code, signal, status)
    return reason


def _twisted_twin(kind: object) -> tuple[type[ProcessEnded], ...]:
    """The reason classes a class of ``twisted.internet.error`` stands for
    (none for any other class)."""
    if getattr(kind, "__module__", None) != "twisted.internet.error":
        return ()
    return _TWISTED_TWINS.get(getattr(kind, "__name__", ""), ())


_TWISTED_TWINS: Final[dict[str, tuple[type[ProcessEnded], ...]]] = {
    "ProcessDone": (ProcessDone,),
    "ConnectionDone": (ProcessDone,),
    "ProcessTerminated": (ProcessTerminated,),
    "ConnectionLost": (ProcessTerminated,),
    "ConnectionClosed": (ProcessEnded,),
}


class ProcessExitedAlready(ProcessLookupError):
    """The child has already exited and been reaped, so it cannot be signalled.

    A reaped pid may already belong to another process; sending it a signal
    could hit a stranger, so trioproc refuses.
    """


class ChildUnkillable(TimeoutError):
    """A child (or a process of its group) outlived SIGKILL and the grace after
    it: it is stuck in the kernel (state ``D``: a hung file system, a frozen
    cgroup). The block that had to stop it left with this error instead of
    waiting forever; the child is still reaped in the background once it dies,
    so it leaves no zombie.

    Attributes:
      pid: the process that did not die.
      state: its state letter and name from ``/proc`` (``"D (disk sleep)"``),
        or ``"?"`` where it cannot be read.
    """

    def __init__(self, pid: int, state: str, waited: float) -> None:
        super().__init__(
            f"process {pid} is still alive {waited:g}s after SIGKILL "
            f"(state {state}): it is stuck in the kernel; it will be reaped "
            "in the background once it dies"
        )
        self.pid = pid
        self.state = state


class RestartIntensityExceeded(RuntimeError):
    """A supervisor's children failed more often than its restart intensity
    allows (more than ``max_restarts`` restarts within ``max_seconds``): it
    stopped them all and gave up."""


class ChildNotReady(RuntimeError):
    """A supervised child did not become ready: it exited first, its ready
    check raised (the error is the ``__cause__``), or its ``ready_timeout``
    passed. It has been stopped.

    Attributes:
      name: the child's name.
      returncode: how it ended, if it exited by itself; else ``None``.
    """

    def __init__(self, message: str, name: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.returncode = returncode
