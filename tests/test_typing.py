"""What type checkers see: the README's snippets and the overloads of
``spawn()`` and ``pipeline()`` pass ``mypy --strict``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .test_readme import snippets

ROOT = Path(__file__).parent.parent
OVERLOADS = Path(__file__).parent / "typecheck" / "overloads.py"


@pytest.mark.deadline(120)
def test_the_readme_and_the_overloads_pass_mypy_strict(tmp_path: Path) -> None:
    """A user who pastes a README snippet into a ``mypy --strict`` project
    gets no error (stream mode's ``child.stdout`` is not Optional), and each
    overload gives the type ``tests/typecheck/overloads.py`` asserts."""
    files = [str(OVERLOADS)]
    for number, snippet in enumerate(snippets()):
        path = tmp_path / f"readme_snippet_{number}.py"
        path.write_text(snippet)
        files.append(str(path))
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
