"""The CinC 2020/2021 challenge's per-record output file: what `predict` writes and `score` reads.

    #<record>
    <code>,<code>,...          the classes (a merged class may be written "a|b")
    1,0,...                    binary labels
    0.91,0.07,...              probabilities
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
