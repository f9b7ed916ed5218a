"""`report` on hand-made jobs: the file is self-contained, and headless Chromium shows every table and image."""

import matplotlib.image
import pytest

from orchestrator.cli import main
from orchestrator.report import browser
from tests.orchestrator.fake_runs import write_job
from tests.orchestrator.test_report_html import NO_CHROMIUM, PROBE, Tags


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    base = tmp_path_factory.mktemp("report-command")
    log = base / "log"
    write_job(log, "CNN", "weak", [0.30, 0.25, 0.35, 0.30, 0.28], seed=1)
    write_job(log, "CRNN", "strong", [0.10, 0.12, 0.08, 0.15, 0.10], seed=2)
    write_job(log, "CNN", "other_split", [0.2] * 5, seed=3, split="split_5_6_15")
    shot = base / "report.png" if browser.find_chromium() else None
    argv = ["report", "CNN", "CRNN/strong", "--log-dir", str(log), "--out", str(base / "report.html"),
            "--resamples", "200"]
    code = main(argv + (["--screenshot", str(shot)] if shot else []))
    return code, base / "report.html", shot


def test_self_contained_with_every_part(written):
    code, path, _ = written
    assert code == 0
    text = path.read_text(encoding="utf-8")
    tags = Tags(text)
    # 1 comparison (weak vs strong) + 3 cross-validation tables + provenance; forest plot + 3 confusion matrices.
    assert tags.counts["table"] == 5 and len(tags.images) == 4
    assert all(img["src"].startswith("data:image/png;base64,") for img in tags.images)
    assert "<script" not in text.lower() and "src=\"http" not in text and "href=\"http" not in text
    assert "A = CNN/weak, B = CRNN/strong" in text and "CRNN/strong vs CNN/weak:" in text
    assert "Not compared (no other job on the same dataset, split and folds): CNN/other_split" in text
    assert "naive" in text and "95% CI" in text and "abc123" in text  # naive row, intervals, provenance


def test_in_chromium_tables_and_decoded_images(written):
    _, path, shot = written
    if shot is None:
        pytest.skip(NO_CHROMIUM)
    tags = Tags(browser.dump_dom(path))
    assert tags.counts["table"] == 5 and len(tags.images) == 4
    probe = path.with_name("probe.html")
    probe.write_text(path.read_text(encoding="utf-8").replace("</body>", PROBE + "\n</body>"), encoding="utf-8")
    probed = Tags(browser.dump_dom(probe))
    assert all(int(img["data-natural-width"]) > 0 for img in probed.images)
    assert int(probed.attrs_of["body"]["data-page-overflow"]) <= 0  # nothing widens the page
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (1400, 1000) and pixels[..., :3].std() > 0


def test_unknown_target(tmp_path, capsys):
    write_job(tmp_path / "log", "CNN", "a", [0.2] * 5, seed=1)
    assert main(["report", "GRU", "--log-dir", str(tmp_path / "log"), "--out", str(tmp_path / "r.html")]) == 2
    assert "GRU: not an architecture under" in capsys.readouterr().err
