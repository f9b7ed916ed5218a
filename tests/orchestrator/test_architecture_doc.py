"""docs/architecture.md names only what exists, and names every package and module.

Backticked spans that are paths under ecgcore/ or orchestrator/ (`ecgcore/io/`,
`orchestrator/run/trial.py`) or dotted module names (`orchestrator.plan.expand`)
must exist; a package must have its __init__.py. Conversely every package
(a folder with __init__.py) must be named, and every module must be listed in
the tree table: on its package's row as a bare `name.py`, or by its full path.
Reads files only: no torch, no Ray.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
TOP = ("ecgcore", "orchestrator")

SPAN = re.compile(r"`([^`\n]+)`")
SLASH_PATH = re.compile(r"^(?:ecgcore|orchestrator)(?:/\w+)*(?:/|/\w+\.py)?$")
DOTTED = re.compile(r"^(?:ecgcore|orchestrator)(?:\.\w+)+$")
BARE_MODULE = re.compile(r"^\w+\.py$")


def _spans(text: str) -> list[str]:
    return SPAN.findall(text)


def _is_package(path: Path) -> bool:
    return path.is_dir() and (path / "__init__.py").is_file()


def _packages() -> list[Path]:
    return sorted(init.parent for top in TOP for init in (ROOT / top).rglob("__init__.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _named_paths(text: str) -> set[str]:
    """Every ecgcore/orchestrator path the doc names, as a repo-relative path without a trailing slash."""
    named = set()
    for span in _spans(text):
        if SLASH_PATH.match(span):
            named.add(span.rstrip("/"))
        elif DOTTED.match(span):
            named.add(span.replace(".", "/"))
    return named


def _listed_modules(text: str) -> set[str]:
    """Modules named on a tree row: bare `x.py` spans resolved against the row's package."""
    listed = set()
    for line in text.splitlines():
        spans = _spans(line)
        package = next((s for s in spans if SLASH_PATH.match(s) and s.endswith("/")), None)
        if package is None or not line.startswith("|"):
            continue
        listed.update(package + s for s in spans if BARE_MODULE.match(s))
    return listed


def test_every_named_path_exists():
    text = DOC.read_text()
    missing = []
    for span in _spans(text):
        if SLASH_PATH.match(span):
            path = ROOT / span
            ok = _is_package(path) if span.endswith("/") or not span.endswith(".py") else path.is_file()
        elif DOTTED.match(span):
            base = ROOT / span.replace(".", "/")
            ok = _is_package(base) or base.with_suffix(".py").is_file()
        else:
            continue
        if not ok:
            missing.append(span)
    for module in _listed_modules(text):
        if not (ROOT / module).is_file():
            missing.append(module)
    assert not missing, f"docs/architecture.md names what does not exist: {sorted(set(missing))}"


def test_every_package_is_named():
    named = _named_paths(DOC.read_text())
    unnamed = [_rel(p) + "/" for p in _packages() if _rel(p) not in named]
    assert not unnamed, f"packages missing from docs/architecture.md: {unnamed}"


def test_every_module_is_listed():
    text = DOC.read_text()
    listed = _listed_modules(text) | {p for p in _named_paths(text) if p.endswith(".py")}
    modules = [_rel(m) for p in _packages() for m in sorted(p.glob("*.py")) if m.name != "__init__.py"]
    unlisted = [m for m in modules if m not in listed]
    assert not unlisted, f"modules missing from the tree in docs/architecture.md: {unlisted}"


def test_the_doc_is_checked_at_all():
    """The patterns above find the tree: a broken regex must not make the other tests pass vacuously."""
    text = DOC.read_text()
    assert len(_named_paths(text)) >= len(_packages())
    assert "ecgcore/training/train.py" in _listed_modules(text)
