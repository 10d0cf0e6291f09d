"""The package's import graph: acyclic, and training never reaches the spaCy component.

Every ``import`` and ``from ... import`` statement of ``spacy_syncabel`` counts, at module
level and inside functions and classes (relative imports resolved); only those under
``if TYPE_CHECKING:`` are left out, since they never run.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest

PACKAGE = "spacy_syncabel"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
COMPONENT = f"{PACKAGE}.pipeline"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> Dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> List[ast.AST]:
    """Import statements anywhere in ``tree`` except under ``if TYPE_CHECKING:``."""
    out: List[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
            continue
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _target(name: str, modules: Dict[str, Path]) -> Optional[str]:
    """The package module ``name`` stands for (its closest enclosing module), if any."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> Dict[str, Set[str]]:
    """Module -> the package modules it imports (statements, not package parents)."""
    modules = _modules()
    graph: Dict[str, Set[str]] = {}
    for module, path in modules.items():
        edges: Set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _import_nodes(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = (_resolve(module, path.name == "__init__.py", node) if node.level
                        else node.module or "")
                # ``from pkg import sub`` imports the submodule; ``from mod import name`` the module
                names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                         for alias in node.names]
            for name in names:
                if name.split(".")[0] != PACKAGE:
                    continue
                target = _target(name, modules)
                if target is not None and target != module:
                    edges.add(target)
        graph[module] = edges
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One import cycle of ``graph`` (its modules in order, the first repeated), or None."""
    state: Dict[str, int] = {}  # 1: on the path, 2: done
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def reaches(graph: Dict[str, Set[str]], start: str) -> Set[str]:
    """Every module importing ``start`` runs, its package parents' ``__init__`` included."""
    seen: Set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo.extend(graph.get(node, ()))
        parent = node.rpartition(".")[0]
        if parent:
            todo.append(parent)
    return seen


@pytest.fixture(scope="module")
def graph() -> Dict[str, Set[str]]:
    return import_graph()


def test_graph_sees_function_level_and_relative_imports(graph):
    # read_file dispatches inside a function; the test must see such imports at all
    assert len(graph) > 50
    assert any(graph.values())
    assert f"{PACKAGE}.errors" in graph[f"{PACKAGE}.kb.concept_kb"]


def test_find_cycle_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_imports_have_no_cycle(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_training_never_reaches_the_spacy_component(graph):
    training = sorted(m for m in graph if m == f"{PACKAGE}.training"
                      or m.startswith(f"{PACKAGE}.training."))
    assert training
    offenders = [m for m in training if COMPONENT in reaches(graph, m)]
    assert offenders == []


def test_importing_all_of_training_leaves_the_component_unimported():
    """The same at run time: every module of ``training`` imported, ``pipeline`` is not."""
    code = ("import importlib, json, pkgutil, sys\n"
            "import spacy_syncabel.training as t\n"
            "names = [i.name for i in pkgutil.walk_packages(t.__path__, t.__name__ + '.')]\n"
            "for name in names:\n"
            "    importlib.import_module(name)\n"
            f"print(json.dumps([len(names), {COMPONENT!r} in sys.modules]))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True, cwd=ROOT.parent).stdout.strip().splitlines()[-1]
    n_modules, imported = json.loads(out)
    assert n_modules > 10 and imported is False
