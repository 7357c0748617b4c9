"""``trioproc.toml`` fleet files: tables and keys checked, every problem with
its line, processes in dependency order.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Final

from .._options import is_port
from .._supervision._policy import RESTART_TYPES, STRATEGIES, Backoff, check_seconds
from .._supervision._spec import ChildSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the dependency is declared for 3.10 only
    # The stub is installed only where Python 3.10 runs.
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

from ._config import Fleet, ProcessConfig, ready_check, shell_argv
from ._order import start_order
from ._problems import Problem, did_you_mean

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


def parse_toml(
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
    graph: dict[str, tuple[str, ...]] = {}
    configs: dict[str, ProcessConfig] = {}
    for name, entry in table.items():
        read = _process(root, name, entry, where, problems)
        if read is not None:
            graph[name], config = read
            if config is not None:
                configs[name] = config
    order = start_order(
        graph, lambda name: where.line("processes", name, "depends_on"), problems
    )
    return Fleet(path, tuple(configs[n] for n in order if n in configs), **settings)


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
) -> tuple[tuple[str, ...], ProcessConfig | None] | None:
    """*entry*'s dependencies, and its `ProcessConfig` unless it has
    problems; ``None`` if it is not a table at all."""
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
            argv = shell_argv(entry["cmd"])
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
    depends_on: tuple[str, ...] = fields.pop("depends_on", ())
    ready = fields.pop("ready", None)
    if not argv or not _NAME.match(name):
        # Its dependencies are checked even so; load() fails on any problem.
        return depends_on, None
    try:
        # What spawn() itself would refuse (a NUL in an argument, an env key
        # with '='): found by `check`, not first by `run`.
        spec = ChildSpec(
            name,
            argv=argv,
            ready=ready_check(ready),
            **{k: v for k, v in fields.items() if v is not None},
        )
    except (TypeError, ValueError) as exc:
        problems.append(Problem(head, f"processes.{name}: {exc}"))
        return depends_on, None
    return depends_on, ProcessConfig(name, spec, head, ready, depends_on)


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
    if kind == "port" and is_port(value):
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
