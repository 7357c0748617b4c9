"""``trioproc export``: a fleet written out for systemd or supervisord.

What honcho and foreman export, from the same Procfile or TOML, with what
trioproc knows about each process carried over where the other supervisor
has a word for it:

========================  ==============================  ====================
trioproc                  systemd                         supervisord
========================  ==============================  ====================
restart permanent         ``Restart=always``              ``autorestart=true``
restart transient         ``Restart=on-failure`` (+ a     ``autorestart=
                          signal counts as a failure)     unexpected``
restart temporary         ``Restart=no``                  ``autorestart=false``
backoff                   ``RestartSec=`` (its initial)   (none: supervisord's
                                                          own, growing)
max_restarts/max_seconds  ``StartLimitBurst=`` /          ``startretries=``
                          ``StartLimitIntervalSec=``
kill_after                ``TimeoutStopSec=``             ``stopwaitsecs=``
the process group         ``KillMode=control-group``      ``stopasgroup``,
                                                          ``killasgroup``
``.env`` + ``env`` +      ``Environment=``                ``environment=``
PORT
cwd                       ``WorkingDirectory=``           ``directory=``
depends_on                ``Wants=`` + ``After=``         ``priority=`` (start
                                                          order)
========================  ==============================  ====================

Each instance (``-c web=2``: ``web.1``, ``web.2``) is a unit or program of its
own, named ``APP-web-1``; ``APP.target`` (``[group:APP]``) holds them all.
Nothing here starts a process: the files are text, quoted for the reader
that will parse them (systemd's C-style quoting, ``%`` specifiers and ``$``
expansion; supervisord's ``%(...)s`` expansion and its way of splitting
``environment=``).
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Final

from ._fleet import Fleet, Instance, ProcessConfig, process_env

__all__ = ["EXPORTERS", "ExportError", "export", "supervisord", "systemd"]


class ExportError(ValueError):
    """Something in the fleet cannot be written in the chosen format."""


#: What export() writes: file name -> text; and notes for the user.
Rendered = tuple[dict[str, str], list[str]]


def _unit_name(app: str, name: str | None = None) -> str:
    """``APP-NAME`` (or ``APP``), with what a unit or program name cannot
    hold as ``-`` (as honcho does: ``web.1`` -> ``app-web-1``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", app if name is None else f"{app}-{name}")


def _dependencies(
    instance: Instance, instances: Sequence[Instance], app: str
) -> list[str]:
    """The names of the instances of what *instance* depends on."""
    wanted = set(instance.config.depends_on)
    return [_unit_name(app, i.name) for i in instances if i.config.name in wanted]


def _program(instance: Instance, env: dict[str, str], notes: list[str]) -> list[str]:
    """*instance*'s argv with its program as a full path where it can be
    found on the PATH it will get (systemd and supervisord search their own
    PATH, not the one ``trioproc run`` would have used)."""
    argv = list(instance.config.argv)
    if "/" in argv[0]:
        return argv
    found = shutil.which(argv[0], path=env.get("PATH", os.environ.get("PATH")))
    if found is None:
        notes.append(
            f"{instance.name}: {argv[0]!r} is not on PATH here; left for the "
            f"service manager to look up"
        )
        return argv
    return [found, *argv[1:]]


def _readiness_note(config: ProcessConfig, notes: list[str], what: str) -> None:
    if config.ready is not None:
        kind, value = config.ready
        notes.append(
            f"{config.name}: its ready check ({kind} {value!r}) has no {what} "
            f"equivalent; what depends on it starts once it has started"
        )


# --- systemd ---------------------------------------------------------------


def _c_escaped(text: str) -> str:
    """*text* inside systemd's double quotes: C escapes for ``\\``, ``"``
    and control characters, ``%%`` for a ``%`` (a specifier otherwise)."""
    out = []
    for char in text:
        if char in '\\"':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 32 or ord(char) == 127:
            out.append(f"\\x{ord(char):02x}")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _exec_word(word: str) -> str:
    """One word of ``ExecStart=``: quoted, and ``$`` doubled (systemd
    expands ``$NAME`` there from the unit's environment)."""
    return _c_escaped(word).replace("$", "$$")


def _timespan(seconds: float, *, zero_means_forever: bool = False) -> str:
    """*seconds* as a systemd time span, in milliseconds. Where 0 means "no
    timeout" to systemd, 1 ms stands for our 0 (at once)."""
    millis = math.ceil(seconds * 1000)
    if zero_means_forever:
        millis = max(millis, 1)
    return f"{millis}ms"


def _service_type_lines(config: ProcessConfig) -> list[str]:
    """``Type=`` (and ``WatchdogSec=``) for *config*.

    A process with ``ready = "notify"`` tells systemd itself through
    ``$NOTIFY_SOCKET`` (``Type=notify``); others are ``Type=simple``, where
    started is as ready as systemd can tell. ``watchdog`` becomes
    ``WatchdogSec=``.
    """
    notify = config.ready is not None and config.ready[0] == "notify"
    lines = ["Type=notify" if notify else "Type=simple"]
    if config.watchdog is not None:
        lines.append(f"WatchdogSec={config.watchdog:g}")
    return lines


_RESTART: Final = {
    "permanent": "always",
    "transient": "on-failure",
    "temporary": "no",
}


def systemd(
    fleet: Fleet, instances: Sequence[Instance], *, app: str, user: str | None
) -> Rendered:
    """``APP.target`` and one ``APP-NAME.service`` per instance."""
    files: dict[str, str] = {}
    notes: list[str] = []
    units = [_unit_name(app, i.name) + ".service" for i in instances]
    target = f"{_unit_name(app)}.target"
    files[target] = _lines(
        "[Unit]",
        f"Description={_plain(app)}: the trioproc fleet of {_plain(fleet.path.name)}",
        f"Wants={' '.join(units)}" if units else None,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    )
    for instance in instances:
        config = instance.config
        env = process_env(instance, fleet, {})
        argv = _program(instance, env, notes)
        _readiness_note(config, notes, "systemd")
        deps = " ".join(d + ".service" for d in _dependencies(instance, instances, app))
        if "\n" in (config.cwd or ""):
            raise ExportError(f"{instance.name}: a newline in its directory")
        files[_unit_name(app, instance.name) + ".service"] = _lines(
            "[Unit]",
            f"Description={_plain(app)}: {_plain(instance.name)}",
            f"PartOf={target}",
            f"Wants={deps}" if deps else None,
            f"After={deps}" if deps else None,
            # More than max_restarts restarts within max_seconds: given up.
            f"StartLimitIntervalSec={_timespan(fleet.max_seconds)}",
            f"StartLimitBurst={fleet.max_restarts + 1}",
            "",
            "[Service]",
            *_service_type_lines(config),
            "ExecStart=" + " ".join(_exec_word(word) for word in argv),
            f"WorkingDirectory={(config.cwd or '/').replace('%', '%%')}",
            f"User={_plain(user)}" if user else None,
            *(f"Environment={_c_escaped(f'{k}={v}')}" for k, v in env.items()),
            f"Restart={_RESTART[config.restart]}",
            # systemd counts these signals as a clean end; we count any
            # signal as a failure.
            "RestartForceExitStatus=SIGHUP SIGINT SIGTERM SIGPIPE"
            if config.restart == "transient"
            else None,
            f"RestartSec={_timespan(config.backoff.initial)}",
            f"TimeoutStopSec={_timespan(config.kill_after, zero_means_forever=True)}",
            "KillMode=control-group",
            "StandardInput=null",
            f"SyslogIdentifier={_unit_name(app, instance.name)}",
            "",
            "[Install]",
            f"WantedBy={target}",
        )
    return files, notes


def _plain(text: str) -> str:
    """*text* where systemd reads a value as it is: ``%`` doubled, and no
    line break."""
    if "\n" in text:
        raise ExportError(f"a newline in {text!r}")
    return text.replace("%", "%%")


def _lines(*lines: str | None) -> str:
    return "\n".join(line for line in lines if line is not None) + "\n"


# --- supervisord -------------------------------------------------------------

_AUTORESTART: Final = {
    "permanent": "true",
    "transient": "unexpected",
    "temporary": "false",
}


def _ini(text: str, what: str) -> str:
    """*text* as an ini value supervisord reads back: ``%%`` for ``%`` (it
    expands ``%(name)s``), and on one line."""
    if "\n" in text or "\r" in text:
        raise ExportError(f"{what}: supervisord cannot hold a line break here")
    return text.replace("%", "%%")


def _environment(env: dict[str, str], name: str) -> str:
    """``environment=``: ``KEY="value",...``. supervisord splits it with a
    non-POSIX ``shlex`` (no escapes) and strips quotes from both ends of
    each value, so a value is quoted with a quote it does not contain, and
    may neither start nor end with one."""
    pairs = []
    for key, value in env.items():
        quote = '"' if '"' not in value else "'"
        if quote in value or (value and (value[0] in "'\"" or value[-1] in "'\"")):
            raise ExportError(
                f"{name}: supervisord cannot hold {key}={value!r} in environment="
            )
        pairs.append(f"{key}={quote}{value}{quote}")
    return _ini(",".join(pairs), f"{name}: environment")


def supervisord(
    fleet: Fleet,
    instances: Sequence[Instance],
    *,
    app: str,
    user: str | None,
    log: str | None,
) -> Rendered:
    """``APP.conf``: a ``[program:APP-NAME]`` per instance and ``[group:APP]``."""
    notes: list[str] = []
    log = log or f"/var/log/{app}"
    sections: list[str] = []
    names = []
    for index, instance in enumerate(instances):
        config = instance.config
        name = _unit_name(app, instance.name)
        names.append(name)
        env = process_env(instance, fleet, {})
        argv = _program(instance, env, notes)
        _readiness_note(config, notes, "supervisord")
        sections.append(
            _lines(
                f"[program:{name}]",
                f"command={_ini(shlex.join(argv), f'{instance.name}: its command')}",
                f"directory={_ini(config.cwd or '/', f'{instance.name}: directory')}",
                f"environment={_environment(env, instance.name)}",
                "autostart=true",
                f"autorestart={_AUTORESTART[config.restart]}",
                "exitcodes=0",
                # Up at once counts as started: a one-shot task that exits 0
                # is done, not "exited too quickly".
                "startsecs=0",
                f"startretries={fleet.max_restarts}",
                "stopsignal=TERM",
                f"stopwaitsecs={max(1, math.ceil(config.kill_after))}",
                "stopasgroup=true",
                "killasgroup=true",
                # Lower starts first and stops last: the start order.
                f"priority={100 + index}",
                f"user={_ini(user, 'user')}" if user else None,
                f"stdout_logfile={_ini(log, 'log')}/{name}.log",
                f"stderr_logfile={_ini(log, 'log')}/{name}.error.log",
            )
        )
    sections.append(_lines(f"[group:{_unit_name(app)}]", f"programs={','.join(names)}"))
    return {f"{_unit_name(app)}.conf": "\n".join(sections)}, notes


EXPORTERS: Final[dict[str, Callable[..., Rendered]]] = {
    "systemd": lambda fleet, instances, *, app, user, log: systemd(
        fleet, instances, app=app, user=user
    ),
    "supervisord": supervisord,
}


def export(
    kind: str,
    fleet: Fleet,
    instances: Sequence[Instance],
    location: Path,
    *,
    app: str,
    user: str | None = None,
    log: str | None = None,
) -> tuple[list[Path], list[str]]:
    """Write *fleet*'s *instances* as *kind* into *location* (made if need
    be); return the files written and notes for the user.

    Raises:
      ExportError: a value the format cannot hold (nothing is written).
      OSError: a file cannot be written.
    """
    files, notes = EXPORTERS[kind](fleet, instances, app=app, user=user, log=log)
    location.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = location / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written, list(_unique(notes))


def _unique(items: Iterable[str]) -> Iterable[str]:
    return dict.fromkeys(items)
