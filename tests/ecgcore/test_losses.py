"""The multi-label training losses against hand-computed cases, the official challenge metric and a tiny fit."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ecgcore.metrics.challenge import SINUS_RHYTHM, challenge_score, scored_classes
from ecgcore.training.losses import MULTILABEL_LOSSES, multilabel_loss, positive_weights, soft_challenge_score

AF, AFL = "164889003", "164890007"  # reward 0.5 between them; AF and sinus rhythm only 0.25
CLASSES = scored_classes(2021)
WEIGHTS = torch.tensor(CLASSES.weights, dtype=torch.float32)
SINUS = CLASSES.index_of(SINUS_RHYTHM)
C = len(CLASSES.codes)


def loss(name, logits, targets, *, pos_weight=None, weights=WEIGHTS, sinus_index=SINUS):
    return multilabel_loss(name, logits, targets, pos_weight=pos_weight, weights=weights, sinus_index=sinus_index)


def random_batch(seed, batch=16):
    gen = torch.Generator().manual_seed(seed)
    targets = (torch.rand(batch, C, generator=gen) < 0.12).float()
    return torch.randn(batch, C, generator=gen) * 2, targets


def one_hot_logits(columns, batch=1, high=20.0):
    """Logits that answer exactly `columns` (one list per record) with probability ~1."""
    logits = torch.full((batch, C), -high)
    for i, cols in enumerate(columns):
        logits[i, cols] = high
    return logits


def test_bce_matches_hand_value_and_torch():
    logits = torch.tensor([[0.0, 2.0, -1.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0]])
    # -log(sigmoid(0)) = log 2; -log(1 - sigmoid(2)) = log(1 + e^2); -log(sigmoid(-1)) = log(1 + e).
    by_hand = (math.log(2) + math.log(1 + math.e ** 2) + math.log(1 + math.e)) / 3
    got = loss("bce", logits, targets, weights=torch.eye(3), sinus_index=0)
    assert got.item() == pytest.approx(by_hand, rel=1e-6)
    assert got.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, targets).item(), rel=1e-6)


def test_weighted_bce_with_unit_weights_is_bce_and_scales_positive_terms():
    logits, targets = random_batch(0)
    plain = loss("bce", logits, targets)
    assert loss("weighted_bce", logits, targets, pos_weight=torch.ones(C)).item() == pytest.approx(plain.item())
    x, y = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    # The positive term log 2 counts 3 times, the negative log 2 once: mean = (3 + 1) log 2 / 2.
    got = loss("weighted_bce", x, y, pos_weight=torch.tensor([3.0, 5.0]), weights=torch.eye(2), sinus_index=0)
    assert got.item() == pytest.approx(2 * math.log(2), rel=1e-6)
    with pytest.raises(ValueError, match="pos_weight"):
        loss("weighted_bce", logits, targets)


def test_positive_weights_by_hand():
    labels = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]], dtype=bool)
    # class 0: 1 positive, 3 negatives; class 1: 2 and 2; class 2: no positive -> 1.
    assert positive_weights(labels, 0.5) == pytest.approx([0.5 + 0.5 * 3, 0.5 + 0.5 * 1, 1.0])
    assert positive_weights(labels, 1.0) == pytest.approx([3.0, 1.0, 1.0])
    assert positive_weights(labels, 0.0) == pytest.approx([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="records, classes"):
        positive_weights(np.zeros(3, dtype=bool), 0.5)


def test_weighted_bce_accepts_positive_weights_output():
    logits, targets = random_batch(1)
    pw = torch.as_tensor(positive_weights(targets.numpy().astype(bool), 0.5))  # float64 from numpy
    assert torch.isfinite(loss("weighted_bce", logits, targets, pos_weight=pw))


def test_unknown_loss_and_bad_shapes_are_refused():
    logits, targets = random_batch(2)
    with pytest.raises(ValueError, match="known: bce, weighted_bce, confusion_bce, challenge"):
        loss("focal", logits, targets)
    with pytest.raises(ValueError, match="batch, classes"):
        loss("bce", logits, targets[:, :3])


def test_confusion_bce_by_hand():
    w = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
    # One record labelled class 0, logits 0: positive term log 2 (weight 1), negative term log 2 weighted
    # 1 - W[0, 1] = 0.5; mean over the 2 terms = 0.75 log 2.
    got = loss("confusion_bce", torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), weights=w, sinus_index=0)
    assert got.item() == pytest.approx(0.75 * math.log(2), rel=1e-6)
    # A record with labels 0 and 1 averages 1 - W over both labels for a third class.
    w3 = torch.tensor([[1.0, 0.5, 0.2], [0.5, 1.0, 0.6], [0.2, 0.6, 1.0]])
    got = loss("confusion_bce", torch.zeros(1, 3), torch.tensor([[1.0, 1.0, 0.0]]), weights=w3, sinus_index=0)
    negative_weight = ((1 - 0.2) + (1 - 0.6)) / 2
    assert got.item() == pytest.approx((2 + negative_weight) * math.log(2) / 3, rel=1e-6)


def test_confusion_bce_with_identity_weights_is_bce_and_halves_unlabelled_records():
    logits, targets = random_batch(3, batch=8)
    targets[0] = 0.0  # an unlabelled record: DSAIL_SNU weighs its negative terms 0.5
    # With W = I every negative of a labelled record weighs 1 - 0 = 1: plain BCE, but for unlabelled records.
    terms = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    unlabelled = targets.sum(dim=1) == 0
    terms[unlabelled] *= 0.5
    got = loss("confusion_bce", logits, targets, weights=torch.eye(C))
    assert got.item() == pytest.approx(terms.mean().item(), rel=1e-5)


@pytest.mark.parametrize("weights", [torch.tensor([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]]), None])
def test_confusion_bce_forgives_related_false_positives(weights):
    if weights is None:  # the real 2021 table: AF labelled, AFL (W = 0.5) or sinus rhythm (W = 0.25) answered
        weights, label, related, unrelated = WEIGHTS, CLASSES.index_of(AF), CLASSES.index_of(AFL), SINUS
        n, sinus = C, SINUS
    else:
        label, related, unrelated, n, sinus = 0, 1, 2, 3, 2
    targets = torch.zeros(1, n)
    targets[0, label] = 1.0
    base = torch.full((1, n), -5.0)
    base[0, label] = 5.0
    fp_related, fp_unrelated = base.clone(), base.clone()
    fp_related[0, related] = 5.0
    fp_unrelated[0, unrelated] = 5.0
    cost_related = loss("confusion_bce", fp_related, targets, weights=weights, sinus_index=sinus)
    cost_unrelated = loss("confusion_bce", fp_unrelated, targets, weights=weights, sinus_index=sinus)
    assert cost_related < cost_unrelated
    # Plain BCE cannot tell the two mistakes apart.
    assert loss("bce", fp_related, targets).item() == pytest.approx(loss("bce", fp_unrelated, targets).item())


def test_challenge_loss_near_perfect_and_always_sinus():
    _, targets = random_batch(4, batch=32)
    targets[:4] = 0.0
    targets[:4, SINUS] = 1.0  # a few sinus-only records, as in real batches
    perfect = targets * 40 - 20
    assert soft_challenge_score(torch.sigmoid(perfect), targets, WEIGHTS, SINUS).item() == pytest.approx(1, abs=1e-4)
    assert loss("challenge", perfect, targets).item() == pytest.approx(0.0, abs=1e-4)
    sinus_only = one_hot_logits([[SINUS]] * 32, batch=32)
    assert soft_challenge_score(torch.sigmoid(sinus_only), targets, WEIGHTS, SINUS).item() == pytest.approx(
        0.0, abs=1e-4)
    assert loss("challenge", sinus_only, targets).item() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("year", [2020, 2021])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_score_equals_official_metric_on_binary_outputs(year, seed):
    classes = scored_classes(year)
    rng = np.random.default_rng(seed)
    n = len(classes.codes)
    labels = rng.random((40, n)) < 0.1
    outputs = rng.random((40, n)) < 0.15
    labels[0] = False  # an unlabelled record
    outputs[1] = False  # a record answered with nothing
    expected = challenge_score(labels, outputs, classes)
    got = soft_challenge_score(torch.tensor(outputs, dtype=torch.float64), torch.tensor(labels, dtype=torch.float64),
                               torch.tensor(classes.weights), classes.index_of(SINUS_RHYTHM))
    assert got.item() == pytest.approx(expected, abs=1e-9)
    got32 = soft_challenge_score(torch.tensor(outputs).float(), torch.tensor(labels).float(),
                                 torch.tensor(classes.weights).float(), classes.index_of(SINUS_RHYTHM))
    assert got32.item() == pytest.approx(expected, abs=1e-5)


def test_soft_score_is_zero_when_batch_cannot_tell_perfect_from_always_sinus():
    targets = torch.zeros(3, C)
    targets[0, SINUS] = 1.0  # sinus-only and unlabelled records only: the official metric gives 0
    logits = torch.randn(3, C, requires_grad=True)
    value = loss("challenge", logits, targets)
    value.backward()
    assert value.item() == pytest.approx(1.0)
    assert torch.isfinite(logits.grad).all()
    labels = targets.numpy().astype(bool)
    assert challenge_score(labels, labels, CLASSES) == 0.0


@pytest.mark.parametrize("name", MULTILABEL_LOSSES)
def test_gradients_flow_finite_and_nonzero(name):
    logits, targets = random_batch(5)
    logits.requires_grad_(True)
    value = loss(name, logits, targets, pos_weight=torch.full((C,), 2.0))
    value.backward()
    assert value.ndim == 0 and torch.isfinite(value)
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("name", MULTILABEL_LOSSES)
@pytest.mark.parametrize("case", ["all_negative_record", "batch_of_one", "one_unlabelled_record", "mixup"])
def test_every_loss_is_finite_on_edge_batches(name, case):
    logits, targets = random_batch(6, batch=4)
    if case == "all_negative_record":
        targets[2] = 0.0
    elif case == "batch_of_one":
        logits, targets = logits[:1], targets[:1]
        targets[0, [0, SINUS]] = 1.0
    elif case == "one_unlabelled_record":
        logits, targets = logits[:1], torch.zeros(1, C)
    else:  # mixup: soft targets, one of them almost unlabelled
        targets = 0.7 * targets + 0.3 * targets.roll(1, dims=0)
        targets[3] = 0.0
        targets[3, 5] = 0.05
    logits.requires_grad_(True)
    value = loss(name, logits, targets, pos_weight=torch.full((C,), 3.0))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", MULTILABEL_LOSSES)
def test_autocast_bfloat16_computes_in_float32(name):
    torch.manual_seed(0)
    model = torch.nn.Linear(8, C)
    x = torch.randn(16, 8)
    _, targets = random_batch(7)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        logits = model(x)
        value = loss(name, logits, targets, pos_weight=torch.full((C,), 2.0))
    assert logits.dtype == torch.bfloat16 and value.dtype == torch.float32
    value.backward()
    assert torch.isfinite(value) and all(torch.isfinite(p.grad).all() for p in model.parameters())
    reference = loss(name, logits.detach().float(), targets, pos_weight=torch.full((C,), 2.0))
    assert value.item() == pytest.approx(reference.item(), rel=1e-5)


@pytest.mark.parametrize("name", MULTILABEL_LOSSES)
def test_every_loss_decreases_fitting_a_tiny_model(name):
    torch.manual_seed(0)
    x = torch.randn(64, 10)
    targets = (torch.rand(64, C) < 0.15).float()
    targets[targets.sum(dim=1) == 0, SINUS] = 1.0
    model = torch.nn.Linear(10, C)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    pw = torch.as_tensor(positive_weights(targets.numpy().astype(bool), 0.5))
    values = []
    for _ in range(40):
        opt.zero_grad()
        value = loss(name, model(x), targets, pos_weight=pw)
        value.backward()
        opt.step()
        values.append(value.item())
    assert values[-1] < 0.9 * values[0]
