"""The log folder's file-system layer (orchestrator.logdir.storage) against a real S3 server (moto's) and a disk.

A Stage pushes what changed (scores.json last) and removes there what was removed here; a mount copies a
reader's files and writes back only what it changed; an unreachable or missing bucket and an unwritable local
fold folder fail with a message naming the place.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecgcore.config.task import Task
from orchestrator.logdir.storage import (
    Remote,
    Stage,
    StorageError,
    check_writable,
    is_uri,
    join,
    mounted,
    read_json,
    remove,
    write_json,
    write_text,
)
from tests.e2e.s3server import aws_environment, keys, s3_server

BUCKET = "unit"


@pytest.fixture(scope="module")
def s3():
    with s3_server(BUCKET) as (env, client), aws_environment(env):
        yield client


def test_uris_and_paths_are_told_apart_and_joined():
    assert is_uri("s3://b/x") and is_uri("gs://b") and not is_uri("/tmp/x") and not is_uri("file:///tmp/x")
    assert join("s3://b/x/", "CNN", "job") == "s3://b/x/CNN/job"
    assert join("/tmp/x", "CNN") == "/tmp/x/CNN"


def test_a_stage_pushes_changes_last_file_last_and_removals(s3):
    stage = Stage(f"s3://{BUCKET}/stage/fold0")
    (stage.dir / "hotlog.csv").write_text("epoch\n1\n")
    (stage.dir / "old.txt").write_text("x")
    stage.push()
    assert keys(s3, BUCKET, "stage/") == ["stage/fold0/hotlog.csv", "stage/fold0/old.txt"]
    (stage.dir / "old.txt").unlink()
    (stage.dir / "hotlog.csv").write_text("epoch\n1\n2\n")
    (stage.dir / "scores.json").write_text("{}")
    order = []
    stage.remote.write_bytes = lambda rel, data, put=stage.remote.write_bytes: (order.append(rel), put(rel, data))
    stage.push(last=("scores.json",))
    assert order == ["hotlog.csv", "scores.json"]  # the unchanged file is not sent again; scores.json last
    assert keys(s3, BUCKET, "stage/") == ["stage/fold0/hotlog.csv", "stage/fold0/scores.json"]
    retry = Stage(f"s3://{BUCKET}/stage/fold0")
    retry.pull()
    assert (retry.dir / "hotlog.csv").read_text() == "epoch\n1\n2\n"
    stage.discard()
    stage.push()  # after discard: nothing (an empty working copy must never delete the folder there)
    assert len(keys(s3, BUCKET, "stage/")) == 2
    retry.discard()
    assert not stage.dir.exists() and not retry.dir.exists()


def test_a_retried_fold_replaces_the_events_it_did_not_download(s3):
    """A fold's writer owns its folder: the old TensorBoard file it skips (it rebuilds the events) goes."""
    base = f"s3://{BUCKET}/owned/fold0"
    write_text(base, "events.out.tfevents.1", "old")
    write_text(base, "hotlog.csv", "epoch\n1\n")
    stage = Stage(base)
    stage.pull(skip=("events.out.tfevents.*",), owned=True)
    assert sorted(p.name for p in stage.dir.iterdir()) == ["hotlog.csv"]
    (stage.dir / "events.out.tfevents.2").write_text("rebuilt")
    stage.push()
    assert keys(s3, BUCKET, "owned/") == ["owned/fold0/events.out.tfevents.2", "owned/fold0/hotlog.csv"]
    stage.discard()


