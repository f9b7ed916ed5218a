"""docs/reference is generated from the schema: current, complete for the shipped files, linked from errors.

The checked-in pages must equal what `python -m orchestrator docs reference`
renders now (a schema change without regenerating fails here); every key of
every shipped model and job file must have its entry; a configuration error
at a documented key ends with a link to an anchor that exists, whether it was
raised while the file was loaded or by a check after it (an unknown
architecture, a stack's parts, a search space, a job's resources), and one
that no documented key holds (a file that does not parse, a job's name) has
none; the command imports no Ray.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ecgcore.config import modelfile
from ecgcore.config.schema import DOCUMENTED, ConfigError
from ecgcore.models import get_architecture, known_architectures
from ecgcore.tracks import CHALLENGE_TRACKS, DEFAULT_TRACK, TRACKS, track_class
from orchestrator.cli import main
from orchestrator.config.jobs import check_kinds, load_jobs, load_model_file, load_models, parse_model
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


@pytest.mark.parametrize("model, job, linked", [
    ({**MODEL, "preprocessing": {"nperseg": 4}}, {}, "$.preprocessing.nperseg: must be at least 8, got 4 "
                                                    "(see docs/reference/model-file.md#preprocessing.nperseg)"),
    ({**MODEL, "model_name": "ResNet"}, {}, "known: CNN, CRNN, ECGDualNet, FeatureGBM, GlobalSkipNet, HybridStack, "
                                           "ResNet1d, SEResNet18, Stack (see docs/reference/model-file.md#model_name)"),
    # A search variant's job is checked under the job file's name for it, not the variant's.
    ({**MODEL, "training_parameters": {"learning_rate": {"grid": [0.1, 0.01]}}},
     {"workers_per_task": 2, "gpus_per_task": 1}, "$.a.gpus_per_task: with workers_per_task 2 give the GPUs of "
                                                  "each worker: gpus_per_worker (see docs/reference/job-file.md"
                                                  "#gpus_per_task)"),
])
def test_the_cli_names_the_entry_and_exits_2(tmp_path, capsys, model, job, linked):
    write_json(tmp_path / "models" / "m.json", model)
    job = write_json(tmp_path / "j.json", {"a": {"model": "m", "split": "split_5_6_14", "cvids": [0], **job}})
    assert main(["submit", str(job), "--models-dir", str(tmp_path / "models"), "--dry-run"]) == 2
    assert capsys.readouterr().err.rstrip().endswith(linked)


@pytest.fixture(scope="module")
def checked_in() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in REFERENCE.glob("*.md")}


def _raised(call) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        call()
    return info.value


def _shipped(name: str) -> dict:
    return json.loads((ROOT / "models" / f"{name}.json").read_text())


HYBRID, STACK, GBM = _shipped("HybridStack"), _shipped("Stack_gbm_cnn"), _shipped("FeatureGBM")


def _params(model: dict, **change) -> dict:
    return {**model, "model_parameters": {**model["model_parameters"], **change}}


@pytest.mark.parametrize("data, path, linked", [
    ({**MODEL, "model_name": "ResNet"}, "$.model_name", "model-file.md#model_name"),
    ({**MODEL, "preprocessing": {"spectrogram": False}}, "$.preprocessing.spectrogram",
     "model-file.md#preprocessing.spectrogram"),
    (_params(HYBRID, deep=GBM, features=GBM), "$.model_parameters.deep",
     "model-file.md#model_parameters.HybridStack.deep"),
    (_params(HYBRID, deep={**MODEL, "model_name": "ResNet"}, features=GBM), "$.model_parameters.deep.model_name",
     "model-file.md#model_name"),
    (_params(STACK, parts=["CNN/a"]), "$.model_parameters.parts", "model-file.md#model_parameters.Stack.parts"),
    (_params(STACK, models=[STACK, MODEL]), "$.model_parameters.models[0]",
     "model-file.md#model_parameters.Stack.models"),
])
def test_a_models_rule_checked_after_loading_links_to_its_key(checked_in, data, path, linked):
    """Rules across keys and a stack's parts are checked once the model is built, the architecture before it."""
    err = _raised(lambda: modelfile.parse_model(data, "<model>"))
    assert err.path == path and _linked(checked_in, err) == linked


