"""The `score` command: the CinC 2020/2021 metrics of challenge output files against header labels.

Labels are the scored `#Dx:` codes of every header under --labels. Outputs
are the challenge's per-record files under --outputs, `<record>.csv`:

    #<record>
    <code>,<code>,...          the classes (a merged class may be written "a|b")
    1,0,...                    binary labels
    0.91,0.07,...              probabilities

A missing or malformed output file counts as all-negative, with a warning
naming it, as in the challenge's evaluation. Prints every metric, or JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ecgcore.errors import ProjectError
from ecgcore.io.cinc2020 import parse_header
from ecgcore.metrics.challenge import challenge_metrics, scored_classes


def read_labels(labels_dir: Path) -> dict[str, tuple[str, ...]]:
    heas = sorted(Path(labels_dir).rglob("*.hea"), key=lambda p: p.stem)
    if not heas:
        raise ProjectError(f"{labels_dir}: no .hea files to take labels from")
    headers = [parse_header(h.read_text(errors="replace"), h) for h in heas]
    return {h.record: h.dx for h in headers}


def write_output_file(path: Path, record: str, codes: list[str], binary, probs) -> None:
    lines = [f"#{record}", ",".join(codes), ",".join(str(int(b)) for b in binary),
             ",".join(f"{float(p):.6f}" for p in probs)]
    Path(path).write_text("\n".join(lines) + "\n")


def read_output_file(path: Path, record: str, classes) -> tuple[np.ndarray, np.ndarray]:
    """(binary, probabilities) over the scored classes; raises ValueError when malformed."""
    lines = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
    if len(lines) < 4 or lines[0].lstrip("#").strip() != record:
        raise ValueError("expected 4 lines starting with #<record>")
    codes, flags, values = ([c.strip() for c in ln.split(",")] for ln in lines[1:4])
    if not len(codes) == len(flags) == len(values):
        raise ValueError("classes, labels and probabilities differ in length")
    binary = np.zeros(len(classes.codes), dtype=bool)
    probs = np.zeros(len(classes.codes))
    for code, flag, value in zip(codes, flags, values, strict=True):
        j = classes.index_of(code.split("|")[0])
        if j is not None:
            binary[j] |= flag in ("1", "1.0", "True", "true")
            probs[j] = max(probs[j], float(value))
    return binary, probs


def score(labels_dir: str, outputs_dir: str, year: int = 2021, as_json: bool = False) -> int:
    classes = scored_classes(year)
    labels_by_record = read_labels(Path(labels_dir))
    records = sorted(labels_by_record)
    labels = classes.encode([labels_by_record[r] for r in records])
    binary = np.zeros_like(labels)
    probs = np.zeros(labels.shape)
    for i, record in enumerate(records):
        path = Path(outputs_dir) / f"{record}.csv"
        try:
            binary[i], probs[i] = read_output_file(path, record, classes)
        except (OSError, ValueError) as exc:
            reason = "missing" if not path.exists() else f"malformed ({exc})"
            print(f"warning: {path}: {reason}; counted as all-negative", file=sys.stderr)
    result = challenge_metrics(labels, binary, probs, classes)
    result.update(year=year, records=len(records))
    print(json.dumps(result, indent=2) if as_json else render(result))
    return 0


def render(result: dict) -> str:
    names = {"challenge_metric": f"Challenge metric ({result['year']})", "auroc": "AUROC", "auprc": "AUPRC",
             "accuracy": "Accuracy", "f_measure": "F-measure", "f_beta": "F-beta (beta 2)",
             "g_beta": "G-beta (beta 2)"}
    lines = [f"{result['records']} records"]
    lines += [f"{label:<26} {result[key]:.3f}" for key, label in names.items() if key in result]
    return "\n".join(lines)
