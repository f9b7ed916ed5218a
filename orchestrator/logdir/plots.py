"""PNG plots of a job for `summarize --plot`: learning curves and the test confusion matrix.

For log/<architecture>/<job>/, written beside summary.json in log/<architecture>/:
  <job>_curves.png     train loss and validation score (validation loss for
                       pre-training) against epoch, one colour per fold id
                       (the same in every job), the kept model's epoch starred
                       (the last hotlog row's best_epoch)
  <job>_confusion.png  the test folds' predictions.csv summed: CinC 2017 as a
                       4x4 confusion matrix with per-class F1 and the official
                       score; the multi-label 12-lead tracks as a per-class
                       TP/FN/FP/TN table with F1 (one-vs-rest counts: there is
                       no single confusion matrix when a record has several labels)
A job with a fold not (yet) written plots the folds it has and says which are
missing. The summed predictions are scored with ecgcore's metric functions
(the fold's track: ecgcore.tracks and ecgcore.metrics), not re-implemented.
Matplotlib's object-oriented API on the Agg canvas: no pyplot, no global state.
"""

from __future__ import annotations

import csv
import math
import os
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ecgcore.errors import ProjectError
from ecgcore.metrics import challenge
from ecgcore.metrics.bootstrap import Pooled, point_metrics
from ecgcore.metrics.cinc2017 import confusion_matrix, f1_per_class, official_score
from orchestrator.logdir.pooled import read_predictions
from orchestrator.logdir.reader import HOTLOG, PREDICTIONS, FoldDir, JobDir

DPI = 100
CURVES_SIZE = (10, 6)  # inches: 1000 x 600 pixels at DPI
CONFUSION_SIZE = (10, 6)
MULTILABEL_SIZE = (10, 10)  # 24-26 class rows need the height
MARKERS = "osD^vPX<>h"


