"""Shared fixtures: real shared data (skipped when absent), a synthetic set, one Ray session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SAMPLE_2017 = SHARED / "ecg-samples" / "cinc2017"
FULL_2017 = SHARED / "ecg-data" / "training2017"
SAMPLE_2020 = SHARED / "ecg-samples" / "cinc2020"


def need(path: Path, marker: str = "REFERENCE.csv") -> Path:
    if not (path / marker).exists():
        pytest.skip(f"shared dataset {path} is not present (expected ../shared beside the project)")
    return path


@pytest.fixture(scope="session", autouse=True)
def no_machine_settings(tmp_path_factory):
    """Tests see the defaults, not an orchestrator.yaml the developer keeps in the project folder."""
    empty = tmp_path_factory.mktemp("settings") / "empty.yaml"
    empty.write_text("")
    old = os.environ.get("ECG_ORCH_SETTINGS")
    os.environ["ECG_ORCH_SETTINGS"] = str(empty)
    yield
    if old is None:
        os.environ.pop("ECG_ORCH_SETTINGS", None)
    else:
        os.environ["ECG_ORCH_SETTINGS"] = old


def linked_records(source: Path, out: Path, n: int) -> Path:
    """A dataset folder of source's first n records (by REFERENCE.csv): links to the files, never copies."""
    lines = (source / "REFERENCE.csv").read_text().splitlines()[:n]
    for line in lines:
        name = line.split(",")[0]
        for ext in (".hea", ".mat"):
            (out / f"{name}{ext}").symlink_to(source / f"{name}{ext}")
    (out / "REFERENCE.csv").write_text("\n".join(lines) + "\n")
    return out


@pytest.fixture(scope="session")
def sample2017() -> Path:
    return need(SAMPLE_2017)


@pytest.fixture(scope="session")
def full2017() -> Path:
    return need(FULL_2017)


@pytest.fixture(scope="session")
def sample2020() -> Path:
    return need(SAMPLE_2020, "README.txt")


@pytest.fixture(scope="session")
def synth12_dir(tmp_path_factory) -> Path:
    """48 synthetic 12-lead records at 500 Hz, 10 s each, in the CinC 2020/2021 format."""
    from ecgcore.io.synth12 import write_synthetic_12lead

    out = tmp_path_factory.mktemp("synth12") / "synth12"
    write_synthetic_12lead(out, 48, seed=5)
    return out


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from ecgcore.io.synth import write_synthetic_dataset

    out = tmp_path_factory.mktemp("synth") / "synth2017"
    write_synthetic_dataset(out, 60, seed=3)
    return out


def tiny_model(arch: str = "CNN", **training) -> dict:
    """A model file small enough to train in seconds on CPU."""
    params = {"n_channels_first": 4, "growth_block_end": 4, "n_conv_blocks": 2,
              "kernel_size": [3, 3], "dilation_rates": [1], "strides_block_end": [2, 2],
              "max_pooling": False}
    if arch == "CRNN":
        params.update(n_lstmneurons=8, n_lstmlayers=1, bidirectional=True)
    return {
        "model_name": arch,
        "model_parameters": params,
        "training_parameters": {"batch_size": 16, "validation_step": 1, "max_epochs": 2,
                                "early_stop_wait": 5, **training},
        "data_augmentation": {"reload_step": 1},
    }


def tiny_signal_model(**sections) -> dict:
    """A small GlobalSkipNet (a signal architecture) model file; sections update the defaults."""
    model = {
        "model_name": "GlobalSkipNet",
        "model_parameters": {"n_levels": 3, "channels_per_level": 4, "stem_channels": 4,
                             "layers_per_level": 2, "kernel_size": 7, "pool_size": 2},
        "preprocessing": {"spectrogram": False, "fs": 100},
        "training_parameters": {"batch_size": 16, "validation_step": 1, "max_epochs": 2, "early_stop_wait": 5},
        "data_augmentation": {"resampling": False, "zero_filter": False, "reload_step": 1},
    }
    for section, values in sections.items():
        model[section] = {**model.get(section, {}), **values} if isinstance(values, dict) else values
    return model


def assert_backward_reaches_every_parameter(net, x, lengths) -> None:
    """One forward/backward of a 4-class net: logits of the right shape, a finite gradient everywhere."""
    import torch

    logits = net(x, lengths)
    assert logits.shape == (x.shape[0], 4)
    targets = torch.arange(x.shape[0]) % 4
    torch.nn.functional.cross_entropy(logits, targets).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def assert_padding_invariant(net, n_leads: int, short: int, long: int, rtol: float) -> None:
    """Eval mode: a record alone and the same record padded with garbage beside a longer one agree.

    Both the logits and the encoder features (valid steps equal, padded steps zero) are checked.
    """
    import torch

    short_x = torch.randn(1, n_leads, short)
    alone = net(short_x, torch.tensor([short]))
    batch = torch.zeros(2, n_leads, long)
    batch[0, :, :short] = short_x[0]
    batch[0, :, short:] = 1e4  # garbage in the padding must not leak in
    batch[1] = torch.randn(n_leads, long)
    together = net(batch, torch.tensor([short, long]))
    torch.testing.assert_close(together[0], alone[0], atol=1e-5, rtol=rtol)
    feats_alone, n_alone = net.encode(short_x, torch.tensor([short]))
    feats, n = net.encode(batch, torch.tensor([short, long]))
    assert n[0] == n_alone[0] and feats.shape[2] > feats_alone.shape[2]
    torch.testing.assert_close(feats[0, :, :n[0]], feats_alone[0], atol=1e-5, rtol=rtol)
    assert (feats[0, :, n[0]:] == 0).all()


def write_json(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2))
    return path


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test run (ray.init costs seconds)."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
