"""The README's runnable snippets run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


def snippets() -> list[str]:
    """Every ```python block of the README that runs itself (trio.run(main))."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    return [block for block in blocks if "trio.run(main)" in block]


def test_the_readme_has_runnable_snippets() -> None:
    """The quick tour and the conveniences are shown as code that runs."""
    assert len(snippets()) >= 3


@pytest.mark.parametrize("number", range(len(snippets())))
def test_a_readme_snippet_runs(number: int, tmp_path: Path) -> None:
    """A user who pastes a README snippet gets it running, not a traceback."""
    script = tmp_path / "snippet.py"
    script.write_text(snippets()[number])
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def block_with(language: str, marker: str) -> str:
    """The README's one ```<language> block that contains *marker*."""
    blocks = re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.S)
    (block,) = [block for block in blocks if marker in block]
    return block


# What the README's fake_spawn snippet calls "your code".
MYAPP = """
import trio
import trioproc


class DeployError(Exception):
    pass


async def deploy() -> None:
    await trioproc.run(["git", "pull"])
    with trio.move_on_after(30):
        await trioproc.run(["healthcheck"])
        return
    raise DeployError("no answer from the health check in 30 s")
"""


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in *directory* as a user runs it: no conftest or pytest
    variables of this suite, the plugins installed with the packages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.deadline(120)
def test_the_fake_spawn_snippet_passes_with_the_config_beside_it(
    tmp_path: Path,
) -> None:
    """A user who copies the README's pytest configuration and its
    ``fake_spawn`` test into a project gets a passing test, not "async def
    functions are not natively supported"."""
    config = block_with("toml", "trio_mode")
    test = block_with("python", "async def test_deploy(fake_spawn")
    assert config.startswith("# pyproject.toml\n")
    assert test.startswith("# test_deploy.py\n")
    (tmp_path / "pyproject.toml").write_text(config)
    (tmp_path / "test_deploy.py").write_text(test)
    (tmp_path / "myapp.py").write_text(MYAPP)
    result = run_pytest(tmp_path, "-q", "-W", "error", "--rootdir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
