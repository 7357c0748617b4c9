"""Warnings for programs (and directories) that are not there to run in,
found before running anything."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from typing import Final

from ._config import Fleet, ProcessConfig
from ._problems import Problem

#: Shell syntax and builtins: a command starting with one is not checked.
_SHELL_WORDS: Final = frozenset(
    {"if", "then", "else", "elif", "fi", "case", "esac", "for", "while"}
    | {"until", "do", "done", "in", "function", "select", "time", "{", "}"}
    | {"!", "[[", "]]", ".", "source", "eval", "cd", "export", "set", "unset"}
    | {"trap", "ulimit", "umask", "read", "wait", "alias", "builtin", "exit"}
)
#: Words that run the word after them (their options are not followed).
_WRAPPERS: Final = frozenset({"exec", "command", "nohup", "env"})


def program_warnings(fleet: Fleet) -> list[Problem]:
    """Processes whose program is not there to run, as far as can be told
    before running anything.

    For ``argv``, its first word; for a shell command, the first word that a
    shell would run as a program (after ``VAR=value`` assignments), unless it
    is shell syntax, a builtin, or made by an expansion. A name without
    ``/`` is looked up on the ``PATH`` the process will get; a path, relative
    to the process's directory, which must exist too. A process on another
    host (``host =``) is not checked: its program and directory are there.
    These are warnings,
    not problems: an earlier process may create the program or the
    directory, and `run` names the process if it is still missing then.
    """
    found: list[Problem] = []
    for config in fleet.processes:
        if config.host is not None:
            continue  # its program and directory are on another host
        if config.cwd is not None and not os.path.isdir(config.cwd):
            found.append(
                Problem(
                    config.line,
                    f"warning: {config.name}: directory {config.cwd!r} "
                    "(its cwd) does not exist",
                )
            )
            continue  # its program would be looked for there
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
