"""MODEL_CARD.md, written by `export` beside model.onnx: what the model is, what it was trained and scored on.

Everything comes from the fold folders and the export's sidecar: the training
data and its signature (the sha256 of the dataset's files that submit records
in each fold's scores.json, provenance.data_signatures), the split and the
folds, the job's cross-validation table exactly as `summarize --format
markdown` prints it (orchestrator.commands.summarize: folds, mean, std, the
naive row, the pooled scores with their bootstrap intervals, per-class F1),
intended use, known limits, and the provenance of the training and of the export.
"""

from __future__ import annotations

from pathlib import Path

from ecgcore.data.splits import has_holdout, is_sources_split
from orchestrator.commands.summarize import job_summary
from orchestrator.commands.summary_table import render_table
from orchestrator.logdir.reader import FoldDir, JobDir

INTENDED_USE = (
    "Research on ECG rhythm and abnormality classification: reproducing and comparing the challenge entries, "
    "studying what they learn. It is **not a medical device** and was not validated as one: its outputs must "
    "not be used to diagnose, treat or triage anyone, nor to decide anything about a person's care.")


def model_card(run: Path, folds: list[FoldDir], sidecar: dict) -> str:
    """The card's markdown for the folds exported from run, with the export's sidecar."""
    scores = folds[-1].scores() or {}
    job_dir = JobDir(folds[0].path.parent)
    what = f"fold {folds[0].fold}" if len(folds) == 1 else f"ensemble of {len(folds)} folds"
    sections = [
        f"# Model card: {sidecar['architecture']} / {job_dir.name} ({what})",
        f"Exported {sidecar['created']} from `{run}` by `python -m orchestrator export`. "
        f"Files: `{sidecar['file']}` (ONNX) and `{sidecar['file']}.json` (the sidecar: everything needed to run it).",
        _model(sidecar, scores, folds),
        _data(scores, folds),
        _split(scores, job_dir, folds),
        _cv_scores(job_dir, sidecar["architecture"], scores),
        "## Intended use\n\n" + INTENDED_USE,
        _limits(sidecar, scores, folds[-1].track()),
        _provenance(scores, sidecar),
    ]
    return "\n\n".join(sections) + "\n"


def _model(sidecar: dict, scores: dict, folds: list[FoldDir]) -> str:
    inp, out = sidecar["input"], sidecar["output"]
    before = "\n".join(f"   {i}. {step}" for i, step in enumerate(sidecar["preprocessing"]["before_the_graph"], 1))
    inside = "\n".join(f"   - {step}" for step in sidecar["preprocessing"]["in_the_graph"])
    return "\n".join([
        "## Model",
        "",
        f"- Architecture: {sidecar['architecture']} (model file `{scores.get('model_file')}`, "
        f"{_count(scores.get('n_parameters'))} parameters per fold), trained for the {sidecar['track_title']} "
        f"classes: {', '.join(sidecar['classes'])}.",
        f"- Folds in the file: {', '.join(map(str, sidecar['folds']))}"
        + ("; their probabilities are averaged inside the graph." if len(folds) > 1 else "."),
        f"- Input `{inp['name']}`: float32 {_shape(inp['shape'])}, {_what_goes_in(inp)}, leads "
        f"{' '.join(inp['leads'])}. Prepare it with these steps, in order:",
        before,
        "- Inside the graph:",
        inside,
        f"- Output `{out['name']}`: {_shape(out['shape'])}, {out['activation']}. Decision: {sidecar['decision']}.",
        f"- Thresholds: {_thresholds(sidecar)}",
    ])


def _what_goes_in(inp: dict) -> str:
    if "min_frames" in inp:
        return f"one whole record's log spectrogram (of its {inp['sampling_rate_hz']:g} Hz signal), " \
               f"{inp['min_frames']}+ frames"
    return f"one whole record in mV at {inp['sampling_rate_hz']:g} Hz, {inp['min_samples']}+ samples"


def _unit(sidecar: dict) -> str:
    return "frames" if "min_frames" in sidecar["input"] else "samples"


def _thresholds(sidecar: dict) -> str:
    if not sidecar["thresholds"]:
        return "none (single-label: the largest probability wins)."
    values = ", ".join(f"{c} {t:.2f}" for c, t in sidecar["thresholds"].items())
    return f"{values} ({sidecar['thresholds_note']})."


