"""Training options from model files: optimisers, schedules, loss, mixup, clipping, AMP, time limit."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from ecgcore.config.model import LossFunctionParameters, TrainingParameters
from ecgcore.config.modelfile import parse_model
from ecgcore.config.schema import ConfigError
from ecgcore.training import optim
from ecgcore.training.train import train_task
from tests.conftest import tiny_signal_model
from tests.ecgcore.test_train import Recorder, make_task


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8, 3))


def test_no_weight_decay_on_norms_and_biases():
    decay, no_decay = optim.parameter_groups(_net(), 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert sorted(p.shape for p in decay["params"]) == [(3, 32), (4, 1, 3)]
    # conv bias, BN weight and bias, linear bias
    assert len(no_decay["params"]) == 4


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                       ("radam", torch.optim.RAdam)])
def test_optimizers(name, cls):
    opt = optim.make_optimizer(_net(), TrainingParameters(optimizer=name, weight_decay=0.1, learning_rate=0.01))
    assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.01
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]


def test_adamw_leaves_batchnorm_scale_alone():
    net = _net()
    opt = optim.make_optimizer(net, TrainingParameters(optimizer="adamw", weight_decay=0.5, learning_rate=0.1))
    before = net[1].weight.detach().clone()
    conv_before = net[0].weight.detach().clone()
    for p in net.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: only decay can move a weight
    opt.step()
    torch.testing.assert_close(net[1].weight, before)
    torch.testing.assert_close(net[0].weight, conv_before * (1 - 0.1 * 0.5))


def test_schedules():
    f = optim.lr_factor
    tp = TrainingParameters(schedule="step", step_epochs=2, step_gamma=0.5)
    assert [f(s, 10, 8, tp) for s in (0, 19, 20, 39, 40)] == [1, 1, 0.5, 0.5, 0.25]
    tp = TrainingParameters(schedule="cosine", warmup_epochs=1)
    assert f(0, 10, 5, tp) == pytest.approx(0.1) and f(9, 10, 5, tp) == pytest.approx(1.0)
    assert f(10, 10, 5, tp) == pytest.approx(1.0) and f(30, 10, 5, tp) == pytest.approx(0.5)
    assert f(50, 10, 5, tp) == pytest.approx(0.0, abs=1e-12)
    assert f(7, 10, 5, TrainingParameters(exponential_decay=True)) == pytest.approx(0.9999 ** 7)
    assert f(7, 10, 5, TrainingParameters(schedule="exponential", decay_rate=0.9)) == pytest.approx(0.9 ** 7)
    assert f(123, 10, 5, TrainingParameters()) == 1.0


def test_exponential_decay_conflicting_with_schedule_is_an_error():
    with pytest.raises(ConfigError, match=r"exponential_decay.*cosine"):
        parse_model(tiny_signal_model(training_parameters={"exponential_decay": True, "schedule": "cosine"}),
                    "m.json")


def test_label_smoothing_and_class_weights_in_the_loss():
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5]])
    y = torch.tensor([2])
    weights = torch.tensor([1.0, 1.0, 3.0, 1.0])
    loss = optim.weighted_loss(logits, y, weights, LossFunctionParameters(label_smoothing=0.2))
    logp = torch.log_softmax(logits, dim=1)[0]
    expected = 3.0 * -(0.8 * logp[2] + 0.2 * logp.mean())
    assert float(loss[0]) == pytest.approx(float(expected), rel=1e-6)


def test_mixup_mixes_pairs_and_keeps_the_longer_length():
    x = torch.arange(8, dtype=torch.float32).view(4, 1, 2)
    lengths = torch.tensor([1, 2, 2, 1])
    mixed, new_len, perm, lam = optim.mixup(x, lengths, 0.4, np.random.default_rng(3))
    assert 0 <= lam <= 1
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])
    assert new_len.tolist() == torch.maximum(lengths, lengths[perm]).tolist()


def test_gradient_clipping_bounds_the_norm():
    net = _net()
    tp = TrainingParameters(grad_clip=0.01, learning_rate=0.0)
    stepper = optim.Stepper(net, tp, 1, 1, torch.device("cpu"))
    loss = (net(torch.randn(2, 1, 10) * 100) ** 2).sum()
    stepper.step(loss)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in net.parameters()]))
    assert float(norm) <= 0.01 + 1e-6


def test_mixed_precision_step_on_cpu_uses_bfloat16_and_keeps_float32_weights():
    net = _net()
    stepper = optim.Stepper(net, TrainingParameters(amp=True), 1, 1, torch.device("cpu"))
    with stepper.autocast():
        out = net(torch.randn(2, 1, 10))
    assert out.dtype == torch.bfloat16
    stepper.step(out.float().pow(2).mean())
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in net.parameters())
    assert not stepper.scaler.is_enabled()  # loss scaling only for float16 on CUDA


def test_options_train_end_to_end(synth_dir, tmp_path):
    model = tiny_signal_model(
        training_parameters={"optimizer": "adamw", "weight_decay": 0.01, "schedule": "cosine",
                             "warmup_epochs": 1, "mixup": 0.2, "grad_clip": 1.0, "amp": True, "max_epochs": 3},
        loss_function_parameters={"label_smoothing": 0.1},
        data_augmentation={"scaling": 0.1, "cutout": 0.1, "time_shift": 0.2, "probability": 0.5},
        preprocessing={"window": 512, "standardize": True})
    rec = Recorder()
    result = train_task(make_task(synth_dir, tmp_path, model), rec)
    assert [r["epoch"] for r in rec.rows] == [1, 2, 3]
    assert all(math.isfinite(r["train_loss"]) for r in rec.rows)
    assert rec.rows[0]["learning_rate"] == pytest.approx(0.001)  # end of warm-up
    assert rec.rows[-1]["learning_rate"] < 1e-4  # cosine near its end
    assert result.scores["test"]["n"] == len(result.predictions["names"])


def test_time_limit_stops_training_and_scores_the_best_model(synth_dir, tmp_path):
    model = tiny_signal_model(training_parameters={"max_epochs": 10000, "validation_step": 1000})
    rec = Recorder()
    result = train_task(make_task(synth_dir, tmp_path, model, time_limit=1.0), rec)
    assert result.stop_reason == "time_limit" and result.epochs_run < 10000
    assert [r["epoch"] for r in rec.rows] == [result.epochs_run]  # validated once, at the stop
    assert result.best_epoch == result.epochs_run and "test" in result.scores
