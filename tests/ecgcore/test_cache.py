"""The preprocessed-dataset cache: exact round trip, no pickle, keys that change with the data and options."""

import numpy as np

from ecgcore.config.modelfile import parse_model
from ecgcore.data.pipeline import pipeline_for
from ecgcore.io.cache import prepared_records, preprocessing_key, read_records
from ecgcore.io.signature import dataset_signature
from ecgcore.tracks import open_track
from tests.conftest import tiny_signal_model


def test_prepared_records_round_trip_exactly(synth_dir, tmp_path):
    records = open_track("cinc2017").read(str(synth_dir))
    model = parse_model(tiny_signal_model(preprocessing={"fs": 100, "standardize": True}), "m.json")
    built = prepared_records(records, pipeline_for(model, records), tmp_path / "c.npz")
    again = read_records(tmp_path / "c.npz")
    assert again.names == built.names and again.fs == (100.0,) * len(records)
    assert all(np.array_equal(a, b) for a, b in zip(again.signals, built.signals, strict=True))
    assert np.array_equal(again.targets, records.targets) and again.sources == records.sources
    with np.load(tmp_path / "c.npz", allow_pickle=False) as npz:  # plain arrays: loadable without pickle
        assert set(npz.files) == {"data", "shapes", "targets", "meta"}


def test_the_key_follows_the_records_and_the_options(synth_dir, tmp_path):
    base = parse_model(tiny_signal_model(preprocessing={"fs": 100}), "m.json")
    other = parse_model(tiny_signal_model(preprocessing={"fs": 120}), "m.json")
    same_options = parse_model(tiny_signal_model(preprocessing={"fs": 100},
                                                 training_parameters={"learning_rate": 0.1}), "m.json")
    sig = dataset_signature(str(synth_dir))
    track = {"track": "cinc2017"}
    key = preprocessing_key(track, str(synth_dir), base, sig)
    assert key == preprocessing_key(track, str(synth_dir), same_options, sig)  # training options do not matter
    assert key != preprocessing_key(track, str(synth_dir), other, sig)
