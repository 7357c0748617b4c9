"""The ``trioproc`` command: run a Procfile or TOML fleet under a Supervisor.

``trioproc run [FILE]`` (or ``trioproc start [PROCESS...]``, as honcho and
foreman spell it) starts every process (dependencies first, each ready
before the next), prints their output prefixed with their names, and on
Ctrl-C (SIGINT), SIGTERM or SIGHUP (a closed terminal, a lost ssh session;
not under ``nohup``) stops them all in reverse order (or all at once, as the
file's ``shutdown`` says); a second signal kills them at once. When no
process is left running or waiting to restart (one-shot tasks that are
done) the run ends by itself.
``trioproc check [FILE]`` lists every problem in the file;
``trioproc export systemd|supervisord DIR`` writes the fleet out as units or
a supervisord file; ``trioproc exec -- CMD...`` runs one command with the
fleet's environment (what ``honcho run CMD`` does).

The honcho options work as in honcho: ``-f`` (the file), ``-d`` (the app
root, which ``-f`` and ``-e`` are relative to), ``-e`` (``.env`` files,
instead of the default), ``-p`` (the base ``PORT``), ``-c web=2`` (instances
``web.1`` and ``web.2``).

When its output goes away the fleet is stopped the same graceful way, and
nothing more is printed: a closed pipe (``trioproc run | head``) ends the run
quietly, as it ends ``cat``; a hung-up terminal (EIO) ends it as SIGHUP does;
any other write error (a full disk) is reported on stderr.

Exit status: 0 after a clean stop (``--for``, a signal, or every process
done with exit code 0); 1 if the supervisor gave up (restart intensity), a
process failed to start, a finished process had failed, or the output could
not be written; 2 for a bad command line or fleet file; 141 (128 + SIGPIPE,
what a shell reports for ``cat``) when the output pipe was closed and the
run had not failed otherwise.

The rooms: ``_parser`` (the command line and its help), ``_args`` (what it
names: file, ``.env`` files, instances), ``_printer`` (prefixed output, and
losing it), ``_run`` (a fleet under a Supervisor: signals, fates),
``_commands`` (``check``, ``export``, ``exec``) and ``_main``.
"""

from ._main import main
from ._run import run_fleet

__all__ = ["main", "run_fleet"]
