"""summarize on hand-made fold results: rows, mean, sample std, incomplete jobs, formats; a search in one screen."""

import csv
import io
import json
import math
import time

import numpy as np
import pytest

from orchestrator.cli import main
from orchestrator.commands.summarize import Bootstrap, summarize
from tests.conftest import write_json
from tests.orchestrator.fake_runs import write_job, write_search


def _fold(log, job, k, score, cvids):
    d = log / "CNN" / job / f"fold{k}"
    write_json(d / "job.json", {"cvids": cvids, "cvid": k})
    f1 = {"N": score, "A": score, "O": score, "~": 0.5}
    # Training fold mostly N; test fold with 6 N, 1 A, 3 O and no noise.
    train = {"confusion": [[50, 0, 0, 0], [0, 8, 0, 0], [0, 0, 25, 0], [0, 0, 0, 3]]}
    test = {"score": score, "accuracy": 0.9, "f1": f1,
            "confusion": [[5, 0, 1, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]}
    write_json(d / "scores.json", {"fold": k, "train": train, "test": test})


def test_mean_std_and_incomplete(tmp_path, capsys):
    log = tmp_path / "log"
    for k, s in enumerate([0.70, 0.80, 0.90]):
        _fold(log, "full", k, s, [0, 1, 2])
    _fold(log, "partial", 0, 0.5, [0, 1])
    (log / "CNN" / "partial" / "fold1").mkdir()  # started, never finished: no scores.json
    write_json(log / "CNN" / "partial" / "fold1" / "job.json", {"cvids": [0, 1], "cvid": 1})
    text = summarize(log, "CNN")
    assert "0.800 ± 0.100" in text
    # Always-N on 6 N, 1 A, 3 O: F1_N = 2*6 / (2*6 + 4) = 0.75, F1_A = F1_O = 0, score 0.25, accuracy 0.6.
    assert "naive  0.250  0.750  0.000  0.000  0.000     0.600" in text
    assert "(3 folds; naive 0.250)" in text
    assert "[incomplete: missing fold(s) [1]]" in text
    data = json.loads((log / "CNN" / "summary.json").read_text())
    assert data["jobs"]["full"]["std"]["score"] == pytest.approx(0.1)
    assert data["jobs"]["full"]["naive"] == {"majority_class": ["N"], "mean": pytest.approx(
        {"score": 0.25, "F1_N": 0.75, "F1_A": 0.0, "F1_O": 0.0, "F1_~": 0.0, "accuracy": 0.6})}
    assert data["jobs"]["partial"]["complete"] is False and data["jobs"]["partial"]["std"]["score"] is None
    assert main(["summarize", "CNN", "--log-dir", str(log), "--format", "markdown"]) == 0
    assert "| fold | score | F1_N |" in capsys.readouterr().out
    assert main(["summarize", "CNN", "--log-dir", str(log), "--format", "json"]) == 0
    assert math.isclose(json.loads(capsys.readouterr().out)["jobs"]["full"]["mean"]["score"], 0.8)


def test_unknown_architecture(tmp_path, capsys):
    _fold(tmp_path / "log", "a", 0, 0.5, [0])
    assert main(["summarize", "CRNN", "--log-dir", str(tmp_path / "log")]) == 2
    assert "architectures with results: CNN" in capsys.readouterr().err


def test_console_script_entry(tmp_path, capsys):
    from orchestrator.cli import summarize_main

    _fold(tmp_path / "log", "a", 0, 0.5, [0])
    assert summarize_main(["CNN", "--log-dir", str(tmp_path / "log")]) == 0
    assert "a                              0.500 ± n/a  (1 folds; naive 0.250)" in capsys.readouterr().out


def test_intervals_in_every_format_old_columns_kept(tmp_path, capsys):
    log = tmp_path / "log"
    scores = write_job(log, "CNN", "job", [0.3, 0.25, 0.35, 0.3, 0.28], seed=1)
    text = summarize(log, "CNN")
    assert "\npooled " in text and "\n95% CI  [0." in text
    data = json.loads((log / "CNN" / "summary.json").read_text())["jobs"]["job"]
    boot = data["bootstrap"]
    assert (boot["resamples"], boot["seed"], boot["n_records"]) == (1000, 0, 200)
    for column in ("score", "F1_N", "F1_A", "F1_O", "F1_~", "accuracy"):
        low, high = boot["ci"][column]
        assert low <= boot["pooled"][column] <= high
    assert f"{boot['pooled']['score']:.3f} [{boot['ci']['score'][0]:.2f}, {boot['ci']['score'][1]:.2f}]" in text
    assert data["mean"]["score"] == pytest.approx(np.mean(scores))  # the old keys are unchanged
    assert main(["summarize", "CNN", "--log-dir", str(log), "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    old = ["job", "fold", "score", "F1_N", "F1_A", "F1_O", "F1_~", "accuracy", "challenge"]
    assert rows[0][:len(old)] == old and rows[0][len(old):len(old) + 3] == [
        "score_pooled", "score_ci_low", "score_ci_high"]
    assert [float(r[2]) for r in rows[1:]] == pytest.approx(scores, abs=1e-6)
    assert float(rows[1][len(old)]) == pytest.approx(boot["pooled"]["score"])


def test_intervals_seeded_and_optional(tmp_path, capsys):
    log = tmp_path / "log"
    write_job(log, "CNN", "job", [0.3] * 5, seed=1)

    def ci(*extra):
        assert main(["summarize", "CNN", "--log-dir", str(log), "--format", "json", *extra]) == 0
        return json.loads(capsys.readouterr().out)["jobs"]["job"]["bootstrap"]

    assert ci() == ci("--seed", "0") and ci()["ci"] != ci("--seed", "1")["ci"]
    assert ci("--resamples", "0") is None
    assert "95% CI" not in summarize(log, "CNN", bootstrap=Bootstrap(resamples=0))


def test_repeated_split_means_per_repeat(tmp_path):
    log = tmp_path / "log"
    rates = [0.1] * 5 + [0.4] * 5  # repeat 1 much worse than repeat 0
    scores = write_job(log, "CNN", "rep", rates, seed=1, split="split_5_6_14_r2", folds=list(range(10)))
    text = summarize(log, "CNN")
    assert "(10 folds; naive" in text
    data = json.loads((log / "CNN" / "summary.json").read_text())["jobs"]["rep"]
    assert data["repeats"]["folds_per_repeat"] == 5
    assert data["repeats"]["mean"]["score"] == pytest.approx({"0": np.mean(scores[:5]), "1": np.mean(scores[5:])})
    assert f"mean r0         {np.mean(scores[:5]):.3f}" in text and "mean r1 " in text
    assert data["bootstrap"]["n_records"] == 200 and data["bootstrap"]["n_rows"] == 400  # each record twice


@pytest.fixture(scope="module")
def search_log(tmp_path_factory):
    """A search of 200 learning rates x 5 folds beside a plain job."""
    log = tmp_path_factory.mktemp("search") / "log"
    write_search(log, "CNN", "lr", 200)
    write_job(log, "CNN", "plain", [0.2] * 5, seed=7)
    return log


def test_a_search_of_200_variants_is_one_screen(search_log, capsys):
    started = time.perf_counter()
    text = summarize(search_log, "CNN")
    seconds = time.perf_counter() - started
    data = json.loads((search_log / "CNN" / "summary.json").read_text())
    ranking = data["rankings"]["lr"]
    assert seconds < 5 and len(text.splitlines()) <= 45
    assert "CNN / plain\n" in text and "  plain  " in text  # a job that is not a variant keeps its table
    assert "CNN / lr__" not in text and f"  {ranking[0]}  " not in text  # no variant's own table nor mean line
    assert "search lr: variants ranked by mean CV score (200 variants" in text
    top = data["jobs"][ranking[0]]
    assert f"   1. {ranking[0]:<40} {top['mean']['score']:.3f} ± {top['std']['score']:.3f} (5 folds)  pooled " in text
    assert f"  20. {ranking[19]} " in text and f"  21. {ranking[20]} " not in text
    assert "  ... 180 more variants: --all lists them" in text
    assert "The top score is optimistic: it is the best of 200 variants' means on the same test folds," in text
    assert "biased upwards (the winner's curse)" in text
    assert "the split split_5_6_14 has no hold-out part, so the top score is not confirmed on other records" in text
    # summary.json keeps every variant and fold; intervals: the plain job and the top variant only
    assert len(data["jobs"]) == 201 and all(len(data["jobs"][v]["folds"]) == 5 for v in ranking)
    assert top["bootstrap"] is not None and data["jobs"]["plain"]["bootstrap"] is not None
    assert data["jobs"][ranking[1]]["bootstrap"] is None and "--all" in data["jobs"][ranking[1]]["bootstrap_note"]
    assert main(["summarize", "CNN", "--log-dir", str(search_log), "--format", "csv", "--resamples", "0"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 201 * 5
    print(f"summarize of 200 variants x 5 folds: {seconds:.3f} s, {len(text.splitlines())} lines")


def test_full_shows_every_variant(search_log):
    text = summarize(search_log, "CNN", full=True, bootstrap=Bootstrap(resamples=50))
    data = json.loads((search_log / "CNN" / "summary.json").read_text())
    ranking = data["rankings"]["lr"]
    assert all(data["jobs"][v]["bootstrap"]["resamples"] == 50 for v in ranking)
    assert text.count("CNN / lr__") == 200 and f"200. {ranking[-1]} " in text and "more variants" not in text
    assert "The top score is optimistic" in text


def _holdout_search(log, ensemble: bool) -> list[str]:
    names = write_search(log, "CNN", "lr", 3, n_folds=2, split="split_5_6_14_holdout")
    if ensemble:
        for k, name in enumerate(names):
            write_json(log / "CNN" / name / "ensemble.json", {
                "n_records": 40, "folds": [0, 1], "single_fold_scores": {"0": 0.6, "1": 0.7},
                "single_fold_mean": 0.65 + k / 100, "ensemble": {"score": 0.68 + k / 100, "accuracy": 0.8,
                                                                 "f1": {"N": 0.8, "A": 0.6, "O": 0.6, "~": 0.6}}})
    return names


def test_the_top_variant_on_the_hold_out_part(tmp_path):
    names = _holdout_search(tmp_path / "log", ensemble=True)
    text = summarize(tmp_path / "log", "CNN", bootstrap=Bootstrap(resamples=0))
    top = json.loads((tmp_path / "log" / "CNN" / "summary.json").read_text())["rankings"]["lr"][0]
    k = names.index(top)
    assert f"hold-out: the top variant {top} on the 40 hold-out records (`ensemble`):" in text
    assert f"single folds {0.65 + k / 100:.3f} mean, its 2 fold models together {0.68 + k / 100:.3f}" in text


def test_a_hold_out_part_not_scored_yet(tmp_path):
    _holdout_search(tmp_path / "log", ensemble=False)
    text = summarize(tmp_path / "log", "CNN", bootstrap=Bootstrap(resamples=0))
    top = json.loads((tmp_path / "log" / "CNN" / "summary.json").read_text())["rankings"]["lr"][0]
    assert f"the split split_5_6_14_holdout has a hold-out part, not scored yet: `ensemble <log>/CNN/{top}`" in text
