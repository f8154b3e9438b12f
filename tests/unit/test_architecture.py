"""The package's layout rules, checked on its real import graph (read with :mod:`ast`).

* no import cycles between modules (imports under ``if TYPE_CHECKING:`` do not count);
* no module imports another module's private (``_``-prefixed) name;
* the wing diagram in ``docs/concepts/architecture.md`` is the one the imports draw.

Run ``python tests/unit/test_architecture.py`` to print the diagram for the docs.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "langgraph_speculative"
DOC = ROOT / "docs" / "concepts" / "architecture.md"
WINGS = (
    "core",
    "async_calling",
    "speculative",
    "durability",
    "cache",
    "nodes",
    "integrations",
    "bench",
)


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _runtime_imports(tree: ast.Module) -> list[ast.ImportFrom | ast.Import]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(sub) for stmt in node.body for sub in ast.walk(stmt))
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom) and id(n) not in hidden
    ]


def import_graph() -> tuple[dict[str, set[str]], list[tuple[str, str]]]:
    """``(module -> modules it imports at run time, [(module, private name imported)])``."""
    mods = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    private: list[tuple[str, str]] = []
    for mod, path in mods.items():
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [(a.name, None) for a in node.names]
            else:
                targets = [(node.module or "", a.name) for a in node.names]
            for target, name in targets:
                if not target.startswith(PACKAGE):
                    continue
                full = f"{target}.{name}" if name else target
                dest = full if full in mods else target
                if dest in mods and dest != mod:
                    edges[mod].add(dest)
                own_package = mod == PACKAGE or dest.startswith(mod + ".")
                if name and name.startswith("_") and not name.startswith("__") and not own_package:
                    private.append((mod, full))
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def wing_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    if parts[1] == "integrations":
        return "integrations.sim" if len(parts) > 3 and parts[2] == "sim" else "integrations"
    return parts[1] if parts[1] in WINGS else None


def wing_edges() -> list[tuple[str, str]]:
    edges, _ = import_graph()
    pairs = {
        (wing_of(a), wing_of(b))
        for a, bs in edges.items()
        for b in bs
        if wing_of(a) and wing_of(b) and wing_of(a) != wing_of(b)
    }
    return sorted((a, b) for a, b in pairs if a and b)


def mermaid() -> str:
    """The wing diagram: an arrow from a wing to each wing it imports."""
    ids = {w: w.replace(".", "_") for w in (*WINGS, "integrations.sim")}
    lines = ["flowchart TD"]
    lines += [f"    {ids[w]}[{w}]" for w in ids]
    lines += [f"    {ids[a]} --> {ids[b]}" for a, b in wing_edges()]
    return "\n".join(lines)


def _doc_diagram() -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(
        r"<!-- wings:begin -->\s*```mermaid\n(.*?)```\s*<!-- wings:end -->", text, re.S
    )
    assert match, f"{DOC} has no wing diagram between <!-- wings:begin --> and <!-- wings:end -->"
    return match.group(1).strip()


def test_no_import_cycles() -> None:
    edges, _ = import_graph()
    assert cycles(edges) == []


def test_no_module_imports_another_modules_private_names() -> None:
    _, private = import_graph()
    assert private == []


def test_the_architecture_page_shows_the_real_wing_graph() -> None:
    assert _doc_diagram() == mermaid(), "regenerate it: python tests/unit/test_architecture.py"


def test_every_wing_is_a_package() -> None:
    for wing in WINGS:
        assert (ROOT / PACKAGE / wing / "__init__.py").is_file(), wing


if __name__ == "__main__":
    print(mermaid())
