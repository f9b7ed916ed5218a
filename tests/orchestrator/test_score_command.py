"""`score`: challenge output files against header labels, with missing and malformed files."""

import json

import pytest

from ecgcore.io.answers import write_output_file
from ecgcore.metrics.challenge import scored_classes
from orchestrator.cli import main
from tests.ecgcore.test_reader_cinc2020 import SAMPLE

AF, AFL, SR, IAVB = "164889003", "164890007", "426783006", "270492004"


def _headers(folder, dx_by_record):
    folder.mkdir(parents=True, exist_ok=True)
    for record, dx in dx_by_record.items():
        (folder / f"{record}.hea").write_text(f"{record} 1 500 10\n{record}.mat 16 1000/mV 16 0 0 0 0 I\n"
                                              f"#Age: 50\n#Sex: Male\n#Dx: {','.join(dx)}\n")


def _outputs(folder, answers, year=2021):
    folder.mkdir(parents=True, exist_ok=True)
    codes = list(scored_classes(year).names)
    for record, positives in answers.items():
        binary = [any(code in name.split("|") for code in positives) for name in codes]
        write_output_file(folder / f"{record}.csv", record, codes, binary, [0.9 if b else 0.1 for b in binary])


def test_perfect_outputs_score_one(tmp_path, capsys):
    truth = {"R1": [AF], "R2": [SR, IAVB], "R3": ["59118001"], "R4": ["999999"]}  # R4: no scored label
    _headers(tmp_path / "labels", truth)
    _outputs(tmp_path / "out", {r: dx for r, dx in truth.items()})
    assert main(["score", "--labels", str(tmp_path / "labels"), "--outputs", str(tmp_path / "out"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["records"] == 4 and result["challenge_metric"] == pytest.approx(1.0)
    assert result["accuracy"] == pytest.approx(1.0) and result["f_measure"] == pytest.approx(1.0)
    assert result["auroc"] == pytest.approx(1.0) and result["auprc"] == pytest.approx(1.0)
    assert "f_beta" not in result


def test_missing_and_malformed_files_count_as_all_negative(tmp_path, capsys):
    truth = {"R1": [AF], "R2": [SR], "R3": [AFL]}
    _headers(tmp_path / "labels", truth)
    _outputs(tmp_path / "out", {"R1": [AF], "R2": [SR]}, year=2020)
    (tmp_path / "out" / "R2.csv").write_text("#R2\n426783006\n1\n")  # one line short
    code = main(["score", "--labels", str(tmp_path / "labels"), "--outputs", str(tmp_path / "out"),
                 "--year", "2020"])
    captured = capsys.readouterr()
    assert code == 0
    assert "R3.csv: missing; counted as all-negative" in captured.err
    assert "R2.csv: malformed" in captured.err
    assert "Challenge metric (2020)" in captured.out and "F-beta (beta 2)" in captured.out
    # Only R1 is answered, right: observed 1; perfect 3; always-sinus: R1 and R3 have |{label, SR}| = 2,
    # so 0.5 * w(AF,SR) + 1 + 0.5 * w(AFL,SR) = 0.125 + 1 + 0.125.
    c = scored_classes(2020)
    inactive = (0.5 * c.weights[c.index_of(AF), c.index_of(SR)] + 1
                + 0.5 * c.weights[c.index_of(AFL), c.index_of(SR)])
    assert inactive == pytest.approx(1.25)
    expected = (1 - inactive) / (3 - inactive)
    line = next(ln for ln in captured.out.splitlines() if ln.startswith("Challenge metric"))
    assert float(line.split()[-1]) == pytest.approx(expected, abs=5e-4)


def test_score_on_the_real_sample_headers(tmp_path, capsys):
    if not (SAMPLE / "A0689.hea").exists():
        pytest.skip(f"shared dataset {SAMPLE} is not present (expected ../shared beside the project)")
    out = tmp_path / "out"
    _outputs(out, {h.stem: [SR] for h in SAMPLE.glob("*.hea")})  # the always-sinus classifier
    assert main(["score", "--labels", str(SAMPLE), "--outputs", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["records"] == 79 and result["challenge_metric"] == pytest.approx(0.0, abs=1e-12)
    assert main(["score", "--labels", str(tmp_path / "nothing"), "--outputs", str(out)]) == 2
