"""The portable backend: only what Trio offers on every platform it runs on.

A child is started with `trio.lowlevel.open_process` (``subprocess.Popen``
run in a worker thread), its pipes are Trio's own streams (fd streams on
POSIX, overlapped named pipes on Windows), its exit is
`trio.Process.wait`. The pieces are the seam's (`trioproc._os._seam`):

* `trioproc._os._stream_reader.StreamReader` -- a child output and its pump;
* `trioproc._os._stream_writer.StreamWriter` -- a child input, its queue and
  its writer task;
* `trioproc._os._portable_child.PortableChild` -- the exit, the signals and
  the stop sequence.

What differs between platforms is a `trioproc._os._platform.PlatformHooks`
object handed to `PortableBackend`, with four places to plug in:

``refuse(options)``
    options this platform cannot honour, refused at ``spawn()``;
``popen_options(options)``
    extra ``open_process`` keyword arguments (POSIX: ``process_group=0`` or
    ``start_new_session``, ``user``/``group``; Windows: ``creationflags``);
``adopt(process, options)``
    called once the child exists (Windows: assign it to a Job Object); it
    returns the child's `trioproc._os._platform.ProcessTree`;
``ProcessTree.signal`` / ``terminate`` / ``kill`` / ``alive`` / ``close``
    signals, the stop sequence's graceful and hard steps on the whole tree
    (POSIX: the process group), whether the tree is gone, and releasing it.

The POSIX hooks are `trioproc._os._platform.POSIX`; the Windows ones are
`trioproc._os._windows` (`trioproc._os._backends` picks them).

What this backend cannot do, whatever the platform, is refused at
``spawn()`` (`PortableBackend.refuse`): a pseudo-terminal, a cgroup, a remote
child, and ``child_fds`` other than the standard fds and parent fds handed
over at their own number.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import TYPE_CHECKING, Any, Final, final

import attrs
import trio

from ._portable_child import PortableChild
from ._seam import Launched
from ._stream_reader import StreamReader
from ._stream_writer import StreamWriter

if TYPE_CHECKING:
    from .._options import SpawnOptions
    from ._platform import PlatformHooks
    from ._seam import ChildReader, ChildWriter, RemoteHook

__all__ = ["PortableBackend"]

_STD_NAMES: Final = ("stdin", "stdout", "stderr")


@final
@attrs.frozen
class PortableBackend:
    """Starts and drives children with Trio's portable subprocess support.

    Attributes:
      hooks: what this platform adds (see the module docstring).
    """

    hooks: PlatformHooks

    @property
    def name(self) -> str:
        """``"portable"``, as ``repr(transport)`` shows it."""
        return "portable"

    def refuse(self, options: SpawnOptions) -> None:
        """Raise ``ValueError`` naming each option *options* ask for that this
        backend cannot honour here (``spawn()`` calls this).

        Raises:
          ValueError: the option, the backend and the platform, and what to
            do instead.
        """
        where = f"the portable backend ({self.hooks.platform})"
        if options.pty is not None:
            raise ValueError(
                f"pty=True is not supported by {where}: it has no pseudo-terminals; "
                "on Linux, use the linux backend (unset TRIOPROC_BACKEND)"
            )
        if options.cgroup:
            raise ValueError(
                f"cgroup=True is not supported by {where}: it has no cgroups "
                "(cgroup-v2 is Linux's); on Linux, use the linux backend"
            )
        if options.remote is not None:
            raise ValueError(
                f"host= is not supported by {where}: remote children run on the "
                "linux backend only"
            )
        for fd, how in sorted(options.child_fds.items()):
            if fd < 3:
                if how == ("w" if fd else "r"):
                    raise ValueError(
                        f"child_fds[{fd}]={how!r} is not supported by {where}: "
                        f"the child's {_STD_NAMES[fd]} can be "
                        f"{'written' if fd == 0 else 'read'} by the parent only"
                    )
            elif how != fd:
                raise ValueError(
                    f"child_fds[{fd}]={how!r} is not supported by {where}: beyond "
                    "fds 0, 1 and 2 a child gets only parent fds at their own "
                    f"number (child_fds={{{fd}: {fd}}})"
                )
        self.hooks.refuse(options)

    async def launch(
        self, options: SpawnOptions, *, remote: RemoteHook | None = None
    ) -> Launched:
        """Start the child *options* describe; see `trioproc._os._seam.Backend`.

        Raises:
          ValueError: an option this backend cannot honour (`refuse`).
          FileNotFoundError, PermissionError, NotADirectoryError: the program
            or the cwd cannot be used; nothing is left behind.

        Cancellation: nothing is left running (``open_process`` itself runs
        to its end; a cancellation is seen once the child is ended again).
        """
        if remote is not None:  # pragma: no cover - refused at spawn()
            raise ValueError("remote children run on the linux backend only")
        self.refuse(options)
        process = await trio.lowlevel.open_process(
            self.hooks.command([os.fsdecode(arg) for arg in options.argv]),
            **self._popen_options(options),
        )
        try:
            tree = self.hooks.adopt(process, options)
        except BaseException:
            with trio.CancelScope(shield=True):
                process.kill()
                await process.wait()
                _close_streams(process)
            raise
        readers: dict[int, ChildReader] = {}
        writers: dict[int, ChildWriter] = {}
        if process.stdin is not None:
            writers[0] = StreamWriter(
                0, process.stdin, options.high_water, options.low_water
            )
        for fd, stream in ((1, process.stdout), (2, process.stderr)):
            if stream is not None:
                readers[fd] = StreamReader(fd, stream)
        return Launched(
            PortableChild(process, tree),
            readers,
            writers,
            frozenset(
                fd for fd, how in options.child_fds.items() if isinstance(how, int)
            ),
            None,
        )

    def _popen_options(self, options: SpawnOptions) -> dict[str, Any]:
        """``open_process``'s keyword arguments for *options*."""
        std: list[Any] = []
        for fd in (0, 1, 2):
            how = options.child_fds.get(fd)
            if fd in options.devnull:
                std.append(subprocess.DEVNULL)
            elif fd in options.shared:
                std.append(subprocess.STDOUT)  # stderr=STDOUT onto the pipe
            elif how in ("r", "w"):
                std.append(subprocess.PIPE)
            elif isinstance(how, int):
                std.append(how)
            else:  # pragma: no cover - SpawnOptions gives every std fd a value
                std.append(subprocess.DEVNULL)
        env = None
        if options.env is not None:
            pairs = (entry.split(b"=", 1) for entry in options.env)
            env = {os.fsdecode(key): os.fsdecode(value) for key, value in pairs}
        extra = {
            "stdin": std[0],
            "stdout": std[1],
            "stderr": std[2],
            "close_fds": True,
            "pass_fds": tuple(fd for fd in options.child_fds if fd > 2),
            "env": env,
            "cwd": None if options.cwd is None else os.fsdecode(options.cwd),
            "executable": (
                None if options.executable is None else os.fsdecode(options.executable)
            ),
        }
        extra.update(self.hooks.popen_options(options))
        return extra

    def set_window_size(self, terminal: int, rows: int, cols: int) -> None:
        """There are no terminals here (``pty=True`` is refused)."""
        raise NotImplementedError("the portable backend has no pseudo-terminals")


def _close_streams(process: trio.Process) -> None:
    streams: list[Any] = [process.stdin, process.stdout, process.stderr]
    for stream in streams:
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()  # FdStream and the Windows pipes close synchronously
