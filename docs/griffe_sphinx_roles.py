"""Griffe extension: render the reST bits of the package's Google docstrings as Markdown.

The docstrings use Sphinx roles (``:class:`~.latency.LatencyModel```), ``::`` before a
literal block and ``\\ `` joins. mkdocstrings renders docstrings as Markdown, so this
extension rewrites them when griffe loads the package (the source is not touched):

* a role whose target is an object documented in the API reference becomes an autorefs
  link, ``[`LatencyModel`][langgraph_speculative.integrations.sim.latency.LatencyModel]``;
  any other target (a LangChain class, a private helper) becomes inline code;
* ``text::`` before an indented block becomes ``text:`` (the block is a code block);
* ``\\ `` (reST's empty separator, as in ``ModelTurn``\\ s) is dropped.

Targets resolve as Sphinx resolves them: ``~`` shows the last component only; a target
is looked up in the current class, module and enclosing packages, then (for a leading
``.``, or a name found nowhere else) by unique suffix among the package's objects. An
object counts as documented if its module has a ``::: module`` directive under ``docs/``,
and it and its parents are public and have docstrings (mkdocstrings renders nothing else).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe

_DOCS = Path(__file__).resolve().parent
_DIRECTIVE = re.compile(r"^:::\s+([\w.]+)\s*$", re.MULTILINE)
_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const|type):`(?P<body>[^`]+)`"
)
_TITLED = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")
_LITERAL_INTRO = re.compile(r"(?<=\S)::[ \t]*$", re.MULTILINE)
_BARE_LITERAL_INTRO = re.compile(r"^[ \t]*::[ \t]*$\n?", re.MULTILINE)


def _documented_modules() -> set[str]:
    found: set[str] = set()
    for page in _DOCS.rglob("*.md"):
        found.update(_DIRECTIVE.findall(page.read_text(encoding="utf-8")))
    return found


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles and reST literal markers of docstrings into Markdown."""

    def __init__(self) -> None:
        super().__init__()
        self._done: set[str] = set()

    # griffe >= 1.x calls on_package; older releases called on_package_loaded.
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Rewrite every docstring of the package once it is loaded."""
        self._rewrite_package(pkg)

    def on_package_loaded(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Same as :meth:`on_package`, for older griffe releases."""
        self._rewrite_package(pkg)

    def _rewrite_package(self, pkg: griffe.Module) -> None:
        if pkg.path in self._done:
            return
        self._done.add(pkg.path)
        objects: dict[str, griffe.Object] = {}
        self._collect(pkg, objects)
        linkable = self._linkable(objects, _documented_modules())
        for obj in objects.values():
            if obj.docstring is not None:
                obj.docstring.value = self._rewrite(obj.docstring.value, obj, objects, linkable)

    def _collect(self, obj: griffe.Object, out: dict[str, griffe.Object]) -> None:
        out[obj.path] = obj
        for member in obj.members.values():
            if not member.is_alias:
                self._collect(member, out)  # type: ignore[arg-type]

    @staticmethod
    def _linkable(objects: dict[str, griffe.Object], modules: set[str]) -> set[str]:
        ok: set[str] = set()
        for path, obj in objects.items():
            if obj.is_module:
                if path in modules:
                    ok.add(path)
                continue
            module = obj.module.path
            if module not in modules:
                continue
            names = path[len(module) + 1 :].split(".")
            if any(n.startswith("_") for n in names):
                continue
            current: Any = obj
            rendered = True
            while current is not None and not current.is_module:
                if not current.docstring:
                    rendered = False
                    break
                current = current.parent
            if rendered:
                ok.add(path)
        return ok

    def _resolve(self, target: str, obj: griffe.Object, objects: dict[str, Any]) -> str | None:
        name = target.lstrip(".")
        if not name:
            return None
        scopes: list[str] = []
        scope: Any = obj if not obj.is_function else obj.parent
        while scope is not None:
            scopes.append(scope.path)
            scope = scope.parent
        if not target.startswith("."):
            if name in objects:
                return name
            for prefix in scopes:
                if f"{prefix}.{name}" in objects:
                    return f"{prefix}.{name}"
        suffix = f".{name}"
        hits = [p for p in objects if p.endswith(suffix)]
        if len(hits) == 1:
            return hits[0]
        for prefix in scopes:  # several: prefer the one nearest to obj
            near = [p for p in hits if p.startswith(prefix + ".")]
            if len(near) == 1:
                return near[0]
        return None

    def _role(
        self,
        match: re.Match[str],
        obj: griffe.Object,
        objects: dict[str, Any],
        linkable: set[str],
    ) -> str:
        body = match.group("body").strip()
        titled = _TITLED.match(body)
        if titled:
            title, target = titled.group("title"), titled.group("target")
        else:
            short = body.startswith("~")
            target = body.lstrip("~")
            title = target.lstrip(".").rsplit(".", 1)[-1] if short else target.lstrip(".")
        path = self._resolve(target, obj, objects)
        if path is None:
            return f"`{title}`"
        canonical = objects[path]
        path = canonical.path
        return f"[`{title}`][{path}]" if path in linkable else f"`{title}`"

    def _rewrite(
        self,
        text: str,
        obj: griffe.Object,
        objects: dict[str, Any],
        linkable: set[str],
    ) -> str:
        text = _ROLE.sub(lambda m: self._role(m, obj, objects, linkable), text)
        text = _BARE_LITERAL_INTRO.sub("", text)
        text = _LITERAL_INTRO.sub(":", text)
        return text.replace("\\ ", "")
