"""Fleet files: a Procfile or a ``trioproc.toml``, read and checked.

Pure parsing and validation, no processes: `load` returns a `Fleet` whose
processes are in start (dependency) order, or raises `FleetError` listing
every problem with its line -- unknown keys, bad types, unknown or circular
dependencies -- so that ``trioproc check`` can show them all at once and
``trioproc run`` refuses to start anything until there are none.

Formats:

* Procfile, as foreman and honcho read it: ``name: command`` lines (names of
  letters, digits, ``_`` and ``-``), commands run by ``/bin/sh -c``; blank
  lines and ``#`` comments are skipped. Every process is ``transient``: one
  that exits 0 (a ``release:`` step, a one-shot task) is done, one that fails
  is restarted -- what a Procfile's author means by a line, where
  ``permanent`` would restart a finished task until the supervisor gives up.
* TOML: top-level ``strategy``, ``max_restarts``, ``max_seconds``,
  ``shutdown``, ``shutdown_timeout``; one ``[processes.NAME]`` table per
  process with ``cmd`` (a shell command) or ``argv`` (a list), and optionally
  ``restart``, ``ready`` (an output pattern, a port number, ``"notify"``
  for systemd's ``sd_notify`` ``READY=1``, or a table with ``output`` or
  ``port``), ``ready_timeout``, ``watchdog`` (seconds; ``WATCHDOG=1``
  due), ``kill_after``, ``env``,
  ``cwd`` (relative to the file), ``depends_on`` and ``backoff`` (a table of
  `trioproc.Backoff`'s fields).

Processes run in the file's directory unless ``cwd`` says otherwise, so the
paths in a fleet file are relative to it, wherever ``trioproc`` is run from.

``.env`` next to the file (or, instead, the files given with ``--env``, as
honcho does) is read as honcho reads it: ``NAME=value`` lines split the way a
shell would (``shlex``), ``#`` comments, and ``\\n`` / ``\\t`` in values
meaning newline and tab; a leading ``export`` (a file a shell can also
``source``) is allowed. Lines that are none of these are kept out and
reported as warnings with their line numbers, where honcho drops them
silently.

`expand` turns a fleet into the instances a run (or an export) starts:
``-c web=2`` makes ``web.1`` and ``web.2``, only the named processes (and
what they depend on) are kept, and each instance gets its ``PORT`` as
foreman and honcho give it; `Instance.spec` is the `ChildSpec` an instance
is supervised by (each `ProcessConfig` holds its process's, checked when the
file was read).

The rooms: ``_problems`` (what is wrong, "did you mean"), ``_config`` (the
checked fleet), ``_procfile`` and ``_toml`` (the two readers), ``_order``
(start order), ``_dotenv``, ``_load`` (finding and loading a file),
``_instances`` (``-c`` copies, ``PORT``, environment, specs) and
``_programs`` (programs not found).
"""

from ._config import Fleet, ProcessConfig
from ._dotenv import parse_dotenv, read_dotenv
from ._instances import DEFAULT_PORT, Instance, expand, process_env
from ._load import DEFAULT_FILES, find_fleet_file, load
from ._problems import FleetError, Problem, did_you_mean
from ._programs import program_warnings

__all__ = [
    "DEFAULT_FILES",
    "DEFAULT_PORT",
    "Fleet",
    "FleetError",
    "Instance",
    "Problem",
    "ProcessConfig",
    "did_you_mean",
    "expand",
    "find_fleet_file",
    "load",
    "parse_dotenv",
    "process_env",
    "program_warnings",
    "read_dotenv",
]
