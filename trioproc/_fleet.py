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
foreman and honcho give it.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, final

import attrs

from ._options import SpawnOptions
from ._supervision._policy import (
    RESTART_TYPES,
    STRATEGIES,
    Backoff,
    RestartType,
    Strategy,
    check_seconds,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the dependency is declared for 3.10 only
    # The stub is installed only where Python 3.10 runs.
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "Fleet",
    "FleetError",
    "Instance",
    "Problem",
    "ProcessConfig",
    "expand",
    "find_fleet_file",
    "load",
]

# honcho's own pattern for a Procfile line (foreman's is the same).
_PROCFILE_LINE: Final = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")
_NAME: Final = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TOP_KEYS: Final = {
    "strategy",
    "max_restarts",
    "max_seconds",
    "shutdown",
    "shutdown_timeout",
    "processes",
}
_PROCESS_KEYS: Final = {
    "cmd",
    "argv",
    "restart",
    "ready",
    "ready_timeout",
    "watchdog",
    "kill_after",
    "cgroup",
    "env",
    "cwd",
    "depends_on",
    "backoff",
    "host",
    "ssh_options",
}
_BACKOFF_KEYS: Final = {"initial", "factor", "cap", "jitter", "reset_after"}
DEFAULT_FILES: Final = ("trioproc.toml", "Procfile")
#: honcho's and foreman's base port when neither ``-p`` nor ``$PORT`` says.
DEFAULT_PORT: Final = 5000
_VARIABLE: Final = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
#: Shell syntax and builtins: a command starting with one is not checked.
_SHELL_WORDS: Final = frozenset(
    {"if", "then", "else", "elif", "fi", "case", "esac", "for", "while"}
    | {"until", "do", "done", "in", "function", "select", "time", "{", "}"}
    | {"!", "[[", "]]", ".", "source", "eval", "cd", "export", "set", "unset"}
    | {"trap", "ulimit", "umask", "read", "wait", "alias", "builtin", "exit"}
)
#: Words that run the word after them (their options are not followed).
_WRAPPERS: Final = frozenset({"exec", "command", "nohup", "env"})


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a misspelled *word*,
    else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@final
@attrs.frozen
class Problem:
    """One thing wrong with a fleet file, and the line it is on (if known).

    *path* names the file when it is not the fleet file itself (a ``.env``).
    """

    line: int | None
    message: str
    path: Path | None = None

    def render(self, path: Path | str) -> str:
        path = self.path if self.path is not None else path
        where = f"{path}:{self.line}" if self.line is not None else str(path)
        return f"{where}: {self.message}"


def _in_line_order(problems: Iterable[Problem]) -> list[Problem]:
    """*problems* file by file, each file's by line (those without a line
    first), as an editor would want to visit them."""
    return sorted(
        problems,
        key=lambda p: (
            p.path is not None,
            str(p.path or ""),
            p.line is not None,
            p.line or 0,
        ),
    )


