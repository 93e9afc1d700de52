"""The import graph of avatar/, evals/, serve/: no cycles, dependencies pointing one way.

Every ``.py`` file is parsed with :mod:`ast`, never imported. An edge is one import statement of a
project module, including imports inside functions (a lazy import is still a dependency), but not
those under ``if TYPE_CHECKING:``. ``from pkg import name`` is an edge to ``pkg.name`` when that is
a module, else to ``pkg``; relative imports are resolved; a package's ``__init__`` is its own node
(importing ``a.b.c`` adds no edge to ``a.b``). The rules below are the project's architecture.
"""

from __future__ import annotations

import ast
import fnmatch
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("avatar", "evals", "serve")

# --- The architecture, as data ---------------------------------------------------------------

EARLY_STAGES = (
    "avatar.speech",
    "avatar.motion",
    "avatar.identity",
    "avatar.renderers",
    "avatar.modules",
)
"""Stages that turn one input into the next; they must not know who assembles them."""

LATER_STAGES = (
    "avatar.media",
    "avatar.pipeline",
    "avatar.streaming",
    "avatar.config",
    "avatar.cli",
    "avatar.drive",
    "avatar.render",
    "avatar.render_ahead",
    "avatar.render_workers",
    "avatar.render_worker_main",
    "avatar.render_request",
    "avatar.identity_store",
    "avatar.long_text",
    "avatar.quiet",
    "avatar.entry_errors",
    "avatar.lit",
    "avatar.data",
    "avatar.train",
    "serve",
    "evals",
)
"""Assembly, I/O, training and entry points, built on the early stages."""

FORBIDDEN_IMPORTS: dict[str, tuple[str, ...]] = {
    "avatar.speech": (*LATER_STAGES, "avatar.motion", "avatar.identity", "avatar.renderers"),
    "avatar.identity": (*LATER_STAGES, "avatar.speech", "avatar.motion", "avatar.renderers"),
    "avatar.motion": (*LATER_STAGES, "avatar.identity", "avatar.renderers"),
    "avatar.renderers": LATER_STAGES,
    "avatar.modules": LATER_STAGES,
    "avatar": ("evals", "serve"),
    "evals": ("serve",),
}
"""Module prefix -> module prefixes that no module under it may import."""

LIGHTNING_HOMES = ("avatar/lit/*", "avatar/data/*", "avatar/train.py")
SERVE_ENTRY_POINTS = tuple(
    f"serve/{folder}{name}"
    for folder in ("", "*/")
    for name in ("app.py", "worker.py", "simulate.py", "config.py", "__main__.py")
)
HYDRA_HOMES = (
    "avatar/config.py",
    "avatar/cli.py",
    "avatar/train.py",
    "avatar/render.py",
    "avatar/entry_errors.py",  # how entry points report errors (Hydra's included)
    "evals/run.py",
    "evals/score.py",
    "evals/check_clip.py",
    *SERVE_ENTRY_POINTS,
)
"""The entry points: Hydra stops here, everything below gets plain arguments."""

THIRD_PARTY_ONLY_IN: dict[str, tuple[str, ...]] = {
    "lightning": LIGHTNING_HOMES,
    "pytorch_lightning": LIGHTNING_HOMES,
    "hydra": HYDRA_HOMES,
    "omegaconf": HYDRA_HOMES,
}
"""Top-level third-party package -> the only files (globs on repo paths) that may import it."""

THIRD_PARTY_NEVER_IN: dict[str, tuple[str, ...]] = {
    "fastapi": ("avatar/*", "evals/*"),
    "livekit": ("avatar/*", "evals/*"),
}
"""Top-level third-party package -> files (globs on repo paths) that must not import it."""

# --- The graph builder -----------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Import:
    """One import statement: ``source`` (a module) imports ``target``.

    ``target`` is a project module's dotted name, or the top-level name of a third-party package.
    """

    path: str
    line: int
    source: str
    target: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.source} -> {self.target}"


