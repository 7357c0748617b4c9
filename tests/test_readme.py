"""The README's runnable snippets run as written."""

from __future__ import annotations

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
