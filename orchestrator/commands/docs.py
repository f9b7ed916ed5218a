"""The `docs reference` command: write docs/reference/*.md from the schema, or check they are current.

The pages are rendered by orchestrator.config.reference from the dataclasses
the loader validates against. Rendering imports the architectures'
parameters, which live in the model modules, so this command imports torch
(never Ray); its --help stays light like every command's.
"""

from __future__ import annotations

from pathlib import Path

from ecgcore.errors import ProjectError
from orchestrator.config.reference import COMMAND, render_pages


def reference(out: str, check: bool = False) -> int:
    """Write every reference page into out; with check, write nothing and exit 1 naming the pages that differ."""
    return _check(Path(out), render_pages()) if check else _write(Path(out), render_pages())


def _check(folder: Path, pages: dict[str, str]) -> int:
    stale = [folder / name for name, text in pages.items() if _read(folder / name) != text]
    for path in stale:
        print(f"{path}: {'missing' if not path.exists() else 'differs from the schema'}")
    if stale:
        print(f"regenerate with: {COMMAND} --out {folder}")
        return 1
    print(f"{len(pages)} reference pages in {folder} are current")
    return 0


def _write(folder: Path, pages: dict[str, str]) -> int:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in pages.items():
            (folder / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ProjectError(f"--out {folder}: cannot write the reference pages ({exc.strerror})") from None
    print(f"wrote {', '.join(sorted(pages))} to {folder}")
    return 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
