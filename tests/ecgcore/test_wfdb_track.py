"""The WFDB-folder track's proof on real data: the shared CinC 2017 records, read in place as a plain WFDB folder
with a labels CSV whose classes are named differently (normal, af, other, noisy; noisy not scored), give the
cinc2017 track's folds, predictions and fold scores with the same seed. No Ray: train_task directly."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcore.config.modelfile import parse_model
from ecgcore.config.task import Task
from ecgcore.tracks import open_track
from ecgcore.training.train import train_task
from tests.conftest import tiny_model

RENAMED = {"N": "normal", "A": "af", "O": "other", "~": "noisy"}
OPTIONS = {"classes": ["normal", "af", "other", "noisy"], "scored_classes": ["normal", "af", "other"]}
SPLIT = "split_5_6_14"


@pytest.fixture(scope="module")
def labels(sample2017, tmp_path_factory):
    rows = [line.split(",") for line in (sample2017 / "REFERENCE.csv").read_text().split()]
    path = tmp_path_factory.mktemp("wfdb_labels") / "labels.csv"
    path.write_text("record,label\n" + "".join(f"{name},{RENAMED[label]}\n" for name, label in rows))
    return path


def _task(track: str, options: dict, data_dir, out) -> Task:
    model = parse_model(tiny_model("CNN", max_epochs=1), "tiny.json")
    return Task(task_id="CNN/t/fold2", job="t", fold=2, model_file="tiny", model=model, data_dir=str(data_dir),
                split=SPLIT, out_dir=str(out), max_epochs=1, log_en=False, log_test_score=False, threads=1,
                track=track, track_options=options, kind="classify", init_checkpoint=None, time_limit_s=None)


def test_the_same_folds_as_cinc2017(sample2017, labels):
    cinc = open_track("cinc2017")
    wfdb = open_track("wfdb", {"labels": str(labels), **OPTIONS})
    assert not wfdb.multilabel and wfdb.class_names == tuple(OPTIONS["classes"])
    records_c, records_w = cinc.read(str(sample2017)), wfdb.read(str(sample2017))
    assert records_w.names == records_c.names and len(records_w) == 800
    assert all(np.array_equal(a, b) for a, b in zip(records_c.signals, records_w.signals, strict=True))
    _, split_c = cinc.split(records_c, SPLIT)
    _, split_w = wfdb.split(records_w, SPLIT)
    assert len(split_w.folds) == len(split_c.folds) == 5
    for fold_c, fold_w in zip(split_c.folds, split_w.folds, strict=True):
        for part in ("train", "valid", "test"):
            assert [f"A{n:05d}" for n in getattr(fold_c, part)] == list(getattr(fold_w, part)), part


def test_the_same_predictions_and_fold_scores_as_cinc2017(sample2017, labels, tmp_path):
    result_c = train_task(_task("cinc2017", {}, sample2017, tmp_path / "c"))
    result_w = train_task(_task("wfdb", {"labels": str(labels), **OPTIONS}, sample2017, tmp_path / "w"))
    assert result_w.predictions["names"] == result_c.predictions["names"]
    assert np.array_equal(result_w.predictions["probs"], result_c.predictions["probs"])
    for part in ("train", "valid", "test"):
        c, w = result_c.scores[part], result_w.scores[part]
        assert (w["score"], w["accuracy"], w["confusion"]) == (c["score"], c["accuracy"], c["confusion"]), part
        assert [w["f1"][RENAMED[k]] for k in "NAO~"] == [c["f1"][k] for k in "NAO~"]
