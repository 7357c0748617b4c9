"""The Linux backend: ``posix_spawn``, pipes or a pseudo-terminal, pidfds,
process groups and, with ``cgroup=True``, a cgroup-v2 cgroup of the child's
own."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, final

import trio

from . import _reaper
from ._cgroup import ChildCgroup
from ._launch import prepare
from ._pty import set_window_size, terminal_eof
from ._reader import Reader
from ._reaper import Child
from ._seam import Launched
from ._writer import Writer

if TYPE_CHECKING:
    from .._options import SpawnOptions
    from ._seam import RemoteHook

__all__ = ["LINUX"]


@final
class LinuxBackend:
    """Starts and drives children the Linux way (see the package docstring)."""

    name: Final = "linux"

    def refuse(self, options: SpawnOptions) -> None:
        """Linux honours every option ``spawn()`` checked."""

    async def launch(
        self, options: SpawnOptions, *, remote: RemoteHook | None = None
    ) -> Launched:
        """Start the child *options* describe; see `trioproc._os._seam.Backend`.

        With *remote*, the child is the local ``ssh`` of a remote child: its
        start counts once the remote side reports the program started.
        """
        cgroup = ChildCgroup.create() if options.cgroup else None
        try:
            launch = prepare(options)
            try:
                pid = launch.start(cgroup)
                if launch.needs_confirm:
                    await launch.confirm()
                if remote is not None:
                    await remote.handshake(launch, pid)
            except BaseException:
                launch.close_parent_ends()
                raise
        except BaseException:
            if cgroup is not None:
                await _discard_cgroup(cgroup)
            raise
        child = Child(options.process_group, cgroup, options.new_session)
        child.started(pid)
        child.remote = remote
        terminal = launch.pty_master is not None
        return Launched(
            child,
            {
                fd: Reader(fd, read_end, terminal=terminal)
                for fd, read_end in launch.readers.items()
            }
            or _NONE,
            {
                fd: Writer(
                    fd,
                    write_end,
                    options.high_water,
                    options.low_water,
                    eof=terminal_eof(write_end) if terminal else None,
                )
                for fd, write_end in launch.writers.items()
            }
            or _NONE,
            frozenset(
                fd for fd, how in options.child_fds.items() if isinstance(how, int)
            )
            or _NONE_PASSED,
            launch.pty_master,
        )

    def set_window_size(self, terminal: int, rows: int, cols: int) -> None:
        """Set the size of the pseudo-terminal *terminal* (SIGWINCH follows)."""
        set_window_size(terminal, rows, cols)


#: What most children are passed, and what a child with no pipe has to read
#: or write: one object for all of them (an idle child holds less).
_NONE_PASSED: Final[frozenset[int]] = frozenset()
_NONE: Final[Mapping[int, Any]] = MappingProxyType({})

#: The backend every Linux child starts with.
LINUX: Final = LinuxBackend()


async def _discard_cgroup(cgroup: ChildCgroup) -> None:
    """Remove the cgroup of a child that did not start (or was killed while
    it was being confirmed), ending whatever it had already forked."""
    with trio.CancelScope(shield=True), trio.move_on_after(_reaper.KILL_GRACE):
        await cgroup.kill()
        await cgroup.wait_empty()
    with contextlib.suppress(OSError):  # pragma: no cover - stuck in the kernel
        cgroup.remove()