class FleetError(ValueError):
    """A fleet file has problems; ``problems`` lists them all."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = _in_line_order(problems)
        super().__init__("\n".join(p.render(path) for p in self.problems))


@final
@attrs.frozen
class ProcessConfig:
    """One process of a fleet, checked."""

    name: str
    argv: tuple[str, ...]
    line: int | None = None
    restart: RestartType = "permanent"
    ready: (
        tuple[Literal["output"], str]
        | tuple[Literal["port"], int]
        | tuple[Literal["notify"], None]
        | None
    ) = None
    ready_timeout: float = 10.0
    watchdog: float | None = None
    kill_after: float = 5.0
    env: Mapping[str, str] = attrs.field(factory=dict)
    cwd: str | None = None
    depends_on: tuple[str, ...] = ()
    backoff: Backoff = attrs.field(factory=Backoff)
    #: ``True``: the process must run in a cgroup of its own; ``False``:
    #: never; ``None``: wherever one can be made.
    cgroup: bool | None = None
    #: The host it runs on through ssh (``None``: this one), and its
    #: ``ssh -o`` options; its cwd is then the remote one, as written.
    host: str | None = None
    ssh_options: tuple[str, ...] | None = None


@final
@attrs.frozen
class Fleet:
    """A checked fleet: processes in start order, and supervisor settings."""

    path: Path
    processes: tuple[ProcessConfig, ...]
    strategy: Strategy = "one_for_one"
    max_restarts: int = 3
    max_seconds: float = 5.0
    shutdown: Literal["reverse", "parallel"] = "reverse"
    shutdown_timeout: float = 60.0
    env: Mapping[str, str] = attrs.field(factory=dict)
    warnings: tuple[Problem, ...] = ()

    def process(self, name: str) -> ProcessConfig | None:
        """The process called *name*, if there is one."""
        for config in self.processes:
            if config.name == name:
                return config
        return None


def find_fleet_file(directory: Path) -> Path | None:
    """``trioproc.toml``, else ``Procfile``, in *directory*; ``None`` if neither."""
    for name in DEFAULT_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def load(
    path: Path, env_files: Iterable[Path] = (), *, root: Path | None = None
) -> Fleet:
    """Read and check the fleet file at *path* (and its ``.env`` files).

    Args:
      path: the Procfile or ``.toml`` file.
      env_files: ``.env`` files to read instead of the one beside *path*,
        later ones winning (honcho's ``-e``).
      root: the directory processes run in, and relative ``cwd`` values are
        relative to (honcho's ``-d``); default: *path*'s directory.

    Raises:
      FleetError: every problem found, with its line.
      OSError: a file cannot be read.
    """
    text = path.read_text(encoding="utf-8")
    root = (root if root is not None else path.parent).resolve()
    problems: list[Problem] = []
    if path.suffix == ".toml":
        fleet = _parse_toml(path, root, text, problems)
    else:
        fleet = _parse_procfile(path, root, text, problems)
    env: dict[str, str] = {}
    warnings: list[Problem] = []
    files = list(env_files)
    if not files and (path.parent / ".env").is_file():
        files = [path.parent / ".env"]
    for env_file in files:
        values, unread = read_dotenv(env_file.read_text(encoding="utf-8"))
        env.update(values)
        warnings += [attrs.evolve(p, path=env_file) for p in unread]
    if problems or fleet is None:
        raise FleetError(path, problems)
    return attrs.evolve(fleet, env=env, warnings=tuple(warnings))


def parse_dotenv(text: str) -> dict[str, str]:
    """The variables of a ``.env`` file, as honcho reads them."""
    return read_dotenv(text)[0]


def read_dotenv(text: str) -> tuple[dict[str, str], list[Problem]]:
    """The variables of a ``.env`` file, and its lines that set none.

    honcho's reading (``shlex`` words ``NAME = value...``, ``\\n`` and
    ``\\t`` in values), plus a leading ``export``; what honcho would drop
    silently -- a line without ``=``, an unclosed quote, a name no process
    could be given -- comes back as a `Problem` with its line number.
    """
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            tokens = list(shlex.shlex(line, posix=True))
        except ValueError as exc:  # an unclosed quote
            problems.append(Problem(number, f"not read: {exc} in {line.strip()!r}"))
            continue
        if not tokens:
            continue  # blank, or a comment
        if tokens[0] == "export" and len(tokens) > 1 and tokens[1] != "=":
            tokens = tokens[1:]
        if len(tokens) < 2 or tokens[1] != "=":
            problems.append(
                Problem(number, f"not read: not a NAME=value line: {line.strip()!r}")
            )
            continue
        name = tokens[0]
        value = "".join(tokens[2:]).replace(r"\n", "\n").replace(r"\t", "\t")
        if not _VARIABLE.fullmatch(name):
            problems.append(
                Problem(number, f"not read: {name!r} is not a variable name")
            )
            continue
        if "\0" in value:
            problems.append(Problem(number, f"not read: a NUL in the value of {name}"))
            continue
        values[name] = value
    return values, problems


def _parse_procfile(
    path: Path, root: Path, text: str, problems: list[Problem]
) -> Fleet | None:
    processes: list[ProcessConfig] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _PROCFILE_LINE.match(line)
        if match is None:
            problems.append(
                Problem(number, f"not a 'name: command' line: {line.strip()!r}")
            )
            continue
        name, command = match.group(1), match.group(2).strip()
        if "\0" in command:
            problems.append(Problem(number, f"process {name!r}: a NUL in its command"))
            continue
        if name in seen:
            problems.append(
                Problem(
                    number,
                    f"process {name!r} is defined again (first on line {seen[name]})",
                )
            )
            continue
        seen[name] = number
        processes.append(
            ProcessConfig(
                name,
                ("/bin/sh", "-c", command),
                number,
                restart="transient",
                cwd=str(root),
            )
        )
    if not processes and not problems:
        problems.append(Problem(None, "no processes defined"))
    return Fleet(path, tuple(processes))


class _Locator:
    """Lines of TOML tables and keys (tomllib gives no positions)."""

    _HEADER: Final = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY: Final = re.compile(
        r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*="""
    )

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                table = self._split(header.group(1))
                self.lines.setdefault(table, number)
                continue
            key = self._KEY.match(line)
            if key:
                self.lines.setdefault(table + self._split(key.group(1)), number)

    @staticmethod
    def _split(dotted: str) -> tuple[str, ...]:
        parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)', dotted)
        return tuple(a or b or c for a, b, c in parts)

    def line(self, *path: str) -> int | None:
        """The line defining *path*, or its nearest enclosing table."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def _parse_toml(
    path: Path, root: Path, text: str, problems: list[Problem]
) -> Fleet | None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+)", str(exc))
        if match:
            line: int | None = int(match.group(1))
        elif "end of document" in str(exc):
            line = max(1, len(text.splitlines()))
        else:  # pragma: no cover - tomllib always says where
            line = None
        problems.append(Problem(line, f"not valid TOML: {exc}"))
        return None
    where = _Locator(text)
    settings: dict[str, Any] = {}
    for key in data:
        if key not in _TOP_KEYS:
            problems.append(
                Problem(
                    where.line(key),
                    f"unknown key {key!r}{did_you_mean(key, _TOP_KEYS)}",
                )
            )
    strategy = data.get("strategy", "one_for_one")
    if strategy not in STRATEGIES:
        problems.append(
            Problem(
                where.line("strategy"),
                f"strategy must be one of {', '.join(STRATEGIES)}",
            )
        )
    else:
        settings["strategy"] = strategy
    shutdown = data.get("shutdown", "reverse")
    if shutdown not in ("reverse", "parallel"):
        problems.append(
            Problem(where.line("shutdown"), "shutdown must be 'reverse' or 'parallel'")
        )
    else:
        settings["shutdown"] = shutdown
    for key, kind in (
        ("max_restarts", "int"),
        ("max_seconds", "seconds"),
        ("shutdown_timeout", "seconds"),
    ):
        if key in data:
            value = _number(data[key], kind, f"{key}", where.line(key), problems)
            if value is not None:
                settings[key] = value
    table = data.get("processes", {})
    if not isinstance(table, dict) or not table:
        problems.append(
            Problem(
                where.line("processes"),
                "no processes defined ([processes.NAME] tables)",
            )
        )
        return None
    processes = []
    for name, entry in table.items():
        config = _process(root, name, entry, where, problems)
        if config is not None:
            processes.append(config)
    ordered = _start_order(processes, where, problems)
    return Fleet(path, tuple(ordered), **settings)


def _number(
    value: object, kind: str, what: str, line: int | None, problems: list[Problem]
) -> Any:
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(
                Problem(line, f"{what} must be a whole number >= 0, not {value!r}")
            )
            return None
        return value
    try:
        return check_seconds(what, value)
    except (TypeError, ValueError):
        problems.append(
            Problem(
                line, f"{what} must be a finite number of seconds >= 0, not {value!r}"
            )
        )
        return None


def _process(
    root: Path, name: str, entry: object, where: _Locator, problems: list[Problem]
) -> ProcessConfig | None:
    head = where.line("processes", name)

    def at(*key: str) -> int | None:
        return where.line("processes", name, *key)

    if not _NAME.match(name):
        problems.append(
            Problem(
                head, f"process name {name!r} may use letters, digits, '_', '-' and '.'"
            )
        )
    if not isinstance(entry, dict):
        problems.append(Problem(head, f"processes.{name} must be a table"))
        return None
    for key in entry:
        if key not in _PROCESS_KEYS:
            problems.append(
                Problem(
                    at(key),
                    f"processes.{name}: unknown key {key!r}"
                    f"{did_you_mean(key, _PROCESS_KEYS)}",
                )
            )
    argv: tuple[str, ...] = ()
    if ("cmd" in entry) == ("argv" in entry):
        problems.append(
            Problem(head, f"processes.{name}: give exactly one of 'cmd' or 'argv'")
        )
    elif "cmd" in entry:
        if not isinstance(entry["cmd"], str) or not entry["cmd"].strip():
            problems.append(
                Problem(at("cmd"), f"processes.{name}.cmd must be a non-empty string")
            )
        else:
            argv = ("/bin/sh", "-c", entry["cmd"])
    else:
        raw = entry["argv"]
        if (
            not isinstance(raw, list)
            or not raw
            or not all(isinstance(a, str) for a in raw)
        ):
            problems.append(
                Problem(
                    at("argv"),
                    f"processes.{name}.argv must be a non-empty list of strings",
                )
            )
        else:
            argv = tuple(raw)
    fields: dict[str, Any] = {"cwd": str(root)}
    restart = entry.get("restart", "permanent")
    if restart not in RESTART_TYPES:
        problems.append(
            Problem(
                at("restart"),
                f"processes.{name}.restart must be one of {', '.join(RESTART_TYPES)}",
            )
        )
    else:
        fields["restart"] = restart
    for key in ("ready_timeout", "kill_after"):
        if key in entry:
            value = _number(
                entry[key], "seconds", f"processes.{name}.{key}", at(key), problems
            )
            if value is not None:
                fields[key] = value
    if "cgroup" in entry:
        if isinstance(entry["cgroup"], bool):
            fields["cgroup"] = entry["cgroup"]
        else:
            problems.append(
                Problem(at("cgroup"), f"processes.{name}.cgroup must be true or false")
            )
    if "watchdog" in entry:
        value = _number(
            entry["watchdog"],
            "seconds",
            f"processes.{name}.watchdog",
            at("watchdog"),
            problems,
        )
        # 0 turns it off, as WatchdogSec=0 does.
        fields["watchdog"] = value or None
    if "ready" in entry:
        fields["ready"] = _ready(
            entry["ready"], f"processes.{name}.ready", at("ready"), problems
        )
    if "env" in entry:
        env = entry["env"]
        if not isinstance(env, dict) or not all(
            isinstance(v, (str, int, float, bool)) for v in env.values()
        ):
            problems.append(
                Problem(at("env"), f"processes.{name}.env must be a table of strings")
            )
        else:
            fields["env"] = {
                k: v if isinstance(v, str) else str(v) for k, v in env.items()
            }
    if "host" in entry:
        if isinstance(entry["host"], str) and entry["host"]:
            fields["host"] = entry["host"]
            fields["cwd"] = (
                entry.get("cwd") if isinstance(entry.get("cwd"), str) else None
            )
        else:
            problems.append(
                Problem(at("host"), f"processes.{name}.host must be a string")
            )
    if "ssh_options" in entry:
        value = entry["ssh_options"]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            fields["ssh_options"] = tuple(value)
        else:
            problems.append(
                Problem(
                    at("ssh_options"),
                    f"processes.{name}.ssh_options must be a list of strings",
                )
            )
    if "cwd" in entry and "host" not in fields:
        if not isinstance(entry["cwd"], str):
            problems.append(
                Problem(at("cwd"), f"processes.{name}.cwd must be a string")
            )
        else:
            fields["cwd"] = str((root / entry["cwd"]).resolve())
    if "depends_on" in entry:
        deps = entry["depends_on"]
        deps = [deps] if isinstance(deps, str) else deps
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            problems.append(
                Problem(
                    at("depends_on"),
                    f"processes.{name}.depends_on must be a list of process names",
                )
            )
        else:
            fields["depends_on"] = tuple(deps)
    if "backoff" in entry:
        fields["backoff"] = _backoff(
            entry["backoff"], f"processes.{name}.backoff", at("backoff"), problems
        )
    if argv:
        # What spawn() itself would refuse (a NUL in an argument, an env key
        # with '='): found by `check`, not first by `run`.
        try:
            SpawnOptions.check(argv, env=fields.get("env"), cwd=fields["cwd"])
        except (TypeError, ValueError) as exc:
            problems.append(Problem(head, f"processes.{name}: {exc}"))
    # Returned even with problems, so that its dependencies are checked too;
    # load() fails on any problem anyway.
    return ProcessConfig(
        name, argv, head, **{k: v for k, v in fields.items() if v is not None}
    )


def _ready(value: object, what: str, line: int | None, problems: list[Problem]) -> Any:
    if value == "notify":  # an output pattern "notify" is {output = "notify"}
        return ("notify", None)
    if isinstance(value, dict) and len(value) == 1:
        ((kind, value),) = value.items()
    else:
        kind = (
            "port"
            if isinstance(value, int) and not isinstance(value, bool)
            else "output"
        )
    if kind == "output" and isinstance(value, str) and value:
        try:
            re.compile(value)
        except re.error as exc:
            problems.append(Problem(line, f"{what}: not a regular expression ({exc})"))
            return None
        return ("output", value)
    if (
        kind == "port"
        and isinstance(value, int)
        and not isinstance(value, bool)
        and 0 < value < 65536
    ):
        return ("port", value)
    problems.append(
        Problem(
            line,
            f"{what} must be an output pattern (a string), a port (1-65535), "
            f"'notify', or a table {{output = ...}} / {{port = ...}}; not {value!r}",
        )
    )
    return None


def _backoff(
    value: object, what: str, line: int | None, problems: list[Problem]
) -> Backoff:
    if isinstance(value, dict) and not set(value) <= _BACKOFF_KEYS:
        for key in sorted(set(value) - _BACKOFF_KEYS):
            problems.append(
                Problem(
                    line,
                    f"{what}: unknown key {key!r}{did_you_mean(key, _BACKOFF_KEYS)}; "
                    f"it takes {', '.join(sorted(_BACKOFF_KEYS))}",
                )
            )
        return Backoff()
    if not isinstance(value, dict):
        problems.append(
            Problem(
                line, f"{what} must be a table of {', '.join(sorted(_BACKOFF_KEYS))}"
            )
        )
        return Backoff()
    try:
        return Backoff(**value)
    except (TypeError, ValueError) as exc:
        problems.append(Problem(line, f"{what}: {exc}"))
        return Backoff()


def _start_order(
    processes: list[ProcessConfig], where: _Locator, problems: list[Problem]
) -> list[ProcessConfig]:
    """*processes* with every one after what it depends on (file order
    otherwise); unknown and circular dependencies are problems."""
    by_name = {p.name: p for p in processes}
    for process in processes:
        for dependency in process.depends_on:
            if dependency not in by_name:
                problems.append(
                    Problem(
                        where.line("processes", process.name, "depends_on"),
                        f"processes.{process.name} depends on "
                        f"unknown process {dependency!r}"
                        f"{did_you_mean(dependency, by_name)}",
                    )
                )
    ordered: list[ProcessConfig] = []
    state: dict[str, str] = {}

    def visit(process: ProcessConfig, chain: list[str]) -> None:
        if state.get(process.name) == "done":
            return
        if state.get(process.name) == "visiting":
            cycle = [*chain[chain.index(process.name) :], process.name]
            problems.append(
                Problem(
                    where.line("processes", process.name, "depends_on"),
                    f"dependency cycle: {' -> '.join(cycle)}",
                )
            )
            return
        state[process.name] = "visiting"
        for dependency in process.depends_on:
            if dependency in by_name:
                visit(by_name[dependency], [*chain, process.name])
        state[process.name] = "done"
        ordered.append(process)

    for process in processes:
        visit(process, [])
    return ordered


@final
@attrs.frozen
class Instance:
    """One process to start: a configured process, or one of its ``-c`` copies.

    Attributes:
      name: the process's name, or ``name.N`` when there are several.
      config: the process it is an instance of.
      port: its ``PORT``.
    """

    name: str
    config: ProcessConfig
    port: int


def expand(
    fleet: Fleet,
    only: Sequence[str] = (),
    concurrency: Mapping[str, int] | None = None,
    port: int = DEFAULT_PORT,
) -> tuple[Instance, ...]:
    """The instances to start, in start order.

    Args:
      only: the processes to run (with what they depend on, however deep);
        none: all of them.
      concurrency: how many instances of a process (1 where not given; 0
        runs none). Several are named ``name.1``, ``name.2``...
      port: the base port. As in honcho, each process type takes a block of
        100 ports in turn -- the types named in *only*, in that order, else
        every type in file order; dependencies pulled in by *only* come
        after, in file order -- and its *n*-th instance gets the block's
        start plus *n* - 1. A type run 0 times still takes its block.

    Raises:
      ValueError: an unknown process name, a negative count, a port past
        65535.
    """
    counts = dict(concurrency or {})
    names = {config.name for config in fleet.processes}
    for name in [*only, *counts]:
        if name not in names:
            raise ValueError(
                f"no process {name!r} in {fleet.path}{did_you_mean(name, names)}"
            )
    for name, count in counts.items():
        if count < 0:
            raise ValueError(f"{name}={count}: a count must be 0 or more")
    in_file_order = sorted(fleet.processes, key=lambda c: (c.line is None, c.line or 0))
    if only:
        wanted = set(only)
        pending = list(only)
        while pending:
            config = fleet.process(pending.pop())
            assert config is not None
            for dependency in config.depends_on:
                if dependency not in wanted:
                    wanted.add(dependency)
                    pending.append(dependency)
        port_order = list(dict.fromkeys(only)) + [
            c.name for c in in_file_order if c.name in wanted and c.name not in only
        ]
    else:
        wanted = names
        port_order = [c.name for c in in_file_order]
    blocks = {name: port + 100 * index for index, name in enumerate(port_order)}
    instances: list[Instance] = []
    for config in fleet.processes:
        if config.name not in wanted:
            continue
        count = counts.get(config.name, 1)
        for index in range(count):
            name = config.name if count == 1 else f"{config.name}.{index + 1}"
            number = blocks[config.name] + index
            if not 0 < number < 65536:
                raise ValueError(
                    f"{name} would get PORT={number}: choose a base port "
                    f"(-p) that leaves room for every process"
                )
            instances.append(Instance(name, config, number))
    return tuple(instances)


def program_warnings(fleet: Fleet) -> list[Problem]:
    """Processes whose program is not there to run, as far as can be told
    before running anything.

    For ``argv``, its first word; for a shell command, the first word that a
    shell would run as a program (after ``VAR=value`` assignments), unless it
    is shell syntax, a builtin, or made by an expansion. A name without
    ``/`` is looked up on the ``PATH`` the process will get; a path, relative
    to the process's directory. These are warnings, not problems: an earlier
    process may create the program, and `run` names the process if it is
    still missing then.
    """
    found: list[Problem] = []
    for config in fleet.processes:
        program = _program(config)
        if program is None:
            continue
        env = {**os.environ, **fleet.env, **config.env}
        cwd = config.cwd or "."
        if "/" in program:
            there = os.path.join(cwd, program)
            missing = not (os.path.isfile(there) and os.access(there, os.X_OK))
        else:
            missing = shutil.which(program, path=env.get("PATH", os.defpath)) is None
        if missing:
            where = "on PATH" if "/" not in program else f"(in {cwd})"
            found.append(
                Problem(
                    config.line,
                    f"warning: {config.name}: program {program!r} not found {where}",
                )
            )
    return found


def _program(config: ProcessConfig) -> str | None:
    """The program *config* runs, if it can be told without running it."""
    if config.argv[:2] != ("/bin/sh", "-c") or len(config.argv) != 3:
        return config.argv[0] if config.argv else None
    try:
        words = shlex.split(config.argv[2], comments=True)
    except ValueError:
        return None
    for word in words:
        if re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*=.*", word, re.DOTALL):
            continue  # an assignment for the command that follows
        if word in _WRAPPERS:
            continue
        if word.startswith("-"):
            return None  # a wrapper's option: too much to follow
        if word in _SHELL_WORDS or re.search(r"[$`*?(){}<>|;&~\[\]]", word):
            return None
        return word
    return None


def process_env(
    instance: Instance, fleet: Fleet, base: Mapping[str, str]
) -> dict[str, str]:
    """The environment *instance* runs with, on top of *base*.

    Layers, later ones winning: *base* (``os.environ`` for a run, nothing for
    an export), the fleet's ``.env`` files, the instance's ``PORT``, the
    process's own ``env``. Then ``PYTHONUNBUFFERED=1`` unless some layer set
    it (a Python child's output reaches its prefixed lines as it is printed,
    not when a buffer fills), and ``TRIOPROC_PROCESS_NAME``.
    """
    env = {**base, **fleet.env, "PORT": str(instance.port), **instance.config.env}
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["TRIOPROC_PROCESS_NAME"] = instance.name
    return env
