"""Fleet files, parsed and checked without running anything."""

from __future__ import annotations

from pathlib import Path

import pytest

import trioproc
from trioproc._fleet import FleetError, find_fleet_file, load, parse_dotenv


def fleet_file(tmp_path: Path, text: str, name: str = "trioproc.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path) -> list[tuple[int | None, str]]:
    with pytest.raises(FleetError) as info:
        load(path)
    return [(p.line, p.message) for p in info.value.problems]


def test_a_full_toml_fleet_loads_with_every_setting(tmp_path: Path) -> None:
    """Every documented key is read into the fleet and its processes."""
    (tmp_path / "sub").mkdir()
    path = fleet_file(
        tmp_path,
        """
strategy = "rest_for_one"
max_restarts = 7
max_seconds = 12.5
shutdown = "parallel"
shutdown_timeout = 9

[processes.db]
argv = ["postgres", "-D", "data"]
ready = { port = 5432 }
ready_timeout = 30
kill_after = 20
restart = "transient"
env = { PGPORT = 5432, DEBUG = true }
cwd = "sub"
backoff = { initial = 1, factor = 3, cap = 60, jitter = 0.2, reset_after = 100 }

[processes.web]
cmd = "gunicorn app"
ready = "Listening at"
depends_on = "db"
""",
    )
    fleet = load(path)
    assert (fleet.strategy, fleet.max_restarts, fleet.max_seconds) == (
        "rest_for_one",
        7,
        12.5,
    )
    assert (fleet.shutdown, fleet.shutdown_timeout) == ("parallel", 9.0)
    db, web = fleet.processes
    assert db.argv == ("postgres", "-D", "data")
    assert db.ready == ("port", 5432)
    assert (db.ready_timeout, db.kill_after, db.restart) == (30.0, 20.0, "transient")
    assert dict(db.env) == {"PGPORT": "5432", "DEBUG": "True"}
    assert db.cwd == str((tmp_path / "sub").resolve())
    assert db.backoff == trioproc.Backoff(1, 3, 60, 0.2, 100)
    assert web.argv == ("/bin/sh", "-c", "gunicorn app")
    assert web.ready == ("output", "Listening at")
    assert web.depends_on == ("db",)
    assert web.cwd == str(tmp_path.resolve())  # the file's directory by default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[processes.x]\nargv = []\n", (2, "argv must be a non-empty list")),
        ("[processes.x]\ncmd = ''\n", (2, "cmd must be a non-empty string")),
        (
            "[processes.x]\ncmd = 'a'\nready = 70000\n",
            (3, "ready must be an output pattern"),
        ),
        (
            "[processes.x]\ncmd = 'a'\nready = '(unclosed'\n",
            (3, "not a regular expression"),
        ),
        (
            "[processes.x]\ncmd = 'a'\nready = { port = 'eighty' }\n",
            (3, "ready must be"),
        ),
        (
            "[processes.x]\ncmd = 'a'\nenv = { A = [1] }\n",
            (3, "env must be a table of strings"),
        ),
        ("[processes.x]\ncmd = 'a'\ncwd = 3\n", (3, "cwd must be a string")),
        (
            "[processes.x]\ncmd = 'a'\ndepends_on = [1]\n",
            (3, "depends_on must be a list"),
        ),
        ("[processes.x]\ncmd = 'a'\nbackoff = 3\n", (3, "backoff must be a table of")),
        (
            "[processes.x]\ncmd = 'a'\nbackoff = { factor = 0.5 }\n",
            (3, "factor must be >= 1"),
        ),
        (
            "[processes.x]\ncmd = 'a'\nkill_after = -1\n",
            (3, "kill_after must be a finite number"),
        ),
        (
            "[processes.x]\ncmd = 'a'\nkill_after = inf\n",
            (3, "kill_after must be a finite number"),
        ),
        (
            "max_seconds = nan\n[processes.x]\ncmd = 'a'\n",
            (1, "max_seconds must be a finite number"),
        ),
        (
            "[processes.x]\ncmd = 'a'\nenv = { 'A=B' = 'c' }\n",
            (1, "env key 'A=B' must be non-empty and contain no '='"),
        ),
        (
            '[processes.x]\nargv = ["echo", "a\\u0000b"]\n',
            (1, "processes.x: argv"),
        ),
        ("[processes.'bad name']\ncmd = 'a'\n", (1, "process name 'bad name' may use")),
        ("[processes]\nx = 3\n", (2, "processes.x must be a table")),
        (
            "strategy = 'chaos'\n[processes.x]\ncmd = 'a'\n",
            (1, "strategy must be one of"),
        ),
        ("shutdown = 'never'\n[processes.x]\ncmd = 'a'\n", (1, "shutdown must be")),
        (
            "max_seconds = 'a while'\n[processes.x]\ncmd = 'a'\n",
            (1, "max_seconds must be"),
        ),
        ("max_restarts = 1\n", (None, "no processes defined")),
    ],
)
def test_toml_problems_are_found_with_their_line(
    tmp_path: Path, text: str, expected: tuple[int | None, str]
) -> None:
    """Each bad value is reported on the line that sets it."""
    line, message = expected
    found = problems(fleet_file(tmp_path, text))
    assert any(at == line and message in m for at, m in found), found


