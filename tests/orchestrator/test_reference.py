"""docs/reference is generated from the schema: current, complete for the shipped files, linked from errors.

The checked-in pages must equal what `python -m orchestrator docs reference`
renders now (a schema change without regenerating fails here); every key of
every shipped model and job file must have its entry; a configuration error
ends with a link to an anchor that exists; the command imports no Ray.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ecgcore.config.schema import DOCUMENTED, ConfigError
from ecgcore.models import get_architecture, known_architectures
from ecgcore.tracks import CHALLENGE_TRACKS, DEFAULT_TRACK, TRACKS, track_class
from orchestrator.cli import main
from orchestrator.config.jobs import load_jobs, parse_model
from orchestrator.config.reference import render_pages
from orchestrator.config.search import KINDS
from orchestrator.config.settings import load_settings
from tests.conftest import ROOT, write_json
from tests.orchestrator.test_cli_light import _heavy_imports

REFERENCE = ROOT / "docs" / "reference"
ANCHOR = re.compile(r'<a id="([^"]+)"></a>')
ROW = re.compile(r'^\| <a id="([^"]+)"></a>`([^`]+)`', re.M)
LINK = re.compile(r"\(see docs/reference/([\w-]+\.md)#([^)\s]+)\)$")


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return render_pages()


def test_checked_in_pages_are_current(pages):
    stale = [name for name, text in pages.items()
             if not (REFERENCE / name).is_file() or (REFERENCE / name).read_text(encoding="utf-8") != text]
    assert not stale, f"docs/reference is stale ({stale}): run python -m orchestrator docs reference"


def _walk(data: dict, anchor: str, shown: str, variants: dict[str, str]):
    """(anchor, JSON path as the page shows it, is an object) of every key under data; a search space is a value."""
    for key, value in data.items():
        a, s = f"{anchor}.{key}" if anchor else key, f"{shown}.{key}" if shown else key
        a = f"{a}.{variants[a]}" if a in variants else a
        is_object = isinstance(value, dict) and not (len(value) == 1 and next(iter(value)) in KINDS)
        yield a, s, is_object
        if is_object:
            yield from _walk(value, a, s, variants)


def _shipped_keys():
    for file in sorted((ROOT / "models").glob("*.json")):
        data = json.loads(file.read_text())
        yield "model-file.md", file.name, _walk(data, "", "", {"model_parameters": data["model_name"]})
    for file in sorted((ROOT / "jobs").glob("*.json")):
        for body in json.loads(file.read_text()).values():
            track = body.get("track") or CHALLENGE_TRACKS.get(body.get("challenge"), DEFAULT_TRACK)
            yield "job-file.md", file.name, _walk(body, "", "<job>", {"track_options": track})


def test_every_key_of_the_shipped_files_has_its_entry(pages):
    rows = {page: dict(ROW.findall(text)) for page, text in pages.items()}
    anchors = {page: set(ANCHOR.findall(text)) for page, text in pages.items()}
    missing, checked = [], 0
    for page, file, keys in _shipped_keys():
        for anchor, shown, is_object in keys:
            checked += 1
            found = anchor in anchors[page] if is_object else rows[page].get(anchor) == shown
            if not found:
                missing.append(f"{file}: {shown} (#{anchor})")
    assert checked > 300 and not missing, f"keys without a reference entry: {missing}"


def test_every_architecture_and_track_is_documented_under_its_name():
    documented = {(d.path, d.variant): cls for cls, d in DOCUMENTED.items()}
    for name in known_architectures():
        assert documented[("model_parameters", name)] is get_architecture(name).params
    for name in TRACKS:
        options = track_class(name).Options
        assert options not in DOCUMENTED or DOCUMENTED[options].variant == name, name


def _linked(pages, err: ConfigError) -> str:
    """The anchor an error's message ends with, checked to exist on its page."""
    match = LINK.search(str(err))
    assert match, f"no reference link in: {err}"
    page, anchor = match.groups()
    assert anchor in ANCHOR.findall(pages[page]), f"{page} has no anchor {anchor!r}"
    return f"{page}#{anchor}"


MODEL = json.loads((ROOT / "models" / "CNN_small.json").read_text())


@pytest.mark.parametrize("section, change, linked", [
    ("training_parameters", {"learning_rate": "fast"}, "model-file.md#training_parameters.learning_rate"),
    ("training_parameters", {"learnin_rate": 0.1}, "model-file.md#training_parameters"),
    ("model_parameters", {"n_conv_blocks": 0}, "model-file.md#model_parameters.CNN.n_conv_blocks"),
    ("model_parameters", {"n_lstmneurons": 8}, "model-file.md#model_parameters.CNN"),
    (None, {"model_parameter": {}}, "model-file.md#top-level"),
])
def test_a_model_files_error_links_to_its_key(pages, section, change, linked):
    data = {**MODEL, section: {**MODEL[section], **change}} if section else {**MODEL, **change}
    with pytest.raises(ConfigError) as info:
        parse_model(data, "m.json")
    assert _linked(pages, info.value) == linked
    assert info.value.detail in str(info.value) and "(see" not in info.value.detail


def test_job_and_settings_errors_link_to_their_keys(pages, tmp_path):
    body = {"model": "m", "split": "split_5_6_14", "cvids": [0]}
    ptbxl = {"track": "ptbxl", "track_options": {"task": "x"}}
    for change, linked in (({"cvids": [-1]}, "job-file.md#cvids"),
                           ({"scheduler": {"grace_period": "1"}}, "job-file.md#scheduler.grace_period"),
                           (ptbxl, "job-file.md#track_options.ptbxl.task")):
        with pytest.raises(ConfigError) as info:
            load_jobs(write_json(tmp_path / "j.json", {"a": {**body, **change}}))
        assert _linked(pages, info.value) == linked
    (tmp_path / "s.yaml").write_text("log_rot: elsewhere\n")
    with pytest.raises(ConfigError) as info:
        load_settings(str(tmp_path / "s.yaml"))
    assert _linked(pages, info.value) == "settings.md#top-level"


def test_the_cli_names_the_entry_and_exits_2(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    write_json(tmp_path / "models" / "m.json", {**MODEL, "preprocessing": {"nperseg": 4}})
    job = write_json(tmp_path / "j.json", {"a": {"model": "m", "split": "split_5_6_14", "cvids": [0]}})
    assert main(["submit", str(job), "--models-dir", str(tmp_path / "models"), "--dry-run"]) == 2
    assert "(see docs/reference/model-file.md#preprocessing.nperseg)" in capsys.readouterr().err


def test_check_names_the_stale_pages(tmp_path, capsys):
    assert main(["docs", "reference", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    (tmp_path / "settings.md").write_text("old\n")
    (tmp_path / "index.md").unlink()
    assert main(["docs", "reference", "--out", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'settings.md'}: differs" in out and f"{tmp_path / 'index.md'}: missing" in out
    assert "model-file.md" not in out


def test_the_command_imports_no_ray(tmp_path, pages):
    """It renders the architectures' parameters, declared in the model modules: torch, but never Ray."""
    text, loaded = _heavy_imports("docs", "reference", "--out", str(tmp_path / "ref"))
    assert "wrote" in text and "ray" not in loaded and "scipy.signal" not in loaded
    assert {p.name: p.read_text(encoding="utf-8") for p in Path(tmp_path / "ref").iterdir()} == pages
