"""summarize --plot on fold folders written the way a trial writes them (FoldLog + train_task, no Ray):
valid PNGs of the fixed size, the paths in the summary, and jobs with folds missing or a 12-lead job."""

import shutil

import matplotlib.image
import pytest

from ecgcore.training.train import train_task
from orchestrator.commands.summarize import summarize
from orchestrator.logdir.plots import CONFUSION_SIZE, CURVES_SIZE, DPI, MULTILABEL_SIZE, PREDICTIONS, plot_job
from orchestrator.logdir.writer import HOTLOG, FoldLog
from tests.conftest import tiny_model
from tests.ecgcore.test_multilabel_training import task12
from tests.ecgcore.test_train import make_task

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _write_job(log, arch, name, make, cvids, challenge):
    for fold in cvids:
        task = make(log / arch / name / f"fold{fold}", fold)
        fold_log = FoldLog(task, {"model": "tiny", "split": task.split, "cvids": cvids, "challenge": challenge}, {})
        fold_log.open()
        fold_log.finish(train_task(task, fold_log))


@pytest.fixture(scope="module")
def log2017(synth_dir, tmp_path_factory):
    """A finished three-fold CinC 2017 job (CNN, 2 epochs)."""
    log = tmp_path_factory.mktemp("plotlog")
    _write_job(log, "CNN", "tiny_cv3",
               lambda out, k: make_task(synth_dir, out, tiny_model(), split="split_3_3_1", fold=k), [0, 1, 2], 2017)
    return log


def assert_png(path, size):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width = matplotlib.image.imread(path).shape[:2]
    assert (width, height) == (size[0] * DPI, size[1] * DPI)


def test_summarize_plot_writes_both_pngs_and_names_them(log2017, capsys):
    text = summarize(log2017, "CNN", plot=True)
    arch = log2017 / "CNN"
    curves, confusion = arch / "tiny_cv3_curves.png", arch / "tiny_cv3_confusion.png"
    assert_png(curves, CURVES_SIZE)
    assert_png(confusion, CONFUSION_SIZE)
    assert f"tiny_cv3: wrote {curves}" in text and f"tiny_cv3: wrote {confusion}" in text
    assert "has no" not in text  # nothing missing in a finished job
    assert (arch / "summary.json").exists()
    assert "plots:" not in summarize(log2017, "CNN")  # without plot, the output is as before
    summarize(log2017, "CNN", "json", plot=True)
    assert f"wrote {curves}" in capsys.readouterr().err  # JSON on stdout stays parseable


def test_a_job_with_missing_folds_plots_the_others_and_says_which(log2017, tmp_path):
    job = tmp_path / "CNN" / "gappy"
    shutil.copytree(log2017 / "CNN" / "tiny_cv3", job)
    (job / "fold1" / PREDICTIONS).unlink()
    (job / "fold2" / HOTLOG).unlink()
    (job / "fold0" / "job.json").write_text('{"cvids": [0, 1, 2, 3], "challenge": 2017}')  # fold3 never started
    written, messages = plot_job(job, tmp_path / "CNN")
    assert [p.name for p in written] == ["gappy_curves.png", "gappy_confusion.png"]
    assert messages == [
        "gappy: fold2 has no hotlog.csv, fold3 has no folder; the learning curves show folds 0, 1",
        "gappy: fold1 has no predictions.csv, fold3 has no folder; the confusion matrix sums folds 0, 2"]
    for k in (0, 2):
        (job / f"fold{k}" / PREDICTIONS).unlink()
    written, messages = plot_job(job, tmp_path / "out")
    assert [p.name for p in written] == ["gappy_curves.png"] and messages[1].endswith("; no confusion matrix")


def test_a_multilabel_job_gets_a_per_class_table(synth12_dir, tmp_path):
    _write_job(tmp_path, "GlobalSkipNet", "job12",
               lambda out, k: task12(synth12_dir, out, split="split_3_3_1", fold=k), [0, 1], 2021)
    text = summarize(tmp_path, "GlobalSkipNet", plot=True)
    arch = tmp_path / "GlobalSkipNet"
    assert_png(arch / "job12_curves.png", CURVES_SIZE)
    assert_png(arch / "job12_confusion.png", MULTILABEL_SIZE)
    assert f"job12: wrote {arch / 'job12_confusion.png'}" in text


def test_a_pretraining_job_plots_its_validation_loss_and_no_confusion_matrix(tmp_path):
    fold = tmp_path / "CNN" / "pre" / "fold0"
    fold.mkdir(parents=True)
    (fold / "job.json").write_text('{"cvids": [0, 1], "challenge": 2017}')
    (fold / "scores.json").write_text('{"fold": 0, "kind": "pretrain", "valid": {"loss": 0.5}}')
    (fold / HOTLOG).write_text("epoch,best_epoch,train_loss,valid_loss,learning_rate,elapsed_s\n"
                               "1,1,0.9,0.7,0.001,1.0\n2,2,0.8,0.5,0.001,2.0\n")
    (tmp_path / "CNN" / "pre" / "fold1").mkdir()
    (tmp_path / "CNN" / "pre" / "fold1" / HOTLOG).write_text("epoch,best_epoch,train_loss,valid_loss\n")
    written, messages = plot_job(tmp_path / "CNN" / "pre", tmp_path / "CNN")
    assert [p.name for p in written] == ["pre_curves.png"]
    assert_png(written[0], CURVES_SIZE)
    assert messages == ["pre: fold1 has no validation in hotlog.csv yet; the learning curves show folds 0",
                        "pre: pre-training job: no class predictions, no confusion matrix"]
    (tmp_path / "CNN" / "pre" / "fold1" / "scores.json").write_text('{"fold": 1, "kind": "pretrain"}')
    _, messages = plot_job(tmp_path / "CNN" / "pre", tmp_path / "CNN")  # finished, never a row: not "yet"
    assert messages[0] == ("pre: fold1 finished with no validation rows in hotlog.csv (not trained in epochs); "
                           "the learning curves show folds 0")


def test_summarize_plot_can_write_the_pngs_elsewhere(log2017, tmp_path):
    out = tmp_path / "figures"
    text = summarize(log2017, "CNN", plot=True, plot_dir=out)
    assert_png(out / "tiny_cv3_curves.png", CURVES_SIZE)
    assert f"wrote {out / 'tiny_cv3_confusion.png'}" in text
