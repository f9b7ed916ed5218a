"""The `export` command: a fold's best model, or a job's folds, as one ONNX file with its sidecar and model card.

RUN is a fold folder (log/<arch>/<job>/fold<k>) or a job folder (its finished
folds, their probabilities averaged inside the graph). OUT receives:
  model.onnx       one record (its signal, or a spectrogram network's log spectrogram) ->
                   probabilities (1, classes); what is in the graph and what is not:
                   ecgcore.export.graph
  model.onnx.json  the sidecar: classes, sampling rate, leads, the steps to run before
                   the graph, the thresholds, the input layout, the check's numbers
  MODEL_CARD.md    orchestrator.commands.model_card
The export is checked as it is written: real records (a few of the job's
dataset, or of --records DIR, and two shortened copies for more lengths) go
through predict's PyTorch path (orchestrator.commands.predict) and through
onnxruntime; a difference above the tolerance fails the export and leaves no
model.onnx. What cannot be exported faithfully is refused with the reason
(ecgcore.export.graph.refusal: FeatureGBM, HybridStack, Stack, a spectrogram network
with evaluation windows; here: a pre-training job).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import tempfile
from pathlib import Path

import numpy as np

from ecgcore.config.modelfile import parse_model
from ecgcore.config.schema import read_json
from ecgcore.data.pipeline import pipeline_for
from ecgcore.errors import ProjectError
from ecgcore.export.graph import ProbabilityGraph, graph_inputs, refusal
from ecgcore.export.onnx import OUTPUT, TOLERANCE, check, export_onnx, onnx_probabilities, require_onnx
from ecgcore.records import Records
from ecgcore.trained import TrainedFold, ensemble
from orchestrator.commands.model_card import model_card
from orchestrator.commands.predict import fold_dirs
from orchestrator.logdir.reader import MODEL, FoldDir, write_json_atomic
from orchestrator.plan.provenance import package_versions, provenance

FORMATS = ("onnx",)
ONNX_FILE, SIDECAR, CARD = "model.onnx", "model.onnx.json", "MODEL_CARD.md"
CHECK_RECORDS = 8  # real records of the dataset checked, spread over its sorted names
CUTS = (2, 5)  # the first record also shortened to 1/2 and 1/5 (+ a few samples): more lengths, a short one
STANDARDISE = "standardise each lead: zero mean, unit variance over the record (a flat lead stays 0)"


def export(run: str | Path, out: str | Path, fmt: str = "onnx", records: str | Path | None = None,
           say=print) -> int:
    """Export RUN to OUT; records: the folder of real records to check with (default: the job's dataset)."""
    if fmt not in FORMATS:
        raise ProjectError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    require_onnx()
    folds = finished_folds(Path(run))
    model_cfg = _one_model(folds)
    reason = refusal(model_cfg)
    if reason:
        raise ProjectError(f"{run}: {model_cfg.model_name} cannot be exported to ONNX: {reason}")
    track = folds[0].track()
    source_fs = _one_value(folds, "source_fs")
    checked = check_records(Path(records) if records else _dataset(folds), track)
    pipeline = pipeline_for(model_cfg, checked, source_fs)
    trained = [TrainedFold.load(f.path) for f in folds]
    graph = ProbabilityGraph(pipeline, [t.network(pipeline.inputs) for t in trained], track.multilabel)
    inputs = graph_inputs(model_cfg, checked, source_fs)
    expected, thresholds = ensemble(trained, checked)
    out = Path(out)
    exporter, difference = write_checked(graph, inputs, expected, list(checked.names), out / ONNX_FILE)
    lengths = sorted({x.shape[graph.length_axis] for x in inputs})
    check_info = {"records": len(inputs), "lengths": lengths, "tolerance": TOLERANCE, "max_abs_difference": difference}
    info = sidecar(folds, model_cfg, track, (graph, pipeline), checked, thresholds, exporter, check_info)
    write_json_atomic(out / SIDECAR, info)
    (out / CARD).write_text(model_card(Path(run), folds, info))
    unit = "frames" if graph.inputs.spectrogram else "samples"
    say(f"{ONNX_FILE}, {SIDECAR}, {CARD} -> {out} ({len(folds)} fold model(s); onnxruntime = PyTorch within "
        f"{difference:.1e} on {len(inputs)} records of {lengths[0]}-{lengths[-1]} {unit}, tolerance {TOLERANCE:g})")
    return 0


def write_checked(graph: ProbabilityGraph, inputs: list[np.ndarray], expected: np.ndarray, names: list[str],
                  path: Path) -> tuple[dict, float]:
    """Export graph to path and check onnxruntime against expected; a failed check leaves nothing at path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        exporter = export_onnx(graph, min(inputs, key=lambda x: x.shape[graph.length_axis]), tmp)
        difference = check(onnx_probabilities(tmp, inputs), expected, names)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return exporter, difference


def finished_folds(run: Path) -> list[FoldDir]:
    """predict's folds of RUN that finished (a model card needs their scores); a pre-training fold is refused."""
    folds = fold_dirs(run)
    done = [f for f in folds if f.finished]
    if not done:
        raise ProjectError(f"{run}: no finished fold (scores.json) to export")
    if any(f.recorded("kind") == "pretrain" for f in done):
        raise ProjectError(f"{run}: a pre-training job: its network predicts signal, not classes; export the job "
                           "fine-tuned from it")
    return done


def _one_model(folds: list[FoldDir]):
    """The folds' one model config: a job's folds all ran the same model file (else nothing to average)."""
    configs = {f.file(MODEL).read_text() for f in folds}
    if len(configs) != 1 or len({f.track() for f in folds}) != 1:
        raise ProjectError(f"{folds[0].path.parent}: its folds ran different model configs or tracks; "
                           "export one fold at a time")
    return parse_model(read_json(folds[0].file(MODEL)), folds[0].file(MODEL))


def _one_value(folds: list[FoldDir], key: str):
    values = {f.recorded(key) for f in folds}
    if len(values) != 1:
        raise ProjectError(f"{folds[0].path.parent}: its folds recorded different {key} {sorted(map(str, values))}")
    return values.pop()


def _dataset(folds: list[FoldDir]) -> Path:
    data_dir = _one_value(folds, "data_dir")
    if not data_dir or not Path(data_dir).is_dir():
        raise ProjectError(f"the export is checked on real records, and the job's dataset {data_dir} is not here: "
                           "pass --records DIR, a folder of records of the same kind (.hea/.mat)")
    return Path(data_dir)


def check_records(folder: Path, track) -> Records:
    """Up to CHECK_RECORDS records of folder (spread over its sorted names: other lengths, other sources), read as
    predict reads its input, and the first one shortened by CUTS."""
    heas = sorted(folder.rglob("*.hea"), key=lambda p: p.stem) if folder.is_dir() else []
    if not heas:
        raise ProjectError(f"{folder}: no records (.hea files) to check the export on")
    picked = [heas[i] for i in sorted(set(np.linspace(0, len(heas) - 1, CHECK_RECORDS).round().astype(int)))]
    with tempfile.TemporaryDirectory() as tmp:
        for hea in picked:  # links, not copies: a folder of only these records, read as predict reads one
            for path in (hea, hea.with_suffix(".mat"), hea.with_suffix(".dat")):
                if path.exists():
                    (Path(tmp) / path.name).symlink_to(path.resolve())
        records = track.read_unlabelled(tmp)
    first = records.take([0] * len(CUTS))
    cut = [s[..., :s.shape[-1] // k + k] for s, k in zip(first.signals, CUTS, strict=True)]
    first = dataclasses.replace(first, names=tuple(f"{first.names[0]}[:{s.shape[-1]}]" for s in cut),
                                signals=tuple(cut))
    return _concat(records, first)


def _concat(a: Records, b: Records) -> Records:
    return Records(a.root, a.names + b.names, np.concatenate([a.targets, b.targets]), a.signals + b.signals,
                   a.fs + b.fs, a.leads + b.leads, a.sources + b.sources, a.patients + b.patients,
                   a.folds + b.folds)


def sidecar(folds, model_cfg, track, graph_and_pipeline: tuple, checked: Records, thresholds, exporter: dict,
            check_info: dict) -> dict:
    """What a user needs to run model.onnx: input layout and preparation, classes, thresholds, and the check."""
    (graph, pipeline), pre = graph_and_pipeline, model_cfg.preprocessing
    leads = list(pre.leads or checked.leads[0])
    classes = list(track.class_names)
    return {
        "file": ONNX_FILE, "format": {"name": "onnx", **exporter},
        "architecture": model_cfg.model_name, "job": folds[0].path.parent.name, "folds": [f.fold for f in folds],
        "ensemble": "mean of the folds' probabilities, inside the graph" if len(folds) > 1 else None,
        "track": track.name, "track_options": track.options_json, "track_title": track.title,
        "challenge": track.label, "classes": classes,
        **({"class_codes": list(track.class_codes)} if track.class_codes != track.class_names else {}),
        "input": _input(graph, pipeline, leads, exporter["min_length"]),
        "output": {"name": OUTPUT, "shape": [1, len(classes)], "dtype": "float32",
                   "activation": "sigmoid per class" if track.multilabel else "softmax over the classes"},
        "decision": "class c is present when probability[c] >= thresholds[c]" if track.multilabel
        else "the class of the largest probability",
        "thresholds": None if thresholds is None else dict(zip(classes, map(float, thresholds), strict=True)),
        "thresholds_note": None if thresholds is None else
        "tuned on each fold's validation part; a job's are the mean of its folds' (as predict does)",
        "preprocessing": {"before_the_graph": before_the_graph(pre, leads, pipeline),
                          "in_the_graph": in_the_graph(pre, pipeline, len(folds))},
        "check": {**check_info, "reference": "predict's PyTorch probabilities (orchestrator.commands.predict) on the "
                                             "same records"},
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        # installed: require_onnx checked them before anything was exported
        "provenance": {**provenance(), "export_packages": package_versions(("onnx", "onnxruntime", "onnxscript"))},
    }


def _input(graph: ProbabilityGraph, pipeline, leads: list[str], min_length: int) -> dict:
    common = {"name": graph.input_name, "dtype": "float32", "leads": leads, "sampling_rate_hz": pipeline.fs}
    if graph.inputs.spectrogram:
        return {**common, "shape": [1, "frames", len(leads), pipeline.inputs.n_freqs], "min_frames": min_length,
                "layout": "one whole record's log spectrogram per run: (batch 1, frames, leads, frequencies), any "
                          "number of frames from min_frames on, computed as before_the_graph says"}
    return {**common, "shape": [1, len(leads), "samples"], "min_samples": min_length, "units": "mV",
            "layout": "one whole record per run, unpadded: (batch 1, leads, samples), any number of samples from "
                      "min_samples on; leads in the order given"}


def before_the_graph(pre, leads: list[str], pipeline) -> list[str]:
    """The steps a user runs on a record (float32 mV, (leads, samples) at its own rate), in this order."""
    fs = pipeline.fs
    steps = [f"leads: take {' '.join(leads)} by name, in this order" if pre.leads else
             f"leads: every lead of the record ({len(leads)}: {' '.join(leads)}, as in the training records)"]
    if pre.notch is not None:
        steps.append(f"notch at {pre.notch:g} Hz, at the record's rate: sos = scipy.signal.tf2sos(*scipy.signal."
                     f"iirnotch({pre.notch:g}, 30.0, fs=rate)); scipy.signal.sosfiltfilt(sos, x, axis=-1, "
                     "padlen=min(9, samples - 1))")
    if pre.bandpass is not None:
        low, high = pre.bandpass
        steps.append(f"band-pass {low:g}-{high:g} Hz, at the record's rate: sos = scipy.signal.butter(3, [{low:g}, "
                     f"{high:g}], btype='bandpass', fs=rate, output='sos'); scipy.signal.sosfiltfilt(sos, x, "
                     "axis=-1, padlen=min(21, samples - 1))")
    steps.append(f"resample to {fs:g} Hz: scipy.signal.resample_poly(x, up, down, axis=-1) with up/down = "
                 f"fractions.Fraction({fs:g} / rate).limit_denominator(1000); nothing when the record is at {fs:g} Hz"
                 if pre.fs else f"no resampling: the model takes records at {fs:g} Hz, the rate it was trained at")
    if pipeline.inputs.kind != "spectrogram":
        return [*steps, "float32, shape (1, leads, samples)"]
    if pre.standardize:
        steps.append(STANDARDISE)
    return [*steps, f"log spectrogram of each lead: f, t, s = scipy.signal.spectrogram(lead, fs={fs:g}, "
                    f"nperseg={pre.nperseg}, noverlap={pre.noverlap}) (a lead shorter than {pre.nperseg} samples "
                    "zero-padded to it first); |s| transposed to (frames, frequencies), its log where > 0, else 0; "
                    "the leads stacked as (frames, leads, frequencies), float32, then a batch axis of 1 "
                    "(ecgcore.data.preprocess.lead_spectrograms)"]


def in_the_graph(pre, pipeline, n_folds: int) -> list[str]:
    steps = []
    if pipeline.inputs.kind == "signal":
        steps += [STANDARDISE] if pre.standardize else []
        if pre.window:
            steps.append(f"windows of {pre.window} samples every {pipeline.stride} (and one ending at the record's "
                         "end; a shorter record is one window of its own length); their probabilities are averaged")
    steps.append("the network" + (f"s of {n_folds} folds" if n_folds > 1 else "") + ", then the probabilities"
                 + (" averaged over the folds" if n_folds > 1 else ""))
    return steps

