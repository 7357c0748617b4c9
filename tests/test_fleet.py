"""Fleet files, parsed and checked without running anything."""

from __future__ import annotations

from pathlib import Path

import pytest

import trioproc
from trioproc._fleet import (
    FleetError,
    expand,
    find_fleet_file,
    load,
    parse_dotenv,
    program_warnings,
    read_dotenv,
)


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


def test_procfile_processes_are_transient_shell_commands(tmp_path: Path) -> None:
    """A Procfile line is `name: command` (honcho's names, `-` included),
    run by the shell, in the file's dir; a clean exit is done (transient),
    so that a one-shot `release:` line is not restarted until the fleet
    gives up."""
    path = fleet_file(
        tmp_path, "web: serve --port 80\nmy-worker:python w.py\n", "Procfile"
    )
    web, worker = load(path).processes
    assert web.argv == ("/bin/sh", "-c", "serve --port 80")
    assert (worker.name, worker.argv) == ("my-worker", ("/bin/sh", "-c", "python w.py"))
    assert web.restart == worker.restart == "transient"
    assert web.line == 1
    empty = fleet_file(tmp_path, "# nothing here\n", "Procfile.empty")
    assert problems(empty) == [(None, "no processes defined")]


def test_dotenv_is_read_as_honcho_reads_it() -> None:
    """shlex-split NAME=value lines, `export NAME=value` too; comments are
    skipped, other lines reported by number; \\n and \\t in values become
    newline and tab."""
    text = (
        "# comment\n"
        "PLAIN=value\n"
        "QUOTED='two words'\n"
        'DOUBLE="a\\tb"\n'
        "SPACED = around\n"
        "export EXPORTED=1\n"
        "1BAD=x\n"
        "NOEQUALS\n"
        "UNCLOSED='oops\n"
        "ESCAPES='x\\ny'\n"
        "\n"
        "EMPTY=\n"
    )
    expected = {
        "PLAIN": "value",
        "QUOTED": "two words",
        "DOUBLE": "a\tb",
        "SPACED": "around",
        "EXPORTED": "1",
        "ESCAPES": "x\ny",
        "EMPTY": "",
    }
    assert parse_dotenv(text) == expected
    values, unread = read_dotenv(text)
    assert values == expected
    assert [(p.line, p.message.split(":")[0]) for p in unread] == [
        (7, "not read"),
        (8, "not read"),
        (9, "not read"),
    ]
    assert "'1BAD' is not a variable name" in unread[0].message
    assert "not a NAME=value line: 'NOEQUALS'" in unread[1].message
    assert "No closing quotation" in unread[2].message


def test_env_files_replace_the_default_and_layer(tmp_path: Path) -> None:
    """.env beside the file; or instead (as honcho's -e) the files given,
    later ones winning; their unread lines are warnings naming the file."""
    dotenv = fleet_file(tmp_path, "A=1\nB=1\nnonsense\n", ".env")
    extra = fleet_file(tmp_path, "B=2\nC=2\n", "extra.env")
    path = fleet_file(tmp_path, "x: true\n", "Procfile")
    fleet = load(path)
    assert dict(fleet.env) == {"A": "1", "B": "1"}
    assert [w.render(path) for w in fleet.warnings] == [
        f"{dotenv}:3: not read: not a NAME=value line: 'nonsense'"
    ]
    assert dict(load(path, [extra]).env) == {"B": "2", "C": "2"}
    assert dict(load(path, [dotenv, extra]).env) == {"A": "1", "B": "2", "C": "2"}


def test_finding_the_fleet_file(tmp_path: Path) -> None:
    """trioproc.toml wins over Procfile; neither: None."""
    assert find_fleet_file(tmp_path) is None
    fleet_file(tmp_path, "x: true\n", "Procfile")
    assert find_fleet_file(tmp_path) == tmp_path / "Procfile"
    fleet_file(tmp_path, "[processes.x]\ncmd='a'\n")
    assert find_fleet_file(tmp_path) == tmp_path / "trioproc.toml"


def test_misspelled_keys_get_a_suggestion(tmp_path: Path) -> None:
    """An unknown key, backoff field or dependency close to a known one is
    answered with "did you mean"."""
    path = fleet_file(
        tmp_path,
        "stratgy = 'one_for_all'\n[processes.web]\ncmd = 'a'\nredy = 'x'\n"
        "depends_on = ['dbb']\nbackoff = { intial = 1 }\n[processes.db]\ncmd = 'b'\n",
    )
    found = problems(path)
    assert (1, "unknown key 'stratgy' (did you mean 'strategy'?)") in found
    assert (4, "processes.web: unknown key 'redy' (did you mean 'ready'?)") in found
    assert (
        5,
        "processes.web depends on unknown process 'dbb' (did you mean 'db'?)",
    ) in found
    assert any(
        line == 6 and "unknown key 'intial' (did you mean 'initial'?)" in message
        for line, message in found
    ), found
    assert [line for line, _ in found] == sorted(line or 0 for line, _ in found)


