"""memrl's layering (docs/DESIGN.md, "Imports flow one way"): learners import no evaluation or CLI
code, and memrl's modules import each other without a circle.

Imports are read from the source with ``ast``, module by module (every ``.py`` file under
``memrl/``), and every module is also imported, in a fresh interpreter, so that a module the
checks read is one that loads.

- Learners: no module under ``memrl.agents`` imports ``memrl.eval`` or ``memrl.cli``, counting
  every import statement of the module, those inside functions included.
- Circles: the graph of module-level imports has no cycle. Only imports that run when the module
  is imported count: imports inside functions and methods do not (they run when called), nor do
  those under ``if TYPE_CHECKING:`` (they never run). ``from a.b import c`` is an edge to the
  module ``a.b.c`` when there is one, else to ``a.b``; the parent packages an import loads on the
  way (``a`` for ``import a.b``) are not edges, since Python finishes a package's ``__init__``
  before it imports anything inside the package.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import memrl

PACKAGE = Path(memrl.__file__).resolve().parent
LEARNERS = "memrl.agents"
FORBIDDEN_TO_LEARNERS = ("memrl.eval", "memrl.cli")


def _module_files() -> dict[str, Path]:
    """Every memrl module's dotted name -> its file (a package's name -> its ``__init__.py``)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _module_files()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements that run on import: function bodies and TYPE_CHECKING blocks left out."""
    for statement in body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(statement, ast.If):
            if not _is_type_checking(statement.test):
                yield from _module_level(statement.body)
            yield from _module_level(statement.orelse)
        elif isinstance(statement, ast.ClassDef | ast.With):
            yield from _module_level(statement.body)
        elif isinstance(statement, ast.Try):
            for block in (statement.body, statement.orelse, statement.finalbody):
                yield from _module_level(block)
            for handler in statement.handlers:
                yield from _module_level(handler.body)
        else:
            yield statement


def _imported(name: str, statement: ast.stmt) -> set[str]:
    """The memrl modules one statement of module ``name`` imports (none if not an import)."""
    if isinstance(statement, ast.Import):
        return {alias.name for alias in statement.names if alias.name in MODULES}
    if not isinstance(statement, ast.ImportFrom):
        return set()
    if statement.level:  # relative: from the module's package, one level up per extra dot
        package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
        base = package.split(".")[: len(package.split(".")) - statement.level + 1]
        source = ".".join([*base, *([statement.module] if statement.module else [])])
    else:
        source = statement.module or ""
    found = set()
    for alias in statement.names:
        if f"{source}.{alias.name}" in MODULES:
            found.add(f"{source}.{alias.name}")
        elif source in MODULES:
            found.add(source)
    return found


def _imports(name: str, *, module_level: bool) -> set[str]:
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    if module_level:
        statements = list(_module_level(tree.body))
    else:
        statements = [node for node in ast.walk(tree) if isinstance(node, ast.stmt)]
    return {m for s in statements for m in _imported(name, s) if m != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_every_module_imports_and_learners_load_no_evaluation_or_cli():
    learners = sorted(m for m in MODULES if m == LEARNERS or m.startswith(LEARNERS + "."))
    others = sorted(set(MODULES) - set(learners) - {m for m in MODULES if m.endswith("__main__")})
    code = (
        "import importlib, json, sys\n"
        f"learners, others = {learners!r}, {others!r}\n"
        "for name in learners: importlib.import_module(name)\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith({FORBIDDEN_TO_LEARNERS!r}))\n"
        "for name in others: importlib.import_module(name)\n"
        "print(json.dumps(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == [], "importing memrl.agents loaded these"


def test_no_learner_imports_evaluation_or_cli():
    offences = {
        name: sorted(m for m in _imports(name, module_level=False)
                     if m.startswith(FORBIDDEN_TO_LEARNERS))
        for name in MODULES if name == LEARNERS or name.startswith(LEARNERS + ".")
    }  # fmt: skip
    assert {name: found for name, found in offences.items() if found} == {}


def test_module_level_imports_form_no_circle():
    graph = {name: _imports(name, module_level=True) for name in MODULES}
    assert sum(map(len, graph.values())) > len(MODULES)  # the parser found the imports
    assert graph["memrl.eval.continual"] >= {
        "memrl.agents.continual.evaluation_log", "memrl.agents.continual.trainer"
    }  # fmt: skip
    cycle = _cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])