def plot_job(job_dir: Path, out_dir: Path) -> tuple[list[Path], list[str]]:
    """Write <job>_curves.png and <job>_confusion.png into out_dir: (files written, messages)."""
    job_dir, out_dir = Path(job_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    folds, missing = _folds(job_dir)
    info = _job_info(folds)
    written, messages = [], []
    for plot in (_curves, _confusion):
        path, message = plot(job_dir, out_dir, folds, missing, info)
        written += [path] if path else []
        messages += [f"{job_dir.name}: {message}"] if message else []
    return written, messages


def plot_report(arch_dir: Path, job_names: list[str], out: Path | None = None) -> str:
    """The lines `summarize --plot` prints: every file written (into out, default beside the jobs), then what
    could not be plotted."""
    lines = ["plots:"]
    for name in job_names:
        written, messages = plot_job(arch_dir / name, out or arch_dir)
        lines += [f"  {name}: wrote {path}" for path in written] + [f"  {m}" for m in messages]
    return "\n".join(lines)


def _folds(job_dir: Path) -> tuple[dict[int, Path], list[int]]:
    """Fold folders by id, and the ids a fold's job.json asks for that have no folder."""
    job = JobDir(job_dir)
    folds = {f.fold: f.path for f in job.folds()}
    return folds, [k for k in job.expected_folds() if k not in folds]


def _job_info(folds: dict[int, Path]) -> dict:
    """Track, kind and which folds finished, from the folds' job.json and scores.json."""
    info = {"track": None, "kind": "classify", "finished": set()}
    for k, path in folds.items():
        fold = FoldDir(path)
        info["track"] = fold.track()
        info["kind"] = fold.recorded("kind") or info["kind"]
        if fold.finished:
            info["finished"].add(k)
    return info


def _missing_message(absent: dict[int, str], used: list[int], uses: str, nothing: str) -> str | None:
    """'fold3 has no predictions.csv; the confusion matrix sums folds 0, 1, 2, 4' (None: nothing absent)."""
    if not absent:
        return None
    gaps = ", ".join(f"fold{k} {why}" for k, why in sorted(absent.items()))
    return f"{gaps}; {uses} {', '.join(map(str, used))}" if used else f"{gaps}; {nothing}"


def _absent(folds: dict[int, Path], missing: list[int], file: str) -> dict[int, str]:
    absent = {k: "has no folder" for k in missing}
    absent.update({k: f"has no {file}" for k, d in folds.items() if not (d / file).exists()})
    return absent


# ---- learning curves ----

def _read_hotlog(path: Path) -> dict[str, np.ndarray]:
    """Columns of hotlog.csv as float arrays; an empty cell (an undefined metric) is NaN."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    return {c: np.array([float(r[c]) if r[c] not in ("", None) else math.nan for r in rows]) for c in rows[0]}


def _read_folds(folds: dict[int, Path], missing: list[int], file: str, read) -> tuple[dict, dict[int, str]]:
    """Each fold's `file` read by `read`; absent: why a fold has none (no folder, no file, unreadable)."""
    absent = _absent(folds, missing, file)
    read_ok = {}
    for k, d in folds.items():
        if k not in absent:
            try:
                read_ok[k] = read(d / file)
            except (OSError, ProjectError, ValueError, KeyError, IndexError, TypeError) as exc:  # e.g. a row cut short
                absent[k] = f"has an unreadable {file} ({exc})"
    return read_ok, absent


def _curves(job_dir, out_dir, folds, missing, info) -> tuple[Path | None, str | None]:
    logs, absent = _read_folds(folds, missing, HOTLOG, _read_hotlog)
    for k in [k for k, log in logs.items() if not log]:
        # A finished fold without rows was not trained in epochs (a stacker, a booster fitted in one go).
        absent[k] = (f"finished with no validation rows in {HOTLOG} (not trained in epochs)" if k in info["finished"]
                     else f"has no validation in {HOTLOG} yet")
        del logs[k]
    message = _missing_message(absent, list(logs), "the learning curves show folds", "no learning curves")
    if not logs:
        return None, message or "no fold has a hotlog.csv; no learning curves"
    path = out_dir / f"{job_dir.name}_curves.png"
    _save(_curves_figure(job_dir, logs, info), path)
    return path, message


def _curves_figure(job_dir: Path, logs: dict[int, dict], info: dict) -> Figure:
    fig = Figure(figsize=CURVES_SIZE, dpi=DPI, layout="constrained")
    loss_ax, valid_ax = fig.subplots(2, 1, sharex=True)
    valid_col, valid_label = _valid_metric(logs, info)
    for k, log in logs.items():
        # Fold k has the same colour and marker in every job's plot; the markers tell apart folds whose
        # lines coincide (a model stuck on one class scores the same in several folds).
        style = {"color": f"C{k % 10}", "marker": MARKERS[k % len(MARKERS)], "ms": 11 - 2 * (k % 4),
                 "mfc": "none", "mew": 1.3}
        epoch, best = log["epoch"], log["best_epoch"][-1]  # the last row's best epoch is the model kept
        unfinished = "" if k in info["finished"] else ", unfinished"
        loss_ax.plot(epoch, log["train_loss"], **style, label=f"fold {k} (best epoch {best:g}{unfinished})")
        valid_ax.plot(epoch, log[valid_col], **style)
        for ax in (loss_ax, valid_ax):
            ax.axvline(best, color=style["color"], ls=":", lw=1, alpha=0.7)
        at = np.flatnonzero(epoch == best)
        if at.size:
            valid_ax.plot(best, log[valid_col][at[0]], "*", color=style["color"], ms=15, mec="black", mew=0.8)
    loss_ax.set_ylabel("train loss")
    valid_ax.set(ylabel=valid_label, xlabel="epoch")
    valid_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (loss_ax, valid_ax):
        ax.grid(alpha=0.3)
    handles = loss_ax.get_legend_handles_labels()[0] + [
        Line2D([], [], ls=":", marker="*", ms=12, color="grey", mec="black", label="best epoch\n(the kept model)")]
    fig.legend(handles=handles, loc="outside right center", fontsize=9)  # clear of the title's row
    n = len(logs)
    _title(fig, f"{job_dir.parent.name} / {job_dir.name}: learning curves of {n} fold{'s' * (n != 1)}", 13)
    return fig


def _valid_metric(logs: dict[int, dict], info: dict) -> tuple[str, str]:
    """The hotlog column to plot under the loss, and its axis label."""
    if not any("valid_score" in log for log in logs.values()):
        return "valid_loss", "validation loss"  # a pre-training job has no class scores
    return "valid_score", f"validation score\n({info['track'].metric_name})"


# ---- confusion matrix ----

def _confusion(job_dir, out_dir, folds, missing, info) -> tuple[Path | None, str | None]:
    if info["kind"] == "pretrain":
        return None, "pre-training job: no class predictions, no confusion matrix"
    tables, absent = _read_folds(folds, missing, PREDICTIONS, read_predictions)
    message = _missing_message(absent, list(tables), "the confusion matrix sums folds", "no confusion matrix")
    if not tables:
        return None, message or "no fold has a predictions.csv; no confusion matrix"
    classes = next(iter(tables.values())).classes
    if any(t.classes != classes for t in tables.values()):
        return None, "the folds' predictions.csv list different classes; no confusion matrix"
    path = out_dir / f"{job_dir.name}_confusion.png"
    title = f"{job_dir.parent.name} / {job_dir.name}: test fold{'s' * (len(tables) != 1)} " \
        f"{', '.join(map(str, tables))} summed"
    figure = _multilabel_figure if tables[next(iter(tables))].multilabel else _single_figure
    _save(figure(title, tables, info), path)
    return path, message


def _single_figure(title: str, tables: dict, info: dict) -> Figure:
    classes = next(iter(tables.values())).classes
    matrix = sum(confusion_matrix(t.labels, t.outputs, len(classes)) for t in tables.values())
    f1 = f1_per_class(matrix)
    per_class = "F1 of the summed matrix: " + "  ".join(f"{c} {v:.3f}" for c, v in zip(classes, f1, strict=True))
    track = info["track"]
    official = f"   {track.metric_name} = {official_score(matrix, classes, track.scored):.3f}" \
        if tuple(classes) == tuple(track.class_names) else ""
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    fig = Figure(figsize=CONFUSION_SIZE, dpi=DPI, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    _annotate(ax, share, [[str(v) for v in row] for row in matrix], fontsize=14)
    ax.set_xticks(range(len(classes)), classes, fontsize=12)
    ax.set_yticks(range(len(classes)), [f"{c} (n={n})" for c, n in zip(classes, rows[:, 0], strict=True)],
                  fontsize=12)
    ax.set(xlabel="prediction", ylabel="reference")
    fig.colorbar(image, ax=ax, label="share of the reference class (row)")
    _title(fig, f"{title}, {int(matrix.sum())} records: confusion matrix\n{per_class}{official}", 12)
    return fig


def _multilabel_figure(title: str, tables: dict, info: dict) -> Figure:
    classes = next(iter(tables.values())).classes
    labels = np.concatenate([t.labels for t in tables.values()])
    outputs = np.concatenate([t.outputs for t in tables.values()])
    counts = np.stack([(labels & outputs).sum(0), (labels & ~outputs).sum(0),
                       (~labels & outputs).sum(0), (~labels & ~outputs).sum(0)], axis=1)
    f1 = challenge.class_f1(labels, outputs)
    positives, negatives = counts[:, :2].sum(1, keepdims=True), counts[:, 2:].sum(1, keepdims=True)
    # Colour: TP, FN as shares of the class's positives, FP of its negatives, so rare classes show too.
    share = np.hstack([np.divide(counts[:, :2], positives, out=np.zeros((len(classes), 2)), where=positives > 0),
                       np.divide(counts[:, 2:], negatives, out=np.zeros((len(classes), 2)), where=negatives > 0),
                       f1[:, None]])
    share[:, 3] = np.nan  # TN is near all negatives for every rare class: shaded, it would draw the eye
    text = [[*map(str, row), "n/a" if math.isnan(v) else f"{v:.2f}"] for row, v in zip(counts, f1, strict=True)]
    fig = Figure(figsize=MULTILABEL_SIZE, dpi=DPI, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(share), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    _annotate(ax, np.nan_to_num(share), text, fontsize=9)
    ax.set_xticks(range(5), ["TP", "FN", "FP", "TN", "F1"], fontsize=11)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(classes)), [f"{c} ({n})" for c, n in zip(classes, positives[:, 0], strict=True)],
                  fontsize=9)
    ax.set_ylabel("class (positives in the test folds)")
    fig.colorbar(image, ax=ax, label="TP, FN: share of the positives;  FP: share of the negatives;  F1 (TN unshaded)")
    _title(fig, f"{title}: {len(labels)} records, per-class one-vs-rest counts and F1\n(multi-label: no single "
           f"confusion matrix){_pooled_scores(tables, info)}", 11)
    return fig


def _pooled_scores(tables: dict, info: dict) -> str:
    """Macro F1 and the track's score of the pooled folds."""
    pooled = Pooled(info["track"], next(iter(tables.values())).classes,
                    tuple(r for t in tables.values() for r in t.records),
                    np.concatenate([t.labels for t in tables.values()]),
                    np.concatenate([t.outputs for t in tables.values()]),
                    np.concatenate([t.probs for t in tables.values()]))
    try:
        point = point_metrics(pooled)
    except ValueError:  # classes that are not the track's (a hand-made log): the macro F1 alone
        return f"; macro F1 {challenge.f_measure(pooled.labels, pooled.outputs):.3f}"
    return f"; macro F1 {point['f_measure']:.3f}, {info['track'].metric_name} {point['score']:.3f}"


def _title(fig: Figure, text: str, fontsize: int) -> None:
    """The figure title, each line wrapped to the figure's width (a search variant's name can be long)."""
    width = int(0.95 * fig.get_figwidth() * 72 / (0.52 * fontsize))  # DejaVu Sans: about 0.5 em a character
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in text.split("\n")), fontsize=fontsize)


def _annotate(ax, shade: np.ndarray, text: list[list[str]], fontsize: int) -> None:
    """Each cell's text, white on the dark cells so it stays readable."""
    for i, row in enumerate(text):
        for j, value in enumerate(row):
            ax.text(j, i, value, ha="center", va="center", fontsize=fontsize,
                    color="white" if shade[i, j] > 0.6 else "black")


def _save(fig: Figure, path: Path) -> None:
    """PNG at the figure's fixed size (no tight bbox: the pixel size is always size x DPI), atomically."""
    FigureCanvasAgg(fig)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=DPI)
    fig.clear()  # free the artists now rather than at garbage collection
    os.replace(tmp, path)