def test_dotted_keys_and_header_comments_are_located(tmp_path: Path) -> None:
    """The locator finds dotted keys and tables with comments."""
    path = fleet_file(
        tmp_path,
        "processes.b.cmd = 'b'\n[processes.a]  # first\ncmd = 'a'\n"
        "[processes.c]\ncmd = 'c'\nsurprise = 1\n",
    )
    assert problems(path) == [(6, "processes.c: unknown key 'surprise'")]


def test_procfile_processes_are_permanent_shell_commands(tmp_path: Path) -> None:
    """A Procfile line is `name: command`, run by the shell, in the file's dir."""
    path = fleet_file(
        tmp_path, "web: serve --port 80\nworker:python w.py\n", "Procfile"
    )
    web, worker = load(path).processes
    assert web.argv == ("/bin/sh", "-c", "serve --port 80")
    assert worker.argv == ("/bin/sh", "-c", "python w.py")
    assert web.restart == "permanent"
    assert web.line == 1
    empty = fleet_file(tmp_path, "# nothing here\n", "Procfile.empty")
    assert problems(empty) == [(None, "no processes defined")]


def test_dotenv_is_read_as_honcho_reads_it() -> None:
    """shlex-split NAME=value lines; comments and other lines are skipped;
    \\n and \\t in values become newline and tab."""
    text = (
        "# comment\n"
        "PLAIN=value\n"
        "QUOTED='two words'\n"
        'DOUBLE="a\\tb"\n'
        "SPACED = around\n"
        "export SKIPPED=1\n"
        "1BAD=x\n"
        "NOEQUALS\n"
        "UNCLOSED='oops\n"
        "ESCAPES='x\\ny'\n"
    )
    assert parse_dotenv(text) == {
        "PLAIN": "value",
        "QUOTED": "two words",
        "DOUBLE": "a\tb",
        "SPACED": "around",
        "ESCAPES": "x\ny",
    }


def test_env_files_layer(tmp_path: Path) -> None:
    """.env beside the file, then --env files, later ones winning."""
    fleet_file(tmp_path, "A=1\nB=1\n", ".env")
    extra = fleet_file(tmp_path, "B=2\n", "extra.env")
    path = fleet_file(tmp_path, "x: true\n", "Procfile")
    assert dict(load(path, [extra]).env) == {"A": "1", "B": "2"}


def test_finding_the_fleet_file(tmp_path: Path) -> None:
    """trioproc.toml wins over Procfile; neither: None."""
    assert find_fleet_file(tmp_path) is None
    fleet_file(tmp_path, "x: true\n", "Procfile")
    assert find_fleet_file(tmp_path) == tmp_path / "Procfile"
    fleet_file(tmp_path, "[processes.x]\ncmd='a'\n")
    assert find_fleet_file(tmp_path) == tmp_path / "trioproc.toml"
