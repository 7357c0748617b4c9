"""Layers point one way: the OS layer knows no transport or protocol, the
supervision knows no CLI, and nothing below the top imports the top."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent / "trioproc"
#: What the OS layer may import from the rest of the package.
OS_MAY_USE = {
    "trioproc._errors",
    "trioproc._options",
    "trioproc._flow",
    "trioproc._interfaces",
    "trioproc._statistics",
}
TOP = ("trioproc._cli", "trioproc._fleet", "trioproc._control", "trioproc._export")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {t for t in found if t.startswith("trioproc")}


def test_nothing_imports_upward() -> None:
    """A second OS backend or a new command can be added without touching
    the layers below it: every import (type-only ones included) points
    down."""
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        module = _module(path)
        for target in _imports(path):
            if module.startswith("trioproc._os") and not (
                target.startswith("trioproc._os") or target in OS_MAY_USE
            ):
                upward.append((module, target))
            below_top = not module.startswith((*TOP, "trioproc.testing"))
            entry = module in ("trioproc", "trioproc.__main__")
            if below_top and not entry and target.startswith(TOP):
                upward.append((module, target))
    assert upward == []
