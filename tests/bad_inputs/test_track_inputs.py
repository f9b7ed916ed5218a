"""Inputs of the new tracks that are warnings, not errors: the submit goes on to Ray and says what it found.

- records on disk without a row in the labels CSV: skipped and counted;
- a patient with records in two folds of the CSV's own fold column: the user's design, a warning with counts
  (a generated split that leaked would be refused: tests/ecgcore/test_tracks.py).
"""

from __future__ import annotations

from tests.bad_inputs.cases_tracks import wfdb_argv, write_wfdb_folder
from tests.conftest import write_json


def _submit(argv, tmp_path, monkeypatch, capsys) -> tuple[int, str, list]:
    from orchestrator.cli import main

    started = []
    monkeypatch.setattr("orchestrator.commands.submit._run", lambda *args, **kwargs: started.append(args) or 0)
    code = main([*argv, "--log-dir", str(tmp_path / "log")])
    captured = capsys.readouterr()
    return code, captured.out + captured.err, started


def test_records_without_a_label_are_skipped_and_counted(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    labels = write_wfdb_folder(data)
    rows = labels.read_text().splitlines()
    labels.write_text("\n".join(r for r in rows if not r.startswith(("sub1/rec01,", "sub0/rec04,"))) + "\n")
    code, out, started = _submit(wfdb_argv(tmp_path, data, {"labels": str(labels)}), tmp_path, monkeypatch, capsys)
    assert code == 0 and len(started) == 1
    assert f"2 record(s) without a label in {labels} skipped: sub0/rec04, sub1/rec01" in out
    assert "22 records (" in out


def test_a_patient_in_two_folds_of_the_user_s_fold_column_is_a_warning_with_counts(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    patients = [f"p{i // 2}" for i in range(24)]
    folds = [(i // 2) % 3 for i in range(24)]
    folds[1] = (folds[1] + 1) % 3  # p0's second record in the next fold
    labels = write_wfdb_folder(data, patient=patients, fold=folds)
    code, out, started = _submit(wfdb_argv(tmp_path, data, {"labels": str(labels)}, split="dataset_folds"),
                                 tmp_path, monkeypatch, capsys)
    assert code == 0 and len(started) == 1
    assert "warning: dataset" in out and "patients with records in two of train, validation and test" in out
    assert "1 patient(s), e.g. p0" in out


def test_the_same_patient_leak_in_data_check_is_a_note(tmp_path, capsys):
    from orchestrator.cli import main

    data = tmp_path / "data"
    folds = [(i // 2) % 3 for i in range(24)]
    folds[1] = (folds[1] + 1) % 3
    labels = write_wfdb_folder(data, patient=[f"p{i // 2}" for i in range(24)], fold=folds)
    assert main(["data", "check", str(data), "--track", "wfdb", "--option", f"labels={labels}",
                 "--split", "dataset_folds"]) == 0
    out = capsys.readouterr().out
    assert f"note: patient in two folds: {labels}: patient p0 in folds 0, 1" in out
    assert "note: patient in two parts: split dataset_folds: patients with records in two" in out


def test_job_file_names_the_track_options_path(tmp_path, capsys):
    from orchestrator.cli import main

    job = write_json(tmp_path / "jobs" / "j.json", {"a": {"model": "m", "split": "split_2_2_0", "cvids": [0],
                                                          "track": "wfdb", "track_options": {"label": "x.csv"}}})
    assert main(["submit", str(job), "--dry-run"]) == 2
    assert "$.a.track_options.label: unknown key 'label' (did you mean 'labels'?)" in capsys.readouterr().err
