"""The local cluster's rooms import downwards only: a newcomer reads the host plumbing without
the control plane, the node without the stack. (Which packages may import the local cluster at
all: tests/unit/test_import_layers.py.)"""

from __future__ import annotations

import ast
from pathlib import Path

import paitient_localcluster

PACKAGE = Path(paitient_localcluster.__file__).parent
# Lower floors first; a room may import its own modules and any room on a lower floor. The
# node and the simulated stand-ins share a floor: neither needs the other.
FLOORS = {
    "__init__": 0, "errors": 0, "addresses": 0,
    "host": 1,
    "upstream": 2,
    "controlplane": 3,
    "node": 4, "simulated": 4,
    "cluster": 5,
    "stack": 6,
    "__main__": 7, "pytest_plugin": 7,
}  # fmt: skip


def room_of(module: str) -> str:
    """``paitient_localcluster.host.relay`` -> ``host``; a top-level module is its own room."""
    return module.split(".")[1] if "." in module else "__init__"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module of this package that ``path`` imports (relative imports resolved)."""
    here = module_name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]  # the package the module is in
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            found |= {f"{target}.{a.name}" for a in node.names} if not node.module else {target}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.split(".")[0] == PACKAGE.name}


def test_every_room_imports_only_its_own_modules_and_lower_floors() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = room_of(module_name(path))
        for target in imported_modules(path):
            room = room_of(target) if target != PACKAGE.name else "__init__"
            if room != source and FLOORS[room] >= FLOORS[source]:
                upward.append(f"{path.relative_to(PACKAGE)} imports {target}")
    assert upward == []


def test_every_room_has_a_floor() -> None:
    rooms = {room_of(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert rooms <= set(FLOORS), rooms - set(FLOORS)