@pytest.mark.parametrize("key, space, path, linked", [
    ("training_parameters", {"learning_rate": {"grid": []}}, "$.training_parameters.learning_rate.grid",
     "model-file.md#training_parameters.learning_rate"),
    ("training_parameters", {"learning_rate": {"grid": [0.1, "x"]}}, "$.training_parameters.learning_rate.grid[1]",
     "model-file.md#training_parameters.learning_rate"),
    # Before the model is parsed its architecture is unknown: the section listing them all, not a guessed one.
    ("model_parameters", {"n_conv_blocks": {"randint": [1.5, 3]}}, "$.model_parameters.n_conv_blocks.randint",
     "model-file.md#model_parameters"),
])
def test_a_bad_search_space_links_to_the_key_it_stands_for(checked_in, tmp_path, key, space, path, linked):
    write_json(tmp_path / "m.json", {**MODEL, key: {**MODEL[key], **space}})
    err = _raised(lambda: load_model_file(tmp_path, "m", "j.json", "$.a.model"))
    assert err.path == path and _linked(checked_in, err) == linked


JOB = {"model": "cnn", "split": "split_5_6_14", "cvids": [0]}


@pytest.mark.parametrize("job, path, linked", [
    ({"a.b": {**JOB, "model": "gbm", "workers_per_task": 2}}, "$.a.b.workers_per_task", "job-file.md#workers_per_task"),
    ({"a": {**JOB, "cvids": [0, 0]}}, "$.a.cvids", "job-file.md#cvids"),
    ({"a": {**JOB, "split": "split_5_6_x"}}, "$.a.split", "job-file.md#split"),
    ({"a": {**JOB, "model": "absent"}}, "$.a.model", "job-file.md#model"),
])
def test_a_jobs_checks_after_loading_link_to_its_keys(checked_in, tmp_path, job, path, linked):
    """The job's name (here with a dot) is no part of the anchor."""
    write_json(tmp_path / "models" / "cnn.json", MODEL)
    write_json(tmp_path / "models" / "gbm.json", GBM)

    def check():
        jobs = load_jobs(write_json(tmp_path / "j.json", job))
        check_kinds(jobs, load_models(jobs, tmp_path / "models"))

    err = _raised(check)
    assert err.path == path and _linked(checked_in, err) == linked


def test_a_settings_key_checked_after_loading_links_to_its_entry(checked_in, tmp_path):
    file = tmp_path / "s.yaml"
    file.write_text("log_root: elsewhere\ndashboard_port: 8265\n")
    load_settings(str(file))
    err = ConfigError(file, "$.dashboard_port", "port 8265 is in use")
    assert err.line == 2 and _linked(checked_in, err) == "settings.md#dashboard_port"


def test_an_error_no_documented_key_holds_has_no_link(tmp_path):
    models = tmp_path / "models"
    write_json(models / "cnn.json", MODEL)
    load_model_file(models, "cnn", "j.json", "$.a.model")
    asha = {"type": "asha", "grace_period": 1}
    two_schedulers = {"a": {**JOB, "scheduler": asha}, "b": {**JOB, "scheduler": {**asha, "grace_period": 2}}}

    def schedulers():
        jobs = load_jobs(write_json(tmp_path / "two.json", two_schedulers))
        check_kinds(jobs, load_models(jobs, models))

    def unparsable():  # once loaded, now not JSON: what the file held before says nothing about it
        (models / "cnn.json").write_text("{")
        load_model_file(models, "cnn", "j.json", "$.a.model")

    errors = [
        _raised(lambda: load_jobs(write_json(tmp_path / "list.json", [JOB]))),
        _raised(lambda: load_jobs(write_json(tmp_path / "slash.json", {"a/b": JOB}))),
        _raised(schedulers),
        _raised(lambda: load_settings(str(tmp_path / "absent.yaml"))),
        _raised(unparsable),
    ]
    assert [e.path for e in errors] == ["$", "$.a/b", "$", "$", "$"]
    assert [e.see for e in errors] == [None] * 5 and not any("(see " in str(e) for e in errors), errors


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
