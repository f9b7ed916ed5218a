"""Inputs computed per batch: lengths known ahead, the same draw until the next reload, nothing held."""

import numpy as np

from ecgcore.config.modelfile import parse_model
from ecgcore.data.inputs import EvalInputs, TrainInputs
from ecgcore.data.pipeline import Pipeline
from tests.conftest import tiny_model, tiny_signal_model


def _signals(lengths, leads=1, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((leads, n)).astype(np.float32) for n in lengths]


def _same(a, b):
    return a.shape == b.shape and np.allclose(a, b)


def test_spectrogram_lengths_are_known_without_computing_them():
    pipe = Pipeline(parse_model(tiny_model("CNN"), "m.json"), 300.0, 1)
    for n in (10, 63, 64, 65, 95, 96, 97, 3000, 9001, 18286):
        assert pipe.feature_length(n) == pipe.features(_signals([n])[0]).shape[0], n


def test_eval_inputs_match_the_features_of_every_window():
    model = parse_model(tiny_signal_model(preprocessing={"window": 400, "window_stride": 300}), "m.json")
    pipe = Pipeline(model, 100.0, 2)
    signals = _signals([1100, 250, 400], leads=2)
    items = pipe.eval_items(signals)
    # 1100 samples: starts 0, 300, 600 and a last one ending at 1100; 250 and 400 give one each.
    assert items.owners.tolist() == [0, 0, 0, 0, 1, 2] and items.starts.tolist() == [0, 300, 600, 700, 0, 0]
    assert [items[i].shape[0] for i in range(len(items))] == items.lengths.tolist() == [400] * 4 + [250, 400]
    assert np.array_equal(items[1], signals[0][:, 300:700].T)
    assert [a.shape for a in items[-2:]] == [(250, 2), (400, 2)]


def test_a_training_draw_is_fixed_until_the_next_draw():
    model = parse_model(tiny_model("CNN", learning_rate=1e-3) | {
        "data_augmentation": {"reload_step": 1, "scaling": 0.3, "awgn": True}}, "m.json")
    pipe = Pipeline(model, 300.0, 1)
    signals = _signals([3000, 2000, 2500])
    rng = np.random.default_rng(1)
    first, second = TrainInputs(pipe, signals, rng), TrainInputs(pipe, signals, rng)
    assert all(np.array_equal(first[i], first[i]) for i in range(3))  # computed twice, the same input
    assert not _same(first[0], second[0])  # a reload draws again
    assert not _same(first[0], pipe.features(signals[0]))  # augmented
    # lengths are those before augmentation (resampling changes a record's length a little)
    assert first.lengths.tolist() == [pipe.feature_length(n) for n in (3000, 2000, 2500)]
    again = TrainInputs(pipe, signals, np.random.default_rng(1))
    assert np.array_equal(again.batch([2, 0])[1], first[0])  # the stream fixes the draw


def test_without_augmentation_training_inputs_are_the_plain_features():
    pipe = Pipeline(parse_model(tiny_model("CNN"), "m.json"), 300.0, 1)
    pipe.aug = pipe.aug.__class__(resampling=False, zero_filter=False)
    signals = _signals([3000, 1200])
    drawn = TrainInputs(pipe, signals, np.random.default_rng(0))
    assert drawn.seeds is None
    assert all(np.array_equal(drawn[i], pipe.features(s)) for i, s in enumerate(signals))
    assert isinstance(pipe.eval_items(signals), EvalInputs)
