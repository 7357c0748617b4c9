"""`trioproc export systemd|supervisord DIR`, run for real, and the files
read back the way systemd and supervisord read them."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import PY
from .test_cli import trioproc_command, write

#: A value with everything a unit file or an ini file treats specially.
WEIRD = "a \"q\" 'b' %d $X \\ end\nline2\tand\x01"


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    """The path of systemd-analyze, installed with apt-get if it is missing
    and this is root on a Debian-like system."""
    found = shutil.which("systemd-analyze")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update"], capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "systemd"], capture_output=True, timeout=900
        )
        found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is absent and cannot be installed (not root)")
    return found


def systemd_words(value: str) -> list[str]:
    """*value* split as systemd splits ``ExecStart=`` and ``Environment=``:
    ``%%`` is a ``%``, words are separated by spaces, double quotes group
    and take C escapes."""
    value = value.replace("%%", "%")
    words: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == " ":
            i += 1
            continue
        word = ""
        while i < len(value) and value[i] != " ":
            if value[i] != '"':
                word += value[i]
                i += 1
                continue
            i += 1
            while value[i] != '"':
                if value[i] == "\\":
                    escape = value[i + 1]
                    if escape == "x":
                        word += chr(int(value[i + 2 : i + 4], 16))
                        i += 4
                        continue
                    word += {"n": "\n", "t": "\t"}.get(escape, escape)
                    i += 2
                    continue
                word += value[i]
                i += 1
            i += 1
        words.append(word)
    return words


def unit(path: Path) -> dict[str, list[str]]:
    """A unit file's ``Key=value`` lines (any section), values in order."""
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("[", "#")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def environment(service: dict[str, list[str]]) -> dict[str, str]:
    pairs = [systemd_words(v)[0] for v in service["Environment"]]
    return dict(pair.split("=", 1) for pair in pairs)


def fleet(tmp_path: Path) -> Path:
    """A TOML fleet: db (argv with quotes, %, $; an awkward env value), web
    (depends on db), once (temporary); and a .env."""
    write(tmp_path / ".env", "SECRET=s3cret\n")
    argv = [PY, "-c", "print('50% \"done\" $HOME \\\\ back')", "two words"]
    return write(
        tmp_path / "trioproc.toml",
        "max_restarts = 5\nmax_seconds = 20\n\n"
        f"[processes.db]\nargv = {json.dumps(argv)}\nkill_after = 2.5\n"
        f"env = {{ WEIRD = {json.dumps(WEIRD)} }}\nbackoff = {{ initial = 0.25 }}\n\n"
        "[processes.web]\ncmd = 'echo web $PORT'\ndepends_on = ['db']\n"
        "restart = 'transient'\nready = 'notify'\nwatchdog = 10\n\n"
        "[processes.once]\ncmd = 'true'\nrestart = 'temporary'\nkill_after = 0\n",
    )


