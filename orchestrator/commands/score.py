"""The `score` command: a track's metrics of `predict`'s answers against the labelled dataset.

The job's track reads both (ecgcore.tracks): for CinC 2020/2021 the labels are
the scored `#Dx:` codes of every header under --labels and the answers are the
challenge's per-record files under --outputs, `<record>.csv` (ecgcore.io.answers);
a missing or malformed output file counts as all-negative, with a warning
naming it, as in the challenge's evaluation. For the other tracks --outputs is
the one answers file `predict` wrote. Prints every metric, or JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from ecgcore.errors import ProjectError
from ecgcore.tracks import open_track

NAMES = {"challenge_metric": "Challenge metric", "macro_auc": "Macro AUC", "fmax": "Fmax", "auroc": "AUROC",
         "auprc": "AUPRC", "accuracy": "Accuracy", "f_measure": "F-measure", "f_beta": "F-beta (beta 2)",
         "g_beta": "G-beta (beta 2)", "score": "Score"}


def score(labels_dir: str, outputs: str, track: str = "cinc2021", options: dict | None = None,
          as_json: bool = False) -> int:
    if not Path(labels_dir).is_dir():
        raise ProjectError(f"--labels {labels_dir}: no such folder (expected the labelled dataset)")
    opened = open_track(track, options, root=str(labels_dir))
    result = opened.score_answers(Path(labels_dir), Path(outputs))
    result.update(track=opened.name, title=opened.title)
    print(json.dumps(result, indent=2) if as_json else render(result))
    return 0


def render(result: dict) -> str:
    names = {**NAMES, "challenge_metric": f"Challenge metric ({result['year']})"} if "year" in result else NAMES
    lines = [f"{result['records']} records ({result['title']})"]
    lines += [f"{label:<26} {result[key]:.3f}" for key, label in names.items()
              if isinstance(result.get(key), float) and not (key == "score" and "challenge_metric" in result)]
    return "\n".join(lines)
