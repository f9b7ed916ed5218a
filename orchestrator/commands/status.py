"""The `status` command: per job and fold, pending / running / stopped / done / failed, from the log folder.

Reads only the files the fold logs write, so it works while a submit runs,
after it, and from another shell: scores.json means done (with the score),
error.txt failed (its last line, and where the full trace is), attempt.json
with a live process running (epoch, best validation score so far, elapsed),
attempt.json whose process is gone stopped (`resume` continues it), nothing
pending. With a job file, its folds are listed even before they start; a
job folder's lock names the submit that holds it.

A run of at most SMALL_RUN folds, or full=True (`--all`), is listed fold by
fold. A larger one (a search of hundreds of variants) gets one screen: the
counts per job and state (at most JOB_ROWS jobs), a search's variants
(<job>__<values>) counted together under the searched job, then the running
and the failed folds one by one (at most LISTED of each). The state of a fold costs a file's
existence, and attempt.json only for a fold that started and has neither
scores nor an error; the details (scores.json, the hotlog, the trace) are
read only for the folds listed.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.logdir.reader import ERROR, FoldDir, JobDir, all_folds
from orchestrator.logdir.runstate import describe, process_alive

STATES = ("pending", "running", "stopped", "done", "failed")
SMALL_RUN = 40  # folds: a run of at most this many is listed fold by fold
LISTED = 20  # the running (and the failed) folds listed one by one in the one-screen view
JOB_ROWS = 30  # the jobs counted one by one in the one-screen view


@dataclass(frozen=True)
class FoldState:
    state: str  # pending, running, stopped, done, failed
    detail: str


def state_of(fold: FoldDir, host: str) -> str:
    """The fold's state alone; host: this machine's name (a fold running elsewhere cannot be checked)."""
    if fold.finished:
        return "done"
    if fold.file(ERROR).exists():
        return "failed"
    attempt = fold.attempt()
    if attempt is None:
        return "pending"
    gone = attempt.get("host") == host and not process_alive(int(attempt.get("pid", -1)))
    return "stopped" if gone else "running"


def fold_state(fold: FoldDir, host: str | None = None) -> FoldState:
    """The fold's state and what it says about it (its score, its last error line, its progress)."""
    host = host or socket.gethostname()
    state = state_of(fold, host)
    if state == "done":
        return FoldState(state, _done(fold.scores()))
    if state == "failed":
        error = fold.error_lines()
        return FoldState(state, f"{error[-1] if error else 'error'} (trace: {fold.file(ERROR)})")
    if state == "pending":
        return FoldState(state, "")
    attempt, progress = fold.attempt(), _progress(fold.hotlog())
    if state == "stopped":
        return FoldState(state, f"{progress}; its process is gone (resume continues it)")
    elapsed = f"{(time.time() - attempt.get('started', time.time())) / 60:.1f} min"
    where = "" if attempt.get("host") == host else f" on {attempt.get('host')}"
    return FoldState(state, f"{progress}, attempt {attempt.get('attempt', 1)}, {elapsed}{where}{_gpus(attempt)}")


def _done(scores: dict | None) -> str:
    if scores is None:
        return "scores.json unreadable"
    if scores.get("kind") == "pretrain":
        return f"valid loss {scores['valid']['loss']:.4f}"
    return f"test score {scores['test']['score']:.3f} after {scores['epochs_run']} epochs{_gpus(scores)}"


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


def status(log_dir: str | Path, job_file: str | None = None, models_dir: str | None = None,
           full: bool = False) -> str:
    """The state of every fold; a run of more than SMALL_RUN folds in one screen unless full (`--all`)."""
    folds = fold_dirs(Path(log_dir), job_file, models_dir)
    if not folds:
        return f"no fold folders under {log_dir}"
    folds = sorted(folds, key=lambda f: (f.path.parent, f.fold if f.fold is not None else -1))
    host = socket.gethostname()
    if full or len(folds) <= SMALL_RUN:
        return _every_fold(folds, host)
    return _one_screen(folds, host)


def _label(fold: FoldDir) -> str:
    return f"{fold.path.parent.parent.name}/{fold.path.parent.name}/{fold.path.name:<7}"


def _every_fold(folds: list[FoldDir], host: str) -> str:
    lines, counts = [], dict.fromkeys(STATES, 0)
    for fold in folds:
        state = fold_state(fold, host)
        counts[state.state] += 1
        lines.append(f"{_label(fold)} {state.state:<8} {state.detail}")
    jobs = {fold.path.parent: None for fold in folds}
    lines += [f"{path}: locked by {describe(holder)}" for path in jobs if (holder := JobDir(path).lock_holder())]
    return "\n".join([*lines, _total(len(folds), counts)])


def _total(n_folds: int, counts: dict[str, int]) -> str:
    return f"{n_folds} fold(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n)


def _one_screen(folds: list[FoldDir], host: str) -> str:
    states = [state_of(fold, host) for fold in folds]
    per_job: dict[tuple[str, bool], dict[str, int]] = {}  # (architecture/job, whether a search's variants)
    variants: dict[tuple[str, bool], set[str]] = {}
    for fold, state in zip(folds, states, strict=True):
        job = fold.path.parent
        key = (f"{job.parent.name}/{job.name.split('__')[0]}", "__" in job.name)
        per_job.setdefault(key, dict.fromkeys(STATES, 0))[state] += 1
        variants.setdefault(key, set()).add(job.name)
    lines = _job_counts(per_job, variants)
    for wanted in ("running", "failed"):
        chosen = [fold for fold, state in zip(folds, states, strict=True) if state == wanted]
        if chosen:
            lines.append(f"{wanted} ({len(chosen)}):")
            lines += [f"  {_label(fold)} {fold_state(fold, host).detail}" for fold in chosen[:LISTED]]
            if len(chosen) > LISTED:
                lines.append(f"  ... and {len(chosen) - LISTED} more (status --all lists every fold)")
    if stopped := states.count("stopped"):
        lines.append(f"stopped ({stopped}): their process is gone; resume continues them")
    lines += _locks({fold.path.parent for fold in folds})
    counts = {s: states.count(s) for s in STATES}
    return "\n".join([*lines, f"{_total(len(folds), counts)} (status --all lists every fold)"])


def _job_counts(per_job: dict[tuple[str, bool], dict[str, int]], variants: dict) -> list[str]:
    """A row per job, a searched job's variants counted together; at most JOB_ROWS rows."""
    rows = list(per_job.items())[:JOB_ROWS]
    names = [f"{name} ({len(variants[name, search])} variants)" if search else name for (name, search), _ in rows]
    width = max(len(name) for name in names)
    lines = [f"{'job':<{width}} {'folds':>6} " + " ".join(f"{s:>8}" for s in STATES)]
    lines += [f"{name:<{width}} {sum(counts.values()):>6} " + " ".join(f"{counts[s]:>8}" for s in STATES)
              for name, (_, counts) in zip(names, rows, strict=True)]
    if len(per_job) > JOB_ROWS:
        lines.append(f"... and {len(per_job) - JOB_ROWS} more job(s)")
    return lines


def _locks(jobs: set[Path]) -> list[str]:
    """The submits that hold job folders, each once with the number of folders it holds."""
    holders: dict[str, list[Path]] = {}
    for path in sorted(jobs):
        holder = JobDir(path).lock_holder()
        if holder:
            holders.setdefault(describe(holder), []).append(path)
    return [f"{paths[0]}: locked by {who}" if len(paths) == 1 else
            f"{len(paths)} job folders ({paths[0].parent}/...): locked by {who}" for who, paths in holders.items()]
