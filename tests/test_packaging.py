"""The wheel users install: what it holds and what its metadata promises."""

from __future__ import annotations

import configparser
import email
import importlib
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The wheel ``pip wheel .`` builds from this checkout, built afresh."""
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (built,) = out.glob("trioproc-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    """The text of the wheel's ``*.dist-info/<name>``."""
    (path,) = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}")]
    return wheel.read(path).decode()


def metadata(wheel: zipfile.ZipFile) -> Message:
    return email.message_from_string(dist_info(wheel, "METADATA"))


def test_the_wheel_ships_py_typed(wheel: zipfile.ZipFile) -> None:
    """Type checkers use trioproc's hints only when the marker is installed."""
    assert "trioproc/py.typed" in wheel.namelist()
    assert "trioproc/testing/pytest_plugin.py" in wheel.namelist()


def test_the_wheel_ships_the_license_it_names(wheel: zipfile.ZipFile) -> None:
    """The metadata says MIT, and the license text travels with the code."""
    meta = metadata(wheel)
    assert meta["License-Expression"] == "MIT"
    assert meta["License-File"] == "LICENSE"
    text = dist_info(wheel, "licenses/LICENSE")
    assert text.startswith("MIT License")
    assert "trioproc developers" in text


def test_the_wheel_registers_the_command_and_the_pytest_plugin(
    wheel: zipfile.ZipFile,
) -> None:
    """``pip install trioproc`` gives the ``trioproc`` command and the
    ``fake_spawn`` fixture, and both point at code the wheel holds."""
    points = configparser.ConfigParser()
    points.read_string(dist_info(wheel, "entry_points.txt"))
    assert set(points["console_scripts"]) == {"trioproc"}
    assert set(points["pytest11"]) == {"trioproc"}
    assert points["pytest11"]["trioproc"] == "trioproc.testing.pytest_plugin"
    module, _, attr = points["console_scripts"]["trioproc"].partition(":")
    assert callable(getattr(importlib.import_module(module), attr))
    assert module.replace(".", "/") in "\n".join(wheel.namelist())


def test_the_wheel_requires_only_the_runtime_dependencies(
    wheel: zipfile.ZipFile,
) -> None:
    """Users get trio and attrs (and tomli before 3.11), never the pinned
    lint, type, coverage, docs or benchmark tools the project works with."""
    meta = metadata(wheel)
    requires = meta.get_all("Requires-Dist") or []
    names = {r.split(";")[0].split(">")[0].split("=")[0].strip() for r in requires}
    assert names <= {"trio", "attrs", "tomli", "exceptiongroup"}, requires
    assert {"trio", "attrs"} <= names
    for requirement in requires:
        name = requirement.split(";")[0]
        if name.startswith(("tomli", "exceptiongroup")):
            assert "python_version < '3.11'" in requirement, requirement
        assert "==" not in requirement, requirement
    assert meta.get_all("Provides-Extra") is None