@dataclass
class ImportGraph:
    """Project modules (dotted name -> repo path) and their runtime imports."""

    modules: dict[str, str]
    edges: list[Import]
    external: list[Import]

    def pairs(self) -> set[tuple[str, str]]:
        """Distinct (source, target) module pairs."""
        return {(e.source, e.target) for e in self.edges}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except in the body of ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        else:
            stack.extend(ast.iter_child_nodes(node))


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: Mapping[str, str]
) -> list[str]:
    """Absolute dotted names an import statement depends on."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    out = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        out.append(candidate if alias.name != "*" and candidate in modules else base)
    return out


def build_graph(root: Path, packages: Sequence[str]) -> ImportGraph:
    """Parses every ``.py`` under ``root/<package>`` and collects its runtime imports."""
    files: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    modules = {m: p.relative_to(root).as_posix() for m, p in files.items()}
    edges, external = set(), set()
    for module, path in files.items():
        rel = modules[module]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        for node in _runtime_imports(tree):
            for target in _targets(node, module, path.name == "__init__.py", modules):
                top = target.partition(".")[0]
                if getattr(node, "level", 0) or top in packages:
                    if target != module:
                        edges.add(Import(rel, node.lineno, module, target))
                else:
                    external.add(Import(rel, node.lineno, module, top))
    return ImportGraph(modules, sorted(edges), sorted(external))


# --- The checks ------------------------------------------------------------------------------


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def find_cycles(graph: ImportGraph) -> list[tuple[list[str], list[Import]]]:
    """Strongly connected components of more than one module, with the edges inside each."""
    adjacent: dict[str, set[str]] = defaultdict(set)
    for e in graph.edges:
        adjacent[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan (1972)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(adjacent[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(adjacent):
        if v not in index:
            visit(v)
    return sorted(
        (sorted(c), [e for e in graph.edges if e.source in c and e.target in c]) for c in components
    )


def layering_violations(
    graph: ImportGraph, rules: Mapping[str, Sequence[str]] = FORBIDDEN_IMPORTS
) -> list[str]:
    """One line per edge that imports a module its layer forbids, naming the broken rules."""
    out = []
    for e in graph.edges:
        broken = [
            f"{layer} -/-> {prefix}"
            for layer, forbidden in rules.items()
            if _under(e.source, layer)
            for prefix in forbidden
            if _under(e.target, prefix)
        ]
        if broken:
            out.append(f"{e}  [{'; '.join(broken)}]")
    return out


def _matches(path: str, globs: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, g) for g in globs)


def third_party_violations(
    graph: ImportGraph,
    only_in: Mapping[str, Sequence[str]] = THIRD_PARTY_ONLY_IN,
    never_in: Mapping[str, Sequence[str]] = THIRD_PARTY_NEVER_IN,
) -> list[str]:
    """One line per third-party import outside its allowed files or inside forbidden ones."""
    out = []
    for e in graph.external:
        if e.target in only_in and not _matches(e.path, only_in[e.target]):
            out.append(f"{e}  [{e.target} outside its THIRD_PARTY_ONLY_IN files]")
        if e.target in never_in and _matches(e.path, never_in[e.target]):
            out.append(f"{e}  [{e.target} in its THIRD_PARTY_NEVER_IN files]")
    return out


@lru_cache(maxsize=1)
def project_graph() -> ImportGraph:
    return build_graph(ROOT, PACKAGES)


# --- Tests -----------------------------------------------------------------------------------


def test_graph_builder_on_a_tiny_tree(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "import os\nfrom pkg import b\n",
        "pkg/b.py": "def f():\n    from . import a\n    return a\n",
        "pkg/c.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from pkg import a\n"
            "    import hydra\n"
            "else:\n"
            "    import json\n"
            "from .sub.d import x\n"
            "import lightning.pytorch as pl\n"
        ),
        "pkg/sub/__init__.py": "from ..c import y\n",
        "pkg/sub/d.py": "from .. import not_a_module\nimport pkg.sub.e\n",
        "pkg/sub/e.py": "",
        "other/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    graph = build_graph(tmp_path, ["pkg"])

    assert sorted(graph.modules) == ["pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.sub"] + [
        "pkg.sub.d",
        "pkg.sub.e",
    ]
    assert graph.pairs() == {
        ("pkg.a", "pkg.b"),
        ("pkg.b", "pkg.a"),  # lazy and relative
        ("pkg.c", "pkg.sub.d"),  # not pkg.a: under TYPE_CHECKING
        ("pkg.sub", "pkg.c"),
        ("pkg.sub.d", "pkg"),  # `from .. import name` of a non-module: the package
        ("pkg.sub.d", "pkg.sub.e"),  # and no implicit edge to pkg.sub
    }
    assert Import("pkg/b.py", 2, "pkg.b", "pkg.a") in graph.edges
    assert {(e.source, e.target) for e in graph.external} == {
        ("pkg.a", "os"),
        ("pkg.c", "typing"),
        ("pkg.c", "json"),
        ("pkg.c", "lightning"),
    }
    ((members, inside),) = find_cycles(graph)
    assert members == ["pkg.a", "pkg.b"]
    assert [str(e) for e in inside] == ["pkg/a.py:2 pkg.a -> pkg.b", "pkg/b.py:2 pkg.b -> pkg.a"]
    assert layering_violations(graph, {"pkg.sub": ("pkg.c",), "pkg.c": ("pkg.a",)}) == [
        "pkg/sub/__init__.py:1 pkg.sub -> pkg.c  [pkg.sub -/-> pkg.c]"
    ]
    assert third_party_violations(graph, {"lightning": ("pkg/lit/*",)}, {"json": ("pkg/*",)}) == [
        "pkg/c.py:6 pkg.c -> json  [json in its THIRD_PARTY_NEVER_IN files]",
        "pkg/c.py:8 pkg.c -> lightning  [lightning outside its THIRD_PARTY_ONLY_IN files]",
    ]


def test_the_real_graph_is_not_empty() -> None:
    graph = project_graph()
    assert len(graph.modules) > 100, sorted(graph.modules)
    assert len(graph.pairs()) > 200, f"only {len(graph.pairs())} module imports found"
    assert any(e.target in ("torch", "numpy") for e in graph.external)
    pairs = set(graph.pairs())
    for known in (
        ("avatar.pipeline", "avatar.renderers.base"),
        ("avatar.renderers.meshwarp.renderer", "avatar.renderers.base"),
        ("avatar.identity.search", "avatar.identity.landmarker"),
    ):
        assert known in pairs, f"the builder misses the import {known}"


def test_no_import_cycles() -> None:
    cycles = find_cycles(project_graph())
    report = [
        f"cycle among {', '.join(members)}:\n" + "\n".join(f"    {e}" for e in edges)
        for members, edges in cycles
    ]
    assert not cycles, f"{len(cycles)} import cycle(s):\n" + "\n".join(report)


def test_layers_import_one_way() -> None:
    bad = layering_violations(project_graph())
    assert not bad, f"{len(bad)} import(s) against FORBIDDEN_IMPORTS:\n" + "\n".join(bad)


def test_third_party_frameworks_stay_in_their_layer() -> None:
    bad = third_party_violations(project_graph())
    assert not bad, f"{len(bad)} third-party import(s) out of place:\n" + "\n".join(bad)
