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

import socket
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.logdir.reader import ERROR, FoldDir, JobDir, all_folds
from orchestrator.logdir.runstate import describe, process_alive


@dataclass(frozen=True)
class FoldState:
    state: str  # pending, running, stopped, done, failed
    detail: str


def fold_state(fold: FoldDir) -> FoldState:
    scores = fold.scores()
    if scores is not None:
        if scores.get("kind") == "pretrain":
            return FoldState("done", f"valid loss {scores['valid']['loss']:.4f}")
        return FoldState("done", f"test score {scores['test']['score']:.3f} after {scores['epochs_run']} epochs"
                                 f"{_gpus(scores)}")
    error = fold.error_lines()
    if error is not None:
        return FoldState("failed", f"{error[-1] if error else 'error'} (trace: {fold.file(ERROR)})")
    attempt = fold.attempt()
    if attempt is None:
        return FoldState("pending", "")
    progress = _progress(fold.hotlog())
    elapsed = f"{(time.time() - attempt.get('started', time.time())) / 60:.1f} min"
    same_host = attempt.get("host") == socket.gethostname()
    if same_host and not process_alive(int(attempt.get("pid", -1))):
        return FoldState("stopped", f"{progress}; its process is gone (resume continues it)")
    where = "" if same_host else f" on {attempt.get('host')}"
    return FoldState("running", f"{progress}, attempt {attempt.get('attempt', 1)}, {elapsed}{where}{_gpus(attempt)}")


def _gpus(record: dict) -> str:
    """' on GPU 0 (CUDA_VISIBLE_DEVICES=0)' for a fold Ray gave GPUs; '' for a CPU fold or an older log.

    A DDP fold: ', 2 DDP workers on GPU 0,1 (...)', or ', 2 DDP workers on 2 nodes' (a node each).
    """
    workers = record.get("workers") or []
    nodes = len({w.get("node_id") for w in workers})
    text = f", {len(workers)} DDP workers" + (f" on {nodes} nodes" if nodes > 1 else "") if workers else ""
    ids = record.get("gpu_ids")
    if not ids:
        return text
    return f"{text} on GPU {','.join(map(str, ids))} (CUDA_VISIBLE_DEVICES={record.get('cuda_visible_devices')})"


def _progress(rows: list[dict]) -> str:
    if not rows:
        return "epoch 0 (no validation yet)"
    last = rows[-1]
    best = next((r for r in rows if r["epoch"] == last["best_epoch"]), last)
    value = f"best valid score {float(best['valid_score']):.3f}" if best.get("valid_score") else \
        f"best valid loss {float(best['valid_loss']):.4f}"
    return f"epoch {last['epoch']}, {value} (epoch {last['best_epoch']})"


def fold_dirs(log_dir: Path, job_file: str | None, models_dir: str | None) -> list[FoldDir]:
    """The folds of a job file (planned, started or not), or every fold folder under log_dir."""
    if job_file:
        from orchestrator.commands.submit import SubmitOptions, plan

        _, tasks = plan(SubmitOptions(job_file=job_file, models_dir=models_dir, log_dir=str(log_dir)), Path.cwd())
        return [FoldDir(Path(t.out_dir)) for t in tasks]
    return all_folds(log_dir)


def status(log_dir: str | Path, job_file: str | None = None, models_dir: str | None = None) -> str:
    folds = fold_dirs(Path(log_dir), job_file, models_dir)
    if not folds:
        return f"no fold folders under {log_dir}"
    lines, counts, jobs = [], {}, []
    for fold in sorted(folds, key=lambda f: (f.path.parent, f.fold if f.fold is not None else -1)):
        job = JobDir(fold.path.parent)
        if job not in jobs:
            jobs.append(job)
        state = fold_state(fold)
        counts[state.state] = counts.get(state.state, 0) + 1
        lines.append(f"{job.architecture}/{job.name}/{fold.path.name:<7} {state.state:<8} {state.detail}")
    for job in jobs:
        holder = job.lock_holder()
        if holder:
            lines.append(f"{job.path}: locked by {describe(holder)}")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return "\n".join([*lines, f"{len(folds)} fold(s): {summary}"])
