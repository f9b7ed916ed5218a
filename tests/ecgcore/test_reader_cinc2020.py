"""The CinC 2020/2021 12-lead reader on the shared real sample, against values read by hand from headers."""

import warnings

import numpy as np
import pytest

from ecgcore.errors import DataError
from ecgcore.io.cinc2020 import load_dataset, parse_header, read_record, source_of
from ecgcore.metrics.challenge import scored_classes
from tests.conftest import SHARED

SAMPLE = SHARED / "ecg-samples" / "cinc2020"
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


@pytest.fixture(scope="module")
def sample():
    if not (SAMPLE / "A0689.hea").exists():
        pytest.skip(f"shared dataset {SAMPLE} is not present (expected ../shared beside the project)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = load_dataset(SAMPLE)
    return dataset, [str(w.message) for w in caught]


def test_every_record_loads_with_rate_leads_and_labels(sample):
    dataset, _ = sample
    assert len(dataset.headers) == 79
    for header, signal in zip(dataset.headers, dataset.signals, strict=True):
        assert header.fs == 500 and header.leads == LEADS and signal.shape == (12, header.n_samples)
        # The header's "initial value" field is each lead's first sample: checks gain, baseline, layout.
        np.testing.assert_allclose(signal[:, 0] * 1000, header.initial, atol=1e-3)
    by_source = {}
    for s in dataset.sources:
        by_source[s] = by_source.get(s, 0) + 1
    assert by_source == {"CPSC": 2, "Georgia": 30, "PTB-XL": 14, "Chapman-Shaoxing/Ningbo": 33}
    scored = scored_classes(2021).encode([h.dx for h in dataset.headers])
    assert int(scored.any(axis=1).sum()) == 77  # as the sample's README says


@pytest.mark.parametrize("name, n, dx, age, sex", [
    ("A0689", 5000, ("164889003",), 80, "Male"),
    ("E00271", 5000, ("59118001",), 83, "Female"),  # Georgia: first line "E00271.mat 12 500 ..."
    ("HR03961", 5000, ("426783006",), 9, "Female"),  # PTB-XL: "1000/mv"
    ("JS01048", 5000, ("426177001",), 56, "Female"),
    ("JS20005", None, ("284470004", "89792004", "427084000", "427172004"), 83, "Male"),  # empty Dx entry
])
def test_headers_read_by_hand(sample, name, n, dx, age, sex):
    dataset, _ = sample
    header = dataset.headers[dataset.names.index(name)]
    assert header.record == name and header.dx == dx and header.age == age and header.sex == sex
    if n is not None:
        assert header.n_samples == n


def test_a0689_first_samples_in_mv(sample):
    dataset, _ = sample
    signal = dataset.signals[dataset.names.index("A0689")]
    # A0689.hea: lead I "16+24 1000/mV 16 0 -47 ...", lead V6 "... -131 ...".
    assert signal[0, 0] == pytest.approx(-0.047) and signal[11, 0] == pytest.approx(-0.131)


def test_quirks_warned_once_per_dataset(sample):
    dataset, messages = sample
    assert dataset.quirks["first header line names the .mat file, not the record"] == 30
    assert dataset.quirks["units written 'mv'"] == 14 and dataset.quirks["empty entry in the Dx list"] == 1
    assert len(messages) == 3 and all("read anyway" in m for m in messages)


def test_spaced_dx_key_and_sources():
    header = parse_header("Q0001 1 257 3 \nQ0001.mat 16 200(5)/mV 16 0 7 0 0 II\n# Dx: 1, 2\n#Age: NaN\n",
                          "Q0001.hea")
    assert header.dx == ("1", "2") and header.age is None and header.baselines == (5,) and header.gains == (200,)
    assert header.fs == 257 and any("comment key" in q for q in header.quirks)
    assert [source_of(n) for n in ("A0001", "Q0001", "I0001", "S0001", "HR00001", "E00001", "JS00001")] == [
        "CPSC", "CPSC-Extra", "StPetersburg", "PTB", "PTB-XL", "Georgia", "Chapman-Shaoxing/Ningbo"]


def test_header_and_samples_that_disagree_are_an_error(tmp_path):
    import scipy.io

    (tmp_path / "X1.hea").write_text("X1 2 500 4\nX1.mat 16 1000/mV 16 0 0 0 0 I\nX1.mat 16 1000/mV 16 0 0 0 0 II\n"
                                     "#Dx: 426783006\n")
    scipy.io.savemat(tmp_path / "X1.mat", {"val": np.zeros((2, 5), dtype=np.int16)}, format="4")
    with pytest.raises(DataError, match=r"X1.mat: samples are \(2, 5\), the header says 2 leads x 4 samples"):
        read_record(tmp_path / "X1.hea", tmp_path / "X1.mat")
    scipy.io.savemat(tmp_path / "X1.mat", {"other": np.zeros((2, 4), dtype=np.int16)}, format="4")
    with pytest.raises(DataError, match="cannot read the 'val' variable"):
        read_record(tmp_path / "X1.hea", tmp_path / "X1.mat")
