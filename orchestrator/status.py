"""The `status` command: per job and fold, pending / running / stopped / done / failed, from the log folder.

Reads only the files the fold logs write, so it works while a submit runs,
after it, and from another shell: scores.json means done (with the score),
error.txt failed (its last line, and where the full trace is), attempt.json
with a live process running (epoch, best validation score so far, elapsed),
attempt.json whose process is gone stopped (`resume` continues it), nothing
pending. With a job file, its folds are listed even before they start; a
job folder's lock names the submit that holds it.
"""

from __future__ import annotations

import csv
import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.foldlog import ATTEMPT, ERROR, HOTLOG, SCORES
from orchestrator.runstate import LOCK, describe, process_alive, read_json_or_none


@dataclass(frozen=True)
class FoldState:
    state: str  # pending, running, stopped, done, failed
    detail: str


def fold_state(fold: Path) -> FoldState:
    if (fold / SCORES).exists():
        scores = json.loads((fold / SCORES).read_text())
        if scores.get("kind") == "pretrain":
            return FoldState("done", f"valid loss {scores['valid']['loss']:.4f}")
        return FoldState("done", f"test score {scores['test']['score']:.3f} after {scores['epochs_run']} epochs")
    if (fold / ERROR).exists():
        lines = [ln for ln in (fold / ERROR).read_text().splitlines() if ln.strip()]
        return FoldState("failed", f"{lines[-1] if lines else 'error'} (trace: {fold / ERROR})")
    attempt = read_json_or_none(fold / ATTEMPT)
    if attempt is None:
        return FoldState("pending", "")
    progress = _progress(fold / HOTLOG)
    elapsed = f"{(time.time() - attempt.get('started', time.time())) / 60:.1f} min"
    same_host = attempt.get("host") == socket.gethostname()
    if same_host and not process_alive(int(attempt.get("pid", -1))):
        return FoldState("stopped", f"{progress}; its process is gone (resume continues it)")
    where = "" if same_host else f" on {attempt.get('host')}"
    return FoldState("running", f"{progress}, attempt {attempt.get('attempt', 1)}, {elapsed}{where}")


def _progress(hotlog: Path) -> str:
    try:
        with open(hotlog, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        rows = []
    if not rows:
        return "epoch 0 (no validation yet)"
    last = rows[-1]
    best = next((r for r in rows if r["epoch"] == last["best_epoch"]), last)
    value = f"best valid score {float(best['valid_score']):.3f}" if best.get("valid_score") else \
        f"best valid loss {float(best['valid_loss']):.4f}"
    return f"epoch {last['epoch']}, {value} (epoch {last['best_epoch']})"


def fold_dirs(log_dir: Path, job_file: str | None, models_dir: str | None) -> list[Path]:
    """The folds of a job file (planned, started or not), or every fold folder under log_dir."""
    if job_file:
        from orchestrator.submit import SubmitOptions, plan

        _, tasks = plan(SubmitOptions(job_file, models_dir, str(log_dir)), Path.cwd())
        return [Path(t.out_dir) for t in tasks]
    return sorted(p for p in log_dir.glob("*/*/fold*") if p.is_dir() and not p.parts[-3].startswith("."))


def status(log_dir: str | Path, job_file: str | None = None, models_dir: str | None = None) -> str:
    folds = fold_dirs(Path(log_dir), job_file, models_dir)
    if not folds:
        return f"no fold folders under {log_dir}"
    lines, counts, jobs = [], {}, []
    for fold in sorted(folds, key=lambda p: (p.parent, p.name)):
        if fold.parent not in jobs:
            jobs.append(fold.parent)
        state = fold_state(fold)
        counts[state.state] = counts.get(state.state, 0) + 1
        lines.append(f"{fold.parent.parent.name}/{fold.parent.name}/{fold.name:<7} {state.state:<8} {state.detail}")
    for job in jobs:
        holder = read_json_or_none(job / LOCK)
        if holder:
            lines.append(f"{job}: locked by {describe(holder)}")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return "\n".join([*lines, f"{len(folds)} fold(s): {summary}"])
