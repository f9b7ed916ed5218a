"""A small network learns PTB-XL's superdiagnostic task on a synthetic set in PTB-XL's layout.

300 synthetic records (ecgcore.io.synth_ptbxl: PTB-XL's files, real WFDB records at 100 and 500 Hz, the five
superclasses drawn into the beats), the benchmark's recommended split (strat_folds 1-8 train, 9 validation,
10 test), a small GlobalSkipNet at 100 Hz trained by train_task (no Ray). What it must beat: a macro AUROC
of 0.80 on the test fold (chance is 0.5), on the track's own metric."""

from __future__ import annotations

import pytest

from ecgcore.config.modelfile import parse_model
from ecgcore.config.task import Task
from ecgcore.training.train import train_task
from tests.conftest import tiny_signal_model

MUST_BEAT = 0.80


@pytest.fixture(scope="module")
def synthetic_ptbxl(tmp_path_factory):
    from ecgcore.io.synth_ptbxl import write_synthetic_ptbxl

    out = tmp_path_factory.mktemp("ptbxl") / "ptbxl"
    write_synthetic_ptbxl(out, 300, seed=1)
    return out


def test_a_small_network_learns_the_superdiagnostic_task(synthetic_ptbxl, tmp_path):
    model = parse_model(tiny_signal_model(
        model_parameters={"n_levels": 4, "channels_per_level": 8, "stem_channels": 8, "layers_per_level": 2},
        preprocessing={"spectrogram": False, "fs": 100, "standardize": True},
        training_parameters={"batch_size": 16, "learning_rate": 0.003, "max_epochs": 8, "early_stop_wait": 8},
        loss_function_parameters={"loss": "bce"}), "small.json")
    task = Task(task_id="GlobalSkipNet/px/fold0", job="px", fold=0, model_file="small", model=model,
                data_dir=str(synthetic_ptbxl), split="dataset_recommended", out_dir=str(tmp_path), max_epochs=8,
                log_en=False, log_test_score=False, threads=1, track="ptbxl",
                track_options={"task": "superdiagnostic", "sampling_rate": 100, "min_samples": 0},
                kind="classify", init_checkpoint=None, time_limit_s=None)
    result = train_task(task)
    test = result.scores["test"]
    assert set(test["auc"]) == {"CD", "HYP", "MI", "NORM", "STTC"}
    assert test["n"] == result.info["n_test"] and test["n"] > 20
    assert test["score"] > MUST_BEAT, test["auc"]
