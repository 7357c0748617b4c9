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


#: The layers, lowest first, by module-name prefix (the longest prefix
#: wins): a module imports only its own layer and those below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    # Pure checks, types and small mechanisms: no I/O of their own.
    (
        "trioproc._arguments",
        "trioproc._errors",
        "trioproc._expect",
        "trioproc._flow",
        "trioproc._interfaces",
        "trioproc._notify",
        "trioproc._options",
        "trioproc._ssh._options",
        "trioproc._statistics",
        "trioproc._util",
    ),
    # How this OS starts, feeds, watches and ends a process.
    ("trioproc._os",),
    # The transport and its streams, and the ssh wrapper below spawn().
    (
        "trioproc._contract",
        "trioproc._output",
        "trioproc._protocol",
        "trioproc._ssh",
        "trioproc._stdin",
        "trioproc._streams",
        "trioproc._transport",
    ),
    ("trioproc._spawn",),
    ("trioproc._pipeline", "trioproc._run", "trioproc._supervision"),
    # The top: commands, fleets, the shipped fakes, and the package itself.
    (
        "trioproc",
        "trioproc.__main__",
        "trioproc._cli",
        "trioproc._control",
        "trioproc._export",
        "trioproc._fleet",
        "trioproc.testing",
    ),
)


def _layer(module: str) -> int:
    best, found = -1, -1
    for number, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            # (The package itself is a layer of its own name, not a prefix.)
            inside = prefix != "trioproc" and module.startswith(prefix + ".")
            if (module == prefix or inside) and len(prefix) > best:
                best, found = len(prefix), number
    return found


def _resolved_imports(path: Path) -> set[str]:
    """The package's modules *path* imports, with ``from . import _x``
    resolved to the module ``_x`` rather than its package."""
    found = set()
    for target in _imports(path):
        found.add(target)
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            parent = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                folder = ROOT.parent.joinpath(*parent.split("."), alias.name)
                if folder.with_suffix(".py").exists() or folder.is_dir():
                    found.add(f"{parent}.{alias.name}")
    return found


def test_every_module_has_a_layer_and_imports_only_down() -> None:
    """Layers point one way -- OS layer, transport, spawn, its users, the
    top -- for every module, a new one included (a module no layer names
    fails here), and for every import, type-only and ``from . import _x``
    ones included."""
    unplaced, upward = [], []
    for path in sorted(ROOT.rglob("*.py")):
        module = _module(path)
        layer = _layer(module)
        if layer < 0:
            unplaced.append(module)
            continue
        for target in _resolved_imports(path):
            if _layer(target) > layer:
                upward.append((module, target))
    assert unplaced == []
    assert upward == []


def test_supervision_talks_to_spawn_and_the_transport_only() -> None:
    """The supervision reaches the OS layer only through the layer directly
    below it (`trioproc._spawn`, the transport): a second backend changes
    nothing in it. Type-only imports count too."""
    reaching = []
    for path in sorted((ROOT / "_supervision").rglob("*.py")):
        for target in _resolved_imports(path):
            if target == "trioproc._os" or target.startswith("trioproc._os."):
                reaching.append((_module(path), target))
    assert reaching == []
