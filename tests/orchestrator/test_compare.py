"""compare on hand-made jobs: the numbers equal scipy's and a hand computation; refusals; Holm; JSON."""

import json
import math

import numpy as np
import pytest
import scipy.stats

from orchestrator.cli import main
from tests.orchestrator.fake_runs import write_job

RATES_A = [0.30, 0.25, 0.35, 0.30, 0.28]
RATES_B = [0.10, 0.12, 0.08, 0.15, 0.10]


@pytest.fixture()
def log(tmp_path):
    log = tmp_path / "log"
    write_job(log, "CNN", "weak", RATES_A, seed=1)
    write_job(log, "CRNN", "strong", RATES_B, seed=2)
    return log


def test_p_values_equal_scipy_and_the_hand_computed_corrected_t(log, capsys):
    assert main(["compare", "CNN/weak", "CRNN/strong", "--log-dir", str(log), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    weak, strong = (np.array(j["fold_scores"]["score"]) for j in result["jobs"])
    m = result["pairs"][0]["metrics"]["score"]
    expected = scipy.stats.wilcoxon(strong, weak)
    assert m["wilcoxon"]["p"] == pytest.approx(expected.pvalue) and m["wilcoxon"]["p"] == pytest.approx(0.0625)
    # Nadeau-Bengio: t = mean(d) / sqrt((1/J + n_test/n_train) var(d)); n_train = 160 train + 32 valid, n_test 40.
    d = strong - weak
    t = d.mean() / math.sqrt((1 / 5 + 40 / 192) * d.var(ddof=1))
    assert m["corrected_t"]["statistic"] == pytest.approx(t)
    assert m["corrected_t"]["p"] == pytest.approx(2 * scipy.stats.t.sf(abs(t), df=4))
    assert m["fold_deltas"] == pytest.approx(d.tolist())
    assert m["bootstrap"]["low"] > 0  # B is better on every fold by a wide margin
    assert "cannot reach p < 0.05 with 5 folds" in result["pairs"][0]["verdict"]


def test_table_and_verdict(log, capsys):
    assert main(["compare", str(log / "CNN" / "weak"), "CRNN/strong", "--log-dir", str(log),
                 "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "A = CNN/weak, B = CRNN/strong" in out and "per-fold Δ score: fold0 +" in out
    assert "CRNN/strong vs CNN/weak: CRNN/strong scores higher than CNN/weak" in out
    for metric in ("score", "accuracy", "F1_N", "F1_A", "F1_O", "F1_~"):
        assert f"\n{metric} " in out


def test_no_claim_without_evidence(tmp_path, capsys):
    log = tmp_path / "log"
    write_job(log, "CNN", "a", RATES_A, seed=1)
    write_job(log, "CNN", "b", [r + 0.01 for r in RATES_A], seed=3)
    assert main(["compare", "CNN/a", "CNN/b", "--log-dir", str(log)]) == 0
    out = capsys.readouterr().out
    assert "no evidence of a difference" in out or "not conclusive" in out
    assert "scores higher" not in out


@pytest.mark.parametrize("change, named", [
    ({"split": "split_5_6_15"}, "split split_5_6_14 vs split_5_6_15"),
    ({"data_dir": "/data/other"}, "data dir /data/cinc2017 vs /data/other"),
    ({"folds": [0, 1, 2, 3]}, "folds [0, 1, 2, 3, 4] vs [0, 1, 2, 3]"),
])
def test_refuses_jobs_on_other_test_records(tmp_path, capsys, change, named):
    log = tmp_path / "log"
    write_job(log, "CNN", "a", RATES_A, seed=1)
    folds = change.get("folds", list(range(5)))
    write_job(log, "CNN", "b", RATES_B[:len(folds)], seed=2, split=change.get("split", "split_5_6_14"),
              data_dir=change.get("data_dir", "/data/cinc2017"), folds=folds)
    assert main(["compare", "CNN/a", "CNN/b", "--log-dir", str(log)]) == 2
    err = capsys.readouterr().err
    assert "cannot compare CNN/a with CNN/b" in err and named in err


def test_three_jobs_get_holm(log, capsys):
    write_job(log, "CNN", "middle", [0.2] * 5, seed=4)
    assert main(["compare", "CNN/weak", "CNN/middle", "CRNN/strong", "--log-dir", str(log), "--json",
                 "--resamples", "100"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [(p["a"], p["b"]) for p in result["pairs"]] == [
        ("CNN/weak", "CNN/middle"), ("CNN/weak", "CRNN/strong"), ("CNN/middle", "CRNN/strong")]
    raw = [p["metrics"]["score"]["corrected_t"]["p"] for p in result["pairs"]]
    held = [p["metrics"]["score"]["holm"]["corrected_t"] for p in result["pairs"]]
    order = np.argsort(raw)
    assert held[order[0]] == pytest.approx(min(1.0, 3 * raw[order[0]]))  # Holm: the smallest p times m
    assert all(h >= r for h, r in zip(held, raw, strict=True))
    assert "Holm-adjusted" in result["pairs"][0]["verdict"]


def test_needs_two_jobs_and_real_folders(log, capsys):
    assert main(["compare", "CNN/weak", "--log-dir", str(log)]) == 2
    assert "at least two jobs" in capsys.readouterr().err
    assert main(["compare", "CNN/weak", "CNN/nothing", "--log-dir", str(log)]) == 2
    assert "CNN/nothing: neither a job folder nor ARCH/JOB" in capsys.readouterr().err


def test_repeated_split_uses_all_r_times_k_folds(tmp_path, capsys):
    log = tmp_path / "log"
    folds = list(range(10))
    write_job(log, "CNN", "a", RATES_A * 2, seed=1, split="split_5_6_14_r2", folds=folds)
    write_job(log, "CNN", "b", RATES_B * 2, seed=2, split="split_5_6_14_r2", folds=folds)
    assert main(["compare", "CNN/a", "CNN/b", "--log-dir", str(log), "--json", "--resamples", "200"]) == 0
    result = json.loads(capsys.readouterr().out)
    m = result["pairs"][0]["metrics"]["score"]
    d = np.array(result["jobs"][1]["fold_scores"]["score"]) - np.array(result["jobs"][0]["fold_scores"]["score"])
    t = d.mean() / math.sqrt((1 / 10 + 40 / 192) * d.var(ddof=1))  # J = r x k = 10 (Bouckaert & Frank)
    assert m["corrected_t"]["n"] == 10 and m["corrected_t"]["statistic"] == pytest.approx(t)
    assert m["wilcoxon"]["p"] == pytest.approx(scipy.stats.wilcoxon(d).pvalue)
    assert result["design"]["n_records"] == 200  # each record tested once per repeat, resampled as one unit
    assert "treats the 10 folds of 2 repeats as independent" in result["pairs"][0]["verdict"]


def test_refuses_predictions_of_other_records(log, capsys):
    """The same split name, but a fold whose predictions.csv lists other records (e.g. an edited split folder)."""
    path = log / "CRNN" / "strong" / "fold2" / "predictions.csv"
    path.write_text(path.read_text().replace("A02000,", "B02000,"))
    assert main(["compare", "CNN/weak", "CRNN/strong", "--log-dir", str(log)]) == 2
    err = capsys.readouterr().err
    assert "cannot compare CNN/weak with CRNN/strong: models were tested on different records" in err
    assert "A02000 (A)" in err and "B02000 (B)" in err


def _sign(log, job, signature, scheme):
    for scores in (log / "CNN" / job).glob("fold*/scores.json"):
        data = json.loads(scores.read_text())
        data["provenance"].update(data_signatures={data["data_dir"]: signature}, **scheme)
        scores.write_text(json.dumps(data))


@pytest.mark.parametrize("scheme_b, sig_b, comparable", [
    ({"data_signature_scheme": "content"}, "f" * 64, False),  # same path, other content: refused
    ({}, "f" * 64, True),  # b's signature is of the old scheme (times): the path decides
    ({"data_signature_scheme": "content"}, "e" * 64, True),
])
def test_the_content_signature_decides_and_an_old_schemes_does_not(tmp_path, capsys, scheme_b, sig_b, comparable):
    log = tmp_path / "log"
    write_job(log, "CNN", "a", RATES_A, seed=1)
    write_job(log, "CNN", "b", RATES_B, seed=2)
    _sign(log, "a", "e" * 64, {"data_signature_scheme": "content"})
    _sign(log, "b", sig_b, scheme_b)
    assert main(["compare", "CNN/a", "CNN/b", "--log-dir", str(log), "--resamples", "100"]) == (0 if comparable else 2)
    if not comparable:
        assert "data signature eeeeeeeeeeee vs ffffffffffff" in capsys.readouterr().err


def test_the_same_content_at_another_path_compares(tmp_path):
    log = tmp_path / "log"
    write_job(log, "CNN", "a", RATES_A, seed=1)
    write_job(log, "CNN", "b", RATES_B, seed=2, data_dir="/mnt/copy/cinc2017")
    for job in ("a", "b"):
        _sign(log, job, "e" * 64, {"data_signature_scheme": "content"})
    assert main(["compare", "CNN/a", "CNN/b", "--log-dir", str(log), "--resamples", "100"]) == 0