def _data(scores: dict, folds: list[FoldDir]) -> str:
    data_dir = scores.get("data_dir")
    signature = ((scores.get("provenance") or {}).get("data_signatures") or {}).get(data_dir)
    sizes = "; ".join(f"fold {f.fold}: " + ", ".join(f"{part} {_n(f, part)}" for part in ("train", "valid", "test"))
                      for f in folds)
    return "\n".join([
        "## Training data",
        "",
        f"- Dataset: `{data_dir}` ({folds[-1].track().title}), sampled at {_rate(scores)}.",
        f"- Signature: sha256 `{signature}` of the dataset's files, recorded by submit" if signature else
        "- Signature: not recorded (the run predates data signatures), so the files cannot be proven the same",
        f"- Records per part: {sizes}.",
    ])


def _split(scores: dict, job_dir: JobDir, folds: list[FoldDir]) -> str:
    split = str(scores.get("split"))
    if is_sources_split(split):
        kind = "leave-source-out: each fold tests one source database it never trained or validated on"
    else:
        kind = "stratified k-fold cross-validation: each record is tested by one fold" + (
            ", after a hold-out part no fold saw" if has_holdout(split) else "")
    expected = job_dir.expected_folds()
    sources = [f"fold {f.fold}: {' + '.join(f.recorded('test_sources'))}" for f in folds
               if f.recorded("test_sources") and is_sources_split(split)]
    return "\n".join([
        "## Split and folds",
        "",
        f"- Split `{split}` ({kind}).",
        f"- The job's folds: {', '.join(map(str, expected)) or 'not recorded'}; finished and exported: "
        f"{', '.join(str(f.fold) for f in folds)}. Each fold's best model is the one of its best validation score.",
        *([f"- Test sources: {'; '.join(sources)}."] if sources else []),
    ])


def _cv_scores(job_dir: JobDir, architecture: str, scores: dict) -> str:
    job = job_summary(job_dir)
    naive = ("The naive row scores the same test folds for a classifier that always answers the training fold's "
             "majority class." if job and job.naive else job_dir.folds()[-1].track().no_naive_note)
    table = _blank_after_tables(render_table(architecture, [job], {}, markdown=True)) if job else "No finished fold."
    return "\n".join([
        "## Cross-validation scores",
        "",
        f"As `summarize {architecture} --format markdown` prints them (test folds; per-class F1 in the F1 columns or "
        "lines). " + naive,
        "",
        table,
    ])


def _limits(sidecar: dict, scores: dict, track) -> str:
    lines = [
        "## Known limits",
        "",
        "- The scores above are cross-validation estimates on one dataset; records from other devices, hospitals "
        "or populations may score far lower.",
        f"- Records must be prepared exactly as listed above (leads, filters, {sidecar['input']['sampling_rate_hz']:g} "
        "Hz, mV); anything else is outside what was trained and checked.",
        f"- The ONNX file was checked against PyTorch on {sidecar['check']['records']} real records of "
        f"{min(sidecar['check']['lengths'])}-{max(sidecar['check']['lengths'])} {_unit(sidecar)}: largest probability "
        f"difference {sidecar['check']['max_abs_difference']:.1e} (tolerance {sidecar['check']['tolerance']:g}).",
    ]
    return "\n".join(lines + track.card_limits(str(scores.get("split"))))


def _provenance(scores: dict, sidecar: dict) -> str:
    trained, exported = _Known(scores.get("provenance") or {}), _Known(sidecar["provenance"])
    packages = {**exported.get("packages", {}), **exported.get("export_packages", {})}
    return "\n".join([
        "## Provenance",
        "",
        f"- Training: commit `{trained['git_commit']}`, submitted {trained['submitted_at']} on "
        f"{trained['host']}, seed {trained['seed']}, config hash {trained['config_hash']}, packages "
        + _packages(trained.get("packages") or {}) + ".",
        f"- Export: commit `{exported['git_commit']}`, {sidecar['created']} on {exported['host']}, "
        f"{sidecar['format']['exporter']} (opset {sidecar['format']['opset']}), packages "
        + _packages(packages) + ".",
    ])


def _blank_after_tables(text: str) -> str:
    """A blank line after each markdown table: a text line right under one would render as one more row."""
    lines = text.splitlines()
    out = []
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        out.append(line)
        if line.startswith("|") and after and not after.startswith("|"):
            out.append("")
    return "\n".join(out)


def _shape(dims: list) -> str:
    return "(" + ", ".join(map(str, dims)) + ")"


class _Known(dict):
    """A provenance record whose missing or empty values read "not recorded"."""

    def __getitem__(self, key):
        value = self.get(key)
        return "not recorded" if value is None else value


def _packages(versions: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in versions.items()) or "not recorded"


def _n(fold: FoldDir, part: str):
    return ((fold.scores() or {}).get(part) or {}).get("n", "?")


def _rate(scores: dict) -> str:
    fs = scores.get("source_fs")
    return f"{fs:g} Hz" if fs else "a rate not recorded"


def _count(n) -> str:
    return f"{n:,}" if isinstance(n, int) else "?"
