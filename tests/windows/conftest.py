"""The Windows tests, run by a Windows CPython (under Wine here: tools/wine/setup.sh).

Run with ``--confcutdir=tests/windows``: the POSIX suite's conftest is not loaded.
"""

from __future__ import annotations

import sys

import pytest

from tests.windows import _wine_shim

if sys.platform != "win32":  # pragma: no cover - collected only by a Windows Python
    pytest.skip("the Windows tests run under a Windows Python", allow_module_level=True)

_wine_shim.install()
