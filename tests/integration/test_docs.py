"""Run the code of the documentation: every page's ``python`` blocks and every docstring example.

* Pages: all fenced ```` ```python ```` blocks of ``docs/**/*.md`` run in order, in one
  namespace per page (one test per page). A block whose first line is ``# skip-test`` is
  not run.
* Code that reads ``../shared/data`` (BFCL, SMP2019) skips when that folder is absent,
  exactly as the tests that need it do.
* Docstrings: every fenced ```` ```python ```` example in the docstring of a public module,
  class, function or method under ``langgraph_speculative`` runs on its own (one test per
  example). Docstrings are read with :mod:`ast`, so collecting never imports the package.

Each test runs its code in a fresh Python subprocess (``cwd`` = the repository root) with a
timeout, so event loops, servers and threads started by an example cannot leak into the
test session. ``DOCS_TEST_TIMEOUT`` (seconds) overrides the default timeout.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import REPO_ROOT

DOCS_DIR = REPO_ROOT / "docs"
PACKAGE = "langgraph_speculative"
PACKAGE_DIR = REPO_ROOT / PACKAGE
SKIP_MARK = "# skip-test"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
_NEEDS_SHARED = re.compile(r"\.\./shared/|shared/data")
TIMEOUT_S = float(os.environ.get("DOCS_TEST_TIMEOUT", "180"))

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its source, its file (relative to the repository root) and
    the 1-based line of its first line of code in that file."""

    source: str
    path: str
    line: int

    @property
    def skipped(self) -> bool:
        first = self.source.lstrip("\n").splitlines()[:1]
        return bool(first) and first[0].strip() == SKIP_MARK


def fenced_python_blocks(text: str, path: str, first_line: int = 1) -> list[Block]:
    """Return the fenced ``python`` blocks of markdown ``text`` (indented ones dedented).

    ``first_line`` is the file line of the text's first line.

    The info string must start with ``python`` or ``py`` (``python title="x"`` counts;
    ``pycon`` and ``python-repl`` do not).
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent = m.group("fence"), m.group("indent")
        lang = (m.group("info").strip().split() or [""])[0].lstrip(".{").lower()
        start = i + 1
        j = start
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        if lang in ("python", "py", "python3"):
            body = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[start:j]]
            source = textwrap.dedent("\n".join(body)) + "\n"
            blocks.append(Block(source, path, first_line + start))
        i = j + 1
    return blocks


# -- pages -------------------------------------------------------------------------------
def _page_params() -> list[object]:
    params: list[object] = []
    for page in sorted(DOCS_DIR.rglob("*.md")):
        rel = page.relative_to(DOCS_DIR).as_posix()
        blocks = fenced_python_blocks(page.read_text(encoding="utf-8"), f"docs/{rel}")
        if any(not b.skipped for b in blocks):
            params.append(pytest.param(blocks, id=f"page:{rel}"))
    return params


# -- docstrings --------------------------------------------------------------------------
def _public_modules() -> list[tuple[str, Path]]:
    """(dotted name, path) of every public module of the package (no ``_private`` part)."""
    out: list[tuple[str, Path]] = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if any(p.startswith("_") for p in parts):
            continue
        out.append((".".join(parts), path))
    return out


def _docstrings(tree: ast.Module, module: str) -> list[tuple[str, ast.AST]]:
    """(qualified name, node) of the module and its public classes, functions, methods."""
    found: list[tuple[str, ast.AST]] = [(module, tree)]

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                if node.name.startswith("_"):
                    continue
                name = f"{prefix}.{node.name}"
                found.append((name, node))
                if isinstance(node, ast.ClassDef):
                    visit(node.body, name)

    visit(tree.body, module)
    return found


def _docstring_params() -> list[object]:
    params: list[object] = []
    for module, path in _public_modules():
        rel = path.relative_to(REPO_ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        for qualname, node in _docstrings(tree, module):
            body = getattr(node, "body", [])
            first = body[0] if body else None
            if not (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                continue
            raw = first.value.value  # uncleaned, so line k of it is file line lineno + k
            if "```" not in raw:
                continue
            blocks = [b for b in fenced_python_blocks(raw, rel, first.lineno) if not b.skipped]
            for k, block in enumerate(blocks, 1):
                suffix = f"#{k}" if len(blocks) > 1 else ""
                params.append(pytest.param([block], id=f"docstring:{qualname}{suffix}"))
    return params


# -- running -----------------------------------------------------------------------------
_RUNNER = r"""
def _run_blocks():
    import json
    import sys

    namespace = sys.modules["__main__"].__dict__  # pickling, dataclasses, pydantic see it
    with open(sys.argv[1], encoding="utf-8") as f:
        blocks = json.load(f)
    for b in blocks:
        print("--- running %s:%d" % (b["path"], b["line"]), flush=True)
        # Pad with blank lines so tracebacks show the block's real file and line.
        code = compile("\n" * (b["line"] - 1) + b["source"], b["path"], "exec")
        exec(code, namespace)


_run_blocks()
"""


def run_blocks(blocks: list[Block], tmp_path: Path) -> None:
    """Run ``blocks`` in order, in one namespace, in a subprocess; fail on error or timeout."""
    runnable = [b for b in blocks if not b.skipped]
    if not runnable:
        pytest.skip("every block is marked # skip-test")
    needs = [b for b in runnable if _NEEDS_SHARED.search(b.source)]
    if needs and not SHARED_DATA.is_dir():  # as the tests do: the data is CI's, not a clone's
        pytest.skip(f"{needs[0].path}:{needs[0].line} reads {SHARED_DATA}, which is absent")
    spec = tmp_path / "blocks.json"
    spec.write_text(
        json.dumps([{"source": b.source, "path": b.path, "line": b.line} for b in runnable]),
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _RUNNER, str(spec)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(f"timed out after {TIMEOUT_S:g} s\n--- stdout ---\n{out[-4000:]}")
    if proc.returncode != 0:
        pytest.fail(
            f"exit code {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}"
            f"\n--- stderr ---\n{proc.stderr[-8000:]}",
            pytrace=False,
        )


@pytest.mark.parametrize("blocks", _page_params())
def test_docs_page_runs(blocks: list[Block], tmp_path: Path) -> None:
    run_blocks(blocks, tmp_path)


@pytest.mark.parametrize("blocks", _docstring_params())
def test_docstring_example_runs(blocks: list[Block], tmp_path: Path) -> None:
    run_blocks(blocks, tmp_path)


# -- the collectors themselves -------------------------------------------------------------
def test_fence_parser() -> None:
    text = textwrap.dedent(
        """\
        Intro.

        ```python
        x = 1
        ```

        ```bash
        echo no
        ```

        !!! note
            ```python title="indented"
            y = x + 1
            ```

        ````python
        # skip-test
        raise SystemExit(1)
        ````
        """
    )
    blocks = fenced_python_blocks(text, "t.md")
    assert [b.source for b in blocks] == [
        "x = 1\n",
        "y = x + 1\n",
        "# skip-test\nraise SystemExit(1)\n",
    ]
    assert [b.skipped for b in blocks] == [False, False, True]
    assert blocks[0].line == 4


def test_something_is_collected() -> None:
    assert _page_params(), "no runnable python block found under docs/"
    assert _docstring_params(), f"no docstring example found under {PACKAGE}/"