def test_systemd_units_verify_and_say_what_the_fleet_says(
    tmp_path: Path, systemd_analyze: str
) -> None:
    """A .target wanting one .service per instance; each with Restart= from
    its restart type, RestartSec= from its backoff, TimeoutStopSec= from
    kill_after, Type=notify and WatchdogSec= from ready = "notify" and
    watchdog, KillMode=control-group, its environment (.env, env, PORT)
    quoted so that systemd reads back the exact values, its directory, and
    Wants=/After= its dependencies. systemd-analyze verify accepts them
    without a warning."""
    fleet(tmp_path)
    out = tmp_path / "units"
    result = trioproc_command(
        "export", "systemd", str(out), "-c", "web=2", "-p", "8000", "-a", "shop",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    services = ["shop-db.service", "shop-once.service"]
    services += ["shop-web-1.service", "shop-web-2.service"]
    assert names == sorted([*services, "shop.target"])
    verify = subprocess.run(
        [systemd_analyze, "verify", *(str(out / n) for n in names)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (verify.returncode, verify.stderr) == (0, "")

    target = unit(out / "shop.target")
    assert sorted(target["Wants"][0].split()) == sorted(services)
    assert target["WantedBy"] == ["multi-user.target"]

    db = unit(out / "shop-db.service")
    assert [s.replace("$$", "$") for s in systemd_words(db["ExecStart"][0])] == [
        PY,
        "-c",
        "print('50% \"done\" $HOME \\\\ back')",
        "two words",
    ]
    # "$$HOME": systemd itself expands $HOME in ExecStart=.
    assert not re.search(r"(?<!\$)\$HOME", db["ExecStart"][0].replace("$$", ""))
    assert environment(db) == {
        "SECRET": "s3cret",
        "PORT": "8000",
        "WEIRD": WEIRD,
        "PYTHONUNBUFFERED": "1",
        "TRIOPROC_PROCESS_NAME": "db",
    }
    assert db["Restart"] == ["always"]
    assert db["RestartSec"] == ["250ms"]
    assert db["TimeoutStopSec"] == ["2500ms"]
    assert db["KillMode"] == ["control-group"]
    assert db["WorkingDirectory"] == [str(tmp_path.resolve())]
    assert (db["StartLimitBurst"], db["StartLimitIntervalSec"]) == (["6"], ["20000ms"])
    assert db["Type"] == ["simple"]
    assert db["PartOf"] == db["WantedBy"] == ["shop.target"]
    assert "Wants" not in db

    for number in (1, 2):
        web = unit(out / f"shop-web-{number}.service")
        assert web["Wants"] == web["After"] == ["shop-db.service"]
        assert web["Restart"] == ["on-failure"]
        assert web["Type"] == ["notify"]  # ready = "notify"
        assert web["WatchdogSec"] == ["10"]
        env = environment(web)
        assert env["PORT"] == str(8100 + number - 1)
        assert env["TRIOPROC_PROCESS_NAME"] == f"web.{number}"
    once = unit(out / "shop-once.service")
    assert once["Restart"] == ["no"]
    assert once["TimeoutStopSec"] == ["1ms"]  # 0 would mean "never" to systemd


def test_a_procfile_exports_as_honcho_names_it(
    tmp_path: Path, systemd_analyze: str
) -> None:
    """From a Procfile, without -a: units named after the app's directory,
    run by /bin/sh -c, transient (a clean exit is done), User= from -u;
    the ready check of a TOML process that systemd cannot run is noted."""
    app = tmp_path / "my app"
    app.mkdir()
    write(app / "Procfile", "web: exec python3 -m http.server $PORT\n")
    out = tmp_path / "units"
    result = trioproc_command(
        "export", "systemd", str(out), "-d", str(app), "-u", "www-data", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    web = unit(out / "my-app-web.service")
    assert systemd_words(web["ExecStart"][0]) == [
        "/bin/sh",
        "-c",
        "exec python3 -m http.server $$PORT",
    ]
    assert web["Restart"] == ["on-failure"]
    assert web["RestartForceExitStatus"] == ["SIGHUP SIGINT SIGTERM SIGPIPE"]
    assert web["User"] == ["www-data"]
    assert web["WorkingDirectory"] == [str(app.resolve())]
    files = [str(out / "my-app.target"), str(out / "my-app-web.service")]
    verify = subprocess.run(
        [systemd_analyze, "verify", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    write(
        tmp_path / "trioproc.toml",
        "[processes.api]\ncmd = 'exec sleep 30'\nready = { port = 8001 }\n"
        "[processes.nap]\nargv = ['sleep', '30']\n"
        "[processes.ghost]\nargv = ['no-such-program-x']\n",
    )
    noted = trioproc_command("export", "systemd", str(out), cwd=tmp_path)
    assert noted.returncode == 0
    assert "api: its ready check (port 8001) has no systemd equivalent" in noted.stderr
    assert "ghost: 'no-such-program-x' is not on PATH here" in noted.stderr
    nap = unit(out / f"{tmp_path.name}-nap.service")
    # systemd looks in a PATH of its own: the program as found here.
    assert systemd_words(nap["ExecStart"][0]) == [shutil.which("sleep"), "30"]


def supervisord_environment(value: str) -> dict[str, str]:
    """``environment=`` split as supervisord's dict_of_key_value_pairs does
    (a non-POSIX shlex; quotes stripped from the ends of each value)."""
    lexer = shlex.shlex(value)
    lexer.wordchars += "/.+-():"
    tokens = list(lexer)
    pairs = {}
    for i in range(0, len(tokens), 4):
        key, equals, word = tokens[i : i + 3]
        assert equals == "="
        pairs[key] = word.strip("'\"")
    return pairs


def test_supervisord_file_parses_with_the_expected_keys(tmp_path: Path) -> None:
    """One [program:APP-NAME] per instance and a [group:APP], read back by
    configparser (with supervisord's %-expansion): the command splits back
    into the argv, the environment into the values, restarts and stopping
    as the fleet says, priorities in start order."""
    write(tmp_path / ".env", "SECRET=s3cret\n")
    argv = [PY, "-c", "print('50% done, $HOME')"]
    quoted = 'say "hi", 50% $X'
    write(
        tmp_path / "trioproc.toml",
        f"[processes.web]\nargv = {json.dumps(argv)}\ndepends_on = ['db']\n"
        f"env = {{ Q = {json.dumps(quoted)} }}\nkill_after = 2.5\n\n"
        "[processes.db]\ncmd = 'exec sleep 30'\nrestart = 'transient'\n\n"
        "[processes.once]\ncmd = 'true'\nrestart = 'temporary'\n",
    )
    out = tmp_path / "conf"
    result = trioproc_command(
        "export", "supervisord", str(out), "-a", "shop", "-c", "web=2",
        "-u", "www-data", "-l", "/srv/logs", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [p.name for p in out.iterdir()] == ["shop.conf"]
    parser = configparser.ConfigParser()
    parser.read(out / "shop.conf")
    programs = ["shop-db", "shop-web-1", "shop-web-2", "shop-once"]
    assert parser.sections() == [*(f"program:{p}" for p in programs), "group:shop"]
    assert parser["group:shop"]["programs"] == ",".join(programs)
    web = parser["program:shop-web-2"]
    assert shlex.split(web["command"]) == argv
    assert supervisord_environment(web["environment"]) == {
        "SECRET": "s3cret",
        "PORT": "5001",
        "Q": quoted,
        "PYTHONUNBUFFERED": "1",
        "TRIOPROC_PROCESS_NAME": "web.2",
    }
    assert web["autorestart"] == "true"
    assert web["stopwaitsecs"] == "3"
    assert web["stopasgroup"] == web["killasgroup"] == "true"
    assert web["directory"] == str(tmp_path.resolve())
    assert web["user"] == "www-data"
    assert web["stdout_logfile"] == "/srv/logs/shop-web-2.log"
    assert web["startsecs"] == "0"
    assert parser["program:shop-db"]["autorestart"] == "unexpected"
    assert parser["program:shop-once"]["autorestart"] == "false"
    priorities = [int(parser[f"program:{p}"]["priority"]) for p in programs]
    assert priorities == sorted(priorities)


def test_a_value_supervisord_cannot_hold_is_refused(tmp_path: Path) -> None:
    """A line break in an environment value cannot be written in
    supervisord's one-line environment=: exit 2 naming it, nothing
    written."""
    write(
        tmp_path / "trioproc.toml",
        f"[processes.db]\ncmd = 'true'\nenv = {{ WEIRD = {json.dumps(WEIRD)} }}\n",
    )
    out = tmp_path / "conf"
    result = trioproc_command("export", "supervisord", str(out), cwd=tmp_path)
    assert result.returncode == 2
    assert re.search(r"db: supervisord cannot hold WEIRD=", result.stderr)
    assert not out.exists()
    bad = trioproc_command("export", "upstart", str(out), cwd=tmp_path)
    assert bad.returncode == 2
    assert "invalid choice: 'upstart'" in bad.stderr
