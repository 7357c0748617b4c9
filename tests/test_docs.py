"""The API reference in docs/ covers the public surface.

``make docs`` (run by ``make test``) builds it with warnings as errors: a
docstring Sphinx cannot read, or a documented name that no longer imports,
fails the gate. This test keeps the other direction: a public name nobody
added to the reference.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

import trioproc
import trioproc.testing

DOCS = Path(__file__).parent.parent / "docs"


def documented(page: str) -> list[str]:
    """The names an ``.. auto*::`` directive of *page* documents."""
    text = (DOCS / page).read_text()
    return re.findall(
        r"^\.\. auto(?:class|function|exception|data):: (\S+)$", text, re.M
    )


@pytest.mark.parametrize(
    ("module", "page"), [(trioproc, "api.rst"), (trioproc.testing, "testing.rst")]
)
def test_every_public_name_is_in_the_reference(module: ModuleType, page: str) -> None:
    """A user looking up any name of ``__all__`` finds its page entry, once."""
    names = documented(page)
    assert sorted(names) == sorted(module.__all__)
