"""The platform hooks of the portable backend, and the POSIX ones.

The portable backend (`trioproc._os._portable`) starts children with
`trio.lowlevel.open_process` and drives them through Trio's pipe streams; what
differs from one operating system to the next is small and lives behind
`PlatformHooks`:

* `PlatformHooks.refuse` -- the options this platform cannot honour, refused
  at ``spawn()`` itself (a ``ValueError`` naming the option and the platform);
* `PlatformHooks.popen_options` -- extra keyword arguments for
  ``open_process`` (``subprocess.Popen``): a process group or session, an
  identity (POSIX); creation flags such as ``CREATE_NEW_PROCESS_GROUP``
  (Windows);
* `PlatformHooks.adopt` -- called once the child exists (Windows: put it in a
  Job Object of its own), it returns the child's `ProcessTree`: how to signal
  the child, how to end its whole tree (the graceful step, then the hard
  one), and whether anything of the tree is still alive.

`POSIX` (this module) keeps each child in a process group of its own and ends
the group with SIGTERM and SIGCONT, then SIGKILL. The Windows hooks are
`trioproc._os._windows`, imported only on Windows
(`trioproc._os._backends`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, Final, Protocol, final

import attrs

if TYPE_CHECKING:
    import trio

    from .._options import SpawnOptions

__all__ = ["POSIX", "PlatformHooks", "PosixHooks", "PosixTree", "ProcessTree"]


class ProcessTree(Protocol):
    """What the platform does to one started child and what it started.

    The portable child (`trioproc._os._portable_child.PortableChild`) calls
    these from the block's stop sequence and from ``signalProcess``; none of
    them blocks.
    """

    @property
    def sealed(self) -> bool:
        """No process can leave the tree (a Job Object; a process group can
        be left): once the tree is gone, nothing holds the child's pipes."""

    def signal(self, signum: int, *, group: bool = False) -> None:
        """Send *signum* to the child (with *group*: to its whole tree, where
        the platform can). Nothing happens once the child is reaped."""

    def terminate(self) -> None:
        """The stop sequence's graceful step, to the whole tree."""

    def kill(self) -> None:
        """The stop sequence's hard step, to the whole tree."""

    def alive(self) -> bool:
        """Whether a live process of the tree other than the child is left
        (the child's own exit is its watcher's to see)."""

    def reaped(self) -> None:
        """The child has been reaped (its pid may be reused from now)."""

    def close(self) -> None:
        """The tree is gone (or given up on): release what `adopt` holds."""


class PlatformHooks(Protocol):
    """What one operating system adds to the portable backend."""

    @property
    def platform(self) -> str:
        """The platform's name in error messages (``"POSIX"``, ``"Windows"``)."""

    def refuse(self, options: SpawnOptions) -> None:
        """Raise ``ValueError``, naming the option and the platform, for what
        *options* ask that this platform cannot do."""

    def popen_options(self, options: SpawnOptions) -> dict[str, Any]:
        """Extra keyword arguments for ``open_process`` for *options*."""

    def command(self, argv: list[str]) -> str | list[str]:
        """What ``open_process`` is given to run *argv*: the list itself, or
        (Windows) the command line, where the platform's rules for joining
        it do not fit the program."""

    def adopt(self, process: trio.Process, options: SpawnOptions) -> ProcessTree:
        """The child *process* has started: take charge of its tree.

        Raises:
          OSError: the tree cannot be taken charge of; the backend then kills
            and reaps the child.
        """


@final
@attrs.define(eq=False)
class PosixTree:
    """A POSIX child and, when it leads one, its process group.

    The group's id is the child's pid, which the kernel gives to no other
    process while the child is unreaped or any member of the group lives;
    once the child is reaped, the group is checked for a member just before
    each signal, and forgotten once it is empty.

    Attributes:
      process: the child.
      pgid: its process group, when it leads one; ``None`` once the group is
        known to be empty.
    """

    process: trio.Process
    pgid: int | None
    _reaped: bool = attrs.field(init=False, default=False)

    @property
    def sealed(self) -> bool:
        """A process can leave the group (``setsid``, ``setpgid``)."""
        return False

    def signal(self, signum: int, *, group: bool = False) -> None:
        """Send *signum* to the child, or with *group* to its process group."""
        if group and self.pgid is not None and self._group_exists():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signum)
                return
        if not self._reaped:
            # Popen checks that the child is unreaped before it signals it.
            self.process.send_signal(signum)

    def terminate(self) -> None:
        """SIGTERM and SIGCONT (a stopped process acts on nothing else)."""
        self.signal(signal.SIGTERM, group=True)
        self.signal(signal.SIGCONT, group=True)

    def kill(self) -> None:
        """SIGKILL to the group (or the child)."""
        self.signal(signal.SIGKILL, group=True)

    def alive(self) -> bool:
        """Whether the child's process group still has a member.

        Zombies count as members until their parent reaps them; an orphan is
        reaped by init (a process that is itself a subreaper must reap its
        orphans, which the Linux backend does and this one does not).
        """
        if self.pgid is None:
            return False
        if self._group_exists():
            return True
        if self._reaped:
            self.pgid = None  # empty: the id may be reused by a stranger now
        return False

    def reaped(self) -> None:
        """The child was reaped: from now on its pid is not ours."""
        self._reaped = True
        self.alive()

    def close(self) -> None:
        """Nothing to release on POSIX."""

    def _group_exists(self) -> bool:
        assert self.pgid is not None
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # a member changed identity: it exists
            pass
        return True


def _setpgrp() -> None:  # pragma: no cover - Python 3.10 only, in the child
    os.setpgid(0, 0)


@final
class PosixHooks:
    """The portable backend on a POSIX system (macOS, the BSDs; Linux with
    ``TRIOPROC_BACKEND=portable``)."""

    platform: Final = "POSIX"

    def refuse(self, options: SpawnOptions) -> None:
        """POSIX honours every option the portable backend itself takes."""

    def popen_options(self, options: SpawnOptions) -> dict[str, Any]:
        """A session or process group of the child's own, and its identity."""
        extra: dict[str, Any] = {}
        if options.new_session:
            extra["start_new_session"] = True
        elif options.process_group:
            if sys.version_info >= (3, 11):
                extra["process_group"] = 0
            else:  # pragma: no cover - Python 3.10
                extra["preexec_fn"] = _setpgrp
        if options.uid is not None or options.gid is not None:
            # As the Linux backend: no supplementary group of the parent.
            extra["extra_groups"] = []
            if options.gid is not None:
                extra["group"] = options.gid
            if options.uid is not None:
                extra["user"] = options.uid
        return extra

    def command(self, argv: list[str]) -> list[str]:
        """POSIX passes the argv itself."""
        return argv

    def adopt(self, process: trio.Process, options: SpawnOptions) -> PosixTree:
        """The child's tree is its process group, when it leads one."""
        return PosixTree(process, process.pid if options.process_group else None)


#: The hooks of every POSIX system.
POSIX: Final = PosixHooks()
