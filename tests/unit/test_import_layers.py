"""Imports point down and never round: each package of ours imports only itself and the layers
below it, and no package's modules import each other in a circle (docs/architecture.md, "Where
a thing lives").

Every import counts: at module level, inside functions, under ``if TYPE_CHECKING:``. A cycle
that exists only for type annotations is still two modules that cannot be read, tested or moved
apart, and ``TYPE_CHECKING`` is where such cycles hide (both that issue 19 removed were there).
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SDK_FOLDER = "sdk/python"  # its own project (sdk/python/pyproject.toml), not in ours

COMMON = "paitient_common"
COMPONENTS = ("paitient_operator", "paitient_gateway", "paitient_api", "paitient_cli")
# What each package may import besides itself, bottom up. The SDK is published on its own and
# imports nothing of ours; the local cluster is the dev harness at the top and may use anything.
MAY_IMPORT: Mapping[str, frozenset[str]] = {
    COMMON: frozenset(),
    **{component: frozenset({COMMON}) for component in COMPONENTS},
    "paitient_images": frozenset({COMMON}),  # build tooling: never the local cluster
    "paitient_localcluster": frozenset({COMMON, *COMPONENTS, "paitient_images", "paitient_secure_model"}),
    "paitient_secure_model": frozenset(),
}  # fmt: skip
# Importable names of ours that no package may import.
NOT_A_LAYER = frozenset({"tests", "benchmarks", "scripts"})


@dataclass(frozen=True)
class Import:
    """One import: the importing module and the absolute dotted name it imports (a module, or
    a name in one: ``module_of`` tells)."""

    module: str
    target: str
    line: int


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool  # an __init__.py: relative imports resolve from the module itself


def package_folders() -> dict[str, Path]:
    """Package name -> its folder, for every package the project builds, and the SDK."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    roots = [*pyproject["tool"]["setuptools"]["packages"]["find"]["where"], SDK_FOLDER]
    return {
        init.parent.name: init.parent
        for root in roots
        for init in sorted((REPO / root).glob("paitient_*/__init__.py"))
    }