def test_a_mount_copies_the_small_files_and_writes_back_what_changed(s3):
    root = f"s3://{BUCKET}/mount"
    write_json(join(root, "CNN", "job", "fold0"), "scores.json", {"score": 0.5})
    write_text(join(root, "CNN", "job", "fold0"), "best_model.pt", "weights")
    write_text(join(root, ".tune"), "experiment.json", "{}")
    with mounted(root, write_back=True) as local:
        assert json.loads((local / "CNN" / "job" / "fold0" / "scores.json").read_text()) == {"score": 0.5}
        assert not (local / "CNN" / "job" / "fold0" / "best_model.pt").exists()  # models only when asked
        assert not (local / ".tune").exists()
        (local / "CNN" / "summary.json").write_text("{}")
    assert not local.exists()
    assert "mount/CNN/summary.json" in keys(s3, BUCKET, "mount/")
    assert "mount/CNN/job/fold0/best_model.pt" in keys(s3, BUCKET, "mount/")  # not copied, so not removed
    with mounted(join(root, "CNN", "job"), models=True) as local:
        assert (local / "fold0" / "best_model.pt").read_text() == "weights"
    with mounted(root, under="CNN") as local:
        assert sorted(p.name for p in local.iterdir()) == ["CNN"]


def test_files_by_location_on_both_kinds_of_storage(s3, tmp_path):
    for base in (f"s3://{BUCKET}/files", str(tmp_path / "files")):
        write_json(base, "a.json", {"x": 1})
        assert read_json(base, "a.json") == {"x": 1} and read_json(base, "missing.json") is None
        write_text(base, ".lock", "me", exclusive=True)
        with pytest.raises(FileExistsError):
            write_text(base, ".lock", "someone else", exclusive=True)
        remove(base, ".lock")
        remove(base, ".lock")  # absent: nothing
        assert read_json(base, ".lock") is None


def test_a_missing_bucket_is_an_error_naming_it(s3):
    with pytest.raises(StorageError, match="s3://no-such-bucket/log"):
        check_writable("s3://no-such-bucket/log")
    stage = Stage("s3://no-such-bucket/log/CNN/job/fold0")
    (stage.dir / "hotlog.csv").write_text("epoch\n")
    with pytest.raises(StorageError, match="s3://no-such-bucket/log/CNN/job/fold0/hotlog.csv"):
        stage.push()
    stage.discard()
    with pytest.raises(StorageError, match="cannot open"):
        Remote("nosuchscheme://x/y")


def test_a_trial_takes_a_stacks_part_folds_from_the_bucket(s3, tmp_path):
    from dataclasses import replace

    from orchestrator.run.trial import local_init

    files = {"model.json": b"{}", "best_model.pt": b"weights", "scores.json": b"{}", "hotlog.csv": b"epoch\n"}
    for name, content in files.items():
        Remote(f"s3://{BUCKET}/log/CNN/part/fold0").write_bytes(name, content)
    local_fold = str(tmp_path / "log" / "FeatureGBM" / "part" / "fold0")
    task = replace(_task("/nowhere"), part_folds=(local_fold, f"s3://{BUCKET}/log/CNN/part/fold0"))
    local = local_init(task, tmp_path / "scratch")
    assert local.part_folds[0] == local_fold and local.init_checkpoint is None
    copied = Path(local.part_folds[1])
    assert sorted(p.name for p in copied.iterdir()) == ["best_model.pt", "model.json", "scores.json"]
    assert (copied / "best_model.pt").read_bytes() == b"weights" and task.part_folds[1].startswith("s3://")


def _task(out_dir: str) -> Task:
    from ecgcore.config.modelfile import parse_model
    from tests.conftest import tiny_model

    return Task(task_id="CNN/job/fold0", job="job", fold=0, model_file="tiny", model=parse_model(tiny_model()),
                data_dir="/nowhere", split="split_3_3_1", out_dir=out_dir, max_epochs=1, log_en=False,
                track="cinc2017")


def test_an_unwritable_fold_folder_fails_naming_it_and_leaves_the_rest(tmp_path):
    from orchestrator.logdir.writer import FoldLog

    job = tmp_path / "log" / "CNN" / "job"
    job.mkdir(parents=True)
    (job / "fold0").write_text("a file where the fold folder should be")  # fails even as root
    log = FoldLog(_task(str(job / "fold0")), {}, {})
    with pytest.raises(StorageError, match=f"fold folder {job / 'fold0'}: cannot write"):
        log.open()
    assert (job / "fold0").read_text() == "a file where the fold folder should be"
