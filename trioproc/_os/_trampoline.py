"""The uid/gid trampoline: run as a script in the child, never imported there.

``posix_spawn`` has already placed the child's fds, reset signals and changed
directory; this interpreter (a fresh process after ``exec``, with no threads)
drops the supplementary groups, switches identity and ``exec``s the program.
If any step fails it writes ``"<errno>:<step>"`` to the status fd and exits;
on success the status fd closes on ``exec`` and the parent reads end of file.

Usage: ``python -I -S _trampoline.py PAYLOAD_FD STATUS_FD``, where PAYLOAD_FD
holds ``marshal.dumps((path, argv, env, cwd, uid, gid))``.
"""

from __future__ import annotations

import marshal
import os
import signal
import sys


def main() -> None:
    payload_fd, status_fd = int(sys.argv[1]), int(sys.argv[2])
    os.set_inheritable(status_fd, False)
    with os.fdopen(payload_fd, "rb") as payload:
        path, argv, env, cwd, uid, gid = marshal.loads(payload.read())
    step = "signals"
    try:
        # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays
        # ignored across exec: give the program the default dispositions.
        for signum in signal.valid_signals():
            if signal.getsignal(signum) == signal.SIG_IGN:
                signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        if cwd is not None:
            step = "cwd"
            os.chdir(cwd)
        step = "setgroups"
        os.setgroups([])
        if gid is not None:
            step = f"gid {gid}"
            os.setgid(gid)
        if uid is not None:
            step = f"uid {uid}"
            os.setuid(uid)
        step = os.fsdecode(path)
        os.execve(path, argv, dict(entry.split(b"=", 1) for entry in env))
    except OSError as exc:
        os.write(status_fd, f"{exc.errno}:{step}".encode())
        os._exit(127)


if __name__ == "__main__":
    main()