def modules_of(package: str, folder: Path) -> list[Module]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        parts = [package, *path.relative_to(folder).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        found.append(Module(name, path, is_package))
    return found


def imports_in(source: str, module: str, is_package: bool = False) -> Iterator[Import]:
    """Every import in ``source`` (anywhere in the tree), relative ones made absolute;
    ``from X import y`` is ``X.y``, which ``module_of`` resolves to ``X`` unless y is a module."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                target = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                yield Import(module, f"{target}.{alias.name}", node.lineno)


def layer_breaches(imports: Iterable[Import], packages: Iterable[str]) -> list[tuple[Import, str]]:
    """(import, why) for each import of one of our packages that the layers do not allow."""
    ours = {*packages, *NOT_A_LAYER}
    breaches = []
    for imp in imports:
        importer, imported = imp.module.split(".")[0], imp.target.split(".")[0]
        if imported == importer or imported not in ours:
            continue
        allowed = MAY_IMPORT.get(importer, frozenset())
        if imported not in allowed:
            may = ", ".join(sorted(allowed)) or "nothing of ours"
            breaches.append((imp, f"{importer} may import only itself and {may}"))
    return breaches


def module_of(target: str, known: set[str]) -> str:
    """The module an import names: ``X.function`` of ``from X import function`` is ``X``."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target


def module_graph(imports: Iterable[Import], known: set[str]) -> dict[str, set[str]]:
    """importing module -> the modules of its own package it imports."""
    graph: dict[str, set[str]] = {name: set() for name in known}
    for imp in imports:
        target = module_of(imp.target, known)
        same_package = target.split(".")[0] == imp.module.split(".")[0]
        if target and target != imp.module and same_package:
            graph[imp.module].add(target)
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _all_imports() -> tuple[list[Import], set[str], set[str]]:
    folders = package_folders()
    imports, known = [], set()
    for package, folder in folders.items():
        for module in modules_of(package, folder):
            known.add(module.name)
            imports.extend(imports_in(module.path.read_text(), module.name, module.is_package))
    return imports, known, set(folders)


def _where(imp: Import) -> str:
    return f"{imp.module}:{imp.line} imports {imp.target}"


# -- the repository ------------------------------------------------------------------------------


def test_every_package_has_a_layer() -> None:
    packages = set(package_folders())
    assert packages == set(MAY_IMPORT), "give each package a row of MAY_IMPORT"


def test_every_folder_of_a_package_is_a_package() -> None:
    # setuptools' find_packages skips a folder without __init__.py: the images would lack it.
    missing = [
        str(folder.relative_to(REPO))
        for root in package_folders().values()
        for folder in [root, *(p.parent for p in root.rglob("*.py"))]
        if "__pycache__" not in folder.parts and not (folder / "__init__.py").exists()
    ]
    assert missing == [], f"add an __init__.py to {sorted(set(missing))}"


def test_no_import_points_up_or_sideways() -> None:
    imports, _, packages = _all_imports()
    breaches = {f"{_where(imp)}: {why}" for imp, why in layer_breaches(imports, packages)}
    assert breaches == set(), "\n".join(sorted(breaches))


def test_no_package_imports_itself_in_a_circle() -> None:
    imports, known, _ = _all_imports()
    found = cycles(module_graph(imports, known))
    assert found == [], "modules importing each other: " + "; ".join(map(" <-> ".join, found))


# -- the checks themselves -----------------------------------------------------------------------

SIDEWAYS = """
from __future__ import annotations
from typing import TYPE_CHECKING
from paitient_common.kubeapi import Kube
from . import helpers
if TYPE_CHECKING:
    from paitient_gateway.state import Gateway
def late():
    import paitient_operator.errors
"""


def test_imports_are_found_in_functions_and_type_checking_blocks() -> None:
    found = {(i.target, i.line) for i in imports_in(SIDEWAYS, "paitient_api.door")}
    assert {
        ("paitient_common.kubeapi.Kube", 4),
        ("paitient_api.helpers", 5),
        ("paitient_gateway.state.Gateway", 7),
        ("paitient_operator.errors", 9),
    } <= found


def test_a_component_importing_another_is_a_breach() -> None:
    imports = imports_in(SIDEWAYS, "paitient_api.door")
    breached = {imp.target.split(".")[0] for imp, _ in layer_breaches(imports, MAY_IMPORT)}
    assert breached == {"paitient_gateway", "paitient_operator"}


def test_the_layers_below_and_above() -> None:
    def breaches(module: str, source: str) -> int:
        return len(layer_breaches(imports_in(source, module), MAY_IMPORT))

    assert breaches("paitient_common.x", "import paitient_operator") == 1  # up
    assert breaches("paitient_images.x", "from paitient_localcluster import y") == 1  # up
    assert breaches("paitient_secure_model.x", "import paitient_common") == 1  # the SDK: none
    assert breaches("paitient_operator.x", "from tests.unit import factories") == 1
    assert breaches("paitient_localcluster.x", "import paitient_operator, paitient_images") == 0
    assert breaches("paitient_cli.x", "import yaml, paitient_cli.main") == 0  # not ours, own


def test_relative_imports_resolve_from_the_module() -> None:
    source = "from ._types import A\nfrom .. import top\n"
    known = {"pkg", "pkg.sub", "pkg.sub._types", "pkg.sub.mod"}
    in_module = {module_of(i.target, known) for i in imports_in(source, "pkg.sub.mod")}
    in_package = {module_of(i.target, known) for i in imports_in(source, "pkg.sub", True)}
    assert in_module == in_package == {"pkg.sub._types", "pkg"}


def test_a_cycle_is_found_also_through_type_checking_only_imports() -> None:
    known = {"p.app", "p.proxy", "p.state", "q.other"}
    imports = [
        *imports_in("from p import proxy\nfrom p.state import Gateway\n", "p.app"),
        *imports_in("if TYPE_CHECKING:\n    from p.app import Gateway\n", "p.proxy"),
        *imports_in("import q.other\n", "p.state"),
    ]
    assert cycles(module_graph(imports, known)) == [["p.app", "p.proxy"]]
    imports = [i for i in imports if i.module != "p.proxy"]
    assert cycles(module_graph(imports, known)) == []
