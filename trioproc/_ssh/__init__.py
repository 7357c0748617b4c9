"""Children on other hosts: the system's ``ssh`` as the local child, a small
POSIX-shell wrapper on the remote side.

A ``spawn(argv, host=...)`` child is an ordinary local child -- the ``ssh``
client, whose argv this module builds -- plus a wrapper script that ``ssh``
runs on the remote host with ``/bin/sh``. Nothing of an SSH implementation is
ours, and nothing but ``ssh`` and a POSIX ``/bin/sh`` is needed.

The wrapper (`WRAPPER`), on the remote host:

1. starts a *watcher* in the background, which polls the ``sshd`` process
   that runs the session (the wrapper's parent). When that exits -- the
   connection is gone, say because the local ``ssh`` was killed or the
   network dropped and sshd noticed -- the watcher ends the tree itself:
   SIGTERM and SIGCONT to the wrapper's process group, SIGKILL once the
   wrapper is gone or *kill_after* has passed. The watcher ignores the
   signals the group gets from us, and holds none of the session's fds.
2. checks *cwd* and finds the program on the ``PATH`` the program will have,
   and reports a missing or unusable one as an error line (below) instead of
   running anything, so that entering the block can raise
   `FileNotFoundError` & co. naming the host, not return exit status 127.
3. runs the program in the foreground of a small ``sh -c`` that first
   reports its own pid, then ``exec``s the program with *argv* exactly and,
   when *env* was given, with ``env -i`` and exactly that environment.
4. waits for it, with a no-op trap on the signals a process group gets, so
   that it survives what is meant for the program; then kills the watcher
   and exits with the program's status.

sshd makes every session's first process a session and process-group
leader, so the wrapper's pid is the process group of the program and of
whatever it starts: signals and the stop sequence go to that group.

The report: the first line the wrapper writes to the child's stderr (or, on
a pseudo-terminal, to the terminal) is ``<marker> pid <pid> <pgid>`` or
``<marker> <ERRNO> <what>``, where the marker holds a random nonce made for
this one child. Entering the block reads the output up to that line, one
byte at a time, so that nothing after it is consumed: what the user gets
starts with the program's first byte. Lines before it (ssh's own warnings,
what a login shell's rc file printed) are kept, bounded, to explain a
failure; when ``ssh`` exits before any report, its message says what failed
(`classify`).

Signals go over a second session of the same connection: the main ``ssh``
is an OpenSSH *ControlMaster* with its socket in a private temporary
directory, and ``signalProcess`` and the stop sequence run ``kill`` on the
remote host through it (``ssh -S socket host 'kill -s TERM -- -PGID'``), in
order, from a task of the child's nursery.
"""

from __future__ import annotations

from ._errors import (
    AuthenticationError as AuthenticationError,
    HostKeyError as HostKeyError,
    HostUnreachableError as HostUnreachableError,
    RemoteError as RemoteError,
    classify as classify,
)
from ._options import (
    RemoteOptions as RemoteOptions,
    check_remote as check_remote,
    host_name as host_name,
)
from ._session import (
    _SIGNAL_QUEUE as _SIGNAL_QUEUE,
    SSH as SSH,
    RemoteSession as RemoteSession,
)

__all__ = [
    "AuthenticationError",
    "HostKeyError",
    "HostUnreachableError",
    "RemoteError",
    "RemoteOptions",
    "RemoteSession",
    "check_remote",
    "classify",
    "host_name",
]