def test_expand_gives_ports_as_honcho_does(tmp_path: Path) -> None:
    """PORT: base + 100 per process type in file order, + 1 per instance;
    -c web=2 names web.1 and web.2; a type run 0 times keeps its block;
    named processes take the blocks in the order named, as in honcho."""
    path = fleet_file(tmp_path, "web: a\nworker: b\nclock: c\n", "Procfile")
    fleet = load(path)
    got = [(i.name, i.port) for i in expand(fleet, concurrency={"web": 2})]
    assert got == [("web.1", 5000), ("web.2", 5001), ("worker", 5100), ("clock", 5200)]
    got = [
        (i.name, i.port) for i in expand(fleet, concurrency={"worker": 0}, port=7000)
    ]
    assert got == [("web", 7000), ("clock", 7200)]
    got = [(i.name, i.port) for i in expand(fleet, ["clock", "web"])]
    assert got == [("web", 5100), ("clock", 5000)]
    with pytest.raises(ValueError, match=r"no process 'wbe' .*did you mean 'web'"):
        expand(fleet, ["wbe"])
    with pytest.raises(ValueError, match="a count must be 0 or more"):
        expand(fleet, concurrency={"web": -1})
    with pytest.raises(ValueError, match="PORT=65600"):
        expand(fleet, port=65400)


def test_expand_pulls_in_dependencies(tmp_path: Path) -> None:
    """Naming a process runs what it depends on too, in start order; the
    dependencies' port blocks come after the named ones, in file order."""
    path = fleet_file(
        tmp_path,
        "[processes.web]\ncmd = 'a'\ndepends_on = ['api']\n"
        "[processes.api]\ncmd = 'b'\ndepends_on = ['db']\n"
        "[processes.db]\ncmd = 'c'\n[processes.other]\ncmd = 'd'\n",
    )
    got = [(i.name, i.port) for i in expand(load(path), ["web"])]
    assert got == [("db", 5200), ("api", 5100), ("web", 5000)]


def test_programs_that_are_not_there_are_warned_about(tmp_path: Path) -> None:
    """check warns, naming the process and its line, about a program that is
    not on PATH or not at its path; shell syntax is left alone."""
    path = fleet_file(
        tmp_path,
        "ok: exec sleep 1\n"
        "missing: FOO=1 exec no-such-program-x --flag\n"
        "relative: ./not-here\n"
        "shell: if true; then no-such; fi\n"
        "expanded: $PROGRAM run\n",
        "Procfile",
    )
    found = [(w.line, w.message) for w in program_warnings(load(path))]
    assert found == [
        (2, "warning: missing: program 'no-such-program-x' not found on PATH"),
        (
            3,
            "warning: relative: program './not-here' not found "
            f"(in {tmp_path.resolve()})",
        ),
    ]
    toml = fleet_file(
        tmp_path, "[processes.x]\nargv = ['nope-nope']\n[processes.y]\nargv = ['sh']\n"
    )
    assert [(w.line, w.message) for w in program_warnings(load(toml))] == [
        (1, "warning: x: program 'nope-nope' not found on PATH")
    ]


def test_a_cwd_that_is_not_there_is_warned_about(tmp_path: Path) -> None:
    """check warns, naming the process and its line, about a cwd that does
    not exist (run would fail to start that process)."""
    (tmp_path / "there").mkdir()
    toml = fleet_file(
        tmp_path,
        "[processes.gone]\nargv = ['sh']\ncwd = 'not-there'\n"
        "[processes.ok]\nargv = ['sh']\ncwd = 'there'\n"
        # On another host: its directory and program are looked for there.
        "[processes.remote]\nargv = ['only-there']\ncwd = '/srv/app'\n"
        "host = 'db.example'\n",
    )
    assert [(w.line, w.message) for w in program_warnings(load(toml))] == [
        (
            1,
            f"warning: gone: directory '{tmp_path.resolve() / 'not-there'}' "
            "(its cwd) does not exist",
        )
    ]


def test_the_fleet_gives_each_instance_its_childspec(tmp_path: Path) -> None:
    """``trioproc run`` supervises what the fleet gives it: each instance's
    `ChildSpec`, named for the instance, with its process's settings (checked
    when the file was read) and the environment layered as the CLI documents
    (base, .env, PORT, the process's env, PYTHONUNBUFFERED, the name)."""
    path = fleet_file(
        tmp_path,
        "[processes.web]\nargv = ['srv', '-v']\nkill_after = 2\nready = 8000\n"
        "env = { A = '1' }\n",
    )
    fleet_file(tmp_path, "B=2\n", ".env")
    fleet = load(path)
    (web,) = fleet.processes
    assert isinstance(web.spec, trioproc.ChildSpec)
    _, second = expand(fleet, concurrency={"web": 2})
    spec = second.spec(fleet, {"HOME": "/h"}, cgroup=False)
    assert (spec.name, list(spec.argv or []), spec.kill_after, spec.cgroup) == (
        "web.2",
        ["srv", "-v"],
        2.0,
        False,
    )
    assert spec.ready is not None
    assert dict(spec.env or {}) == {
        "HOME": "/h",
        "B": "2",
        "PORT": "5001",
        "A": "1",
        "PYTHONUNBUFFERED": "1",
        "TRIOPROC_PROCESS_NAME": "web.2",
    }


def test_ports_are_checked_in_one_place() -> None:
    """-p, ``ready = PORT`` and each instance's PORT accept exactly 1..65535."""
    from trioproc._options import is_port

    assert [is_port(v) for v in (1, 65535, 0, 65536, True, "80", 80.0)] == [
        True,
        True,
        False,
        False,
        False,
        False,
        False,
    ]
