"""The driver's side of the data: every dataset read once, its splits settled, and its preprocessed
form built once per submit for every distinct preprocessing, cached on disk and shared with the trials.

Before any trial starts, `prepare_data` checks each (dataset, split) pair
and each fold id, and builds each distinct (dataset, preprocessing) once:
from `<log>/.cache/<key>.npz` when an earlier submit left it (see
ecgcore.io.cache for the key), else by reading and preprocessing the records
and writing that file. The tuner puts the results into Ray's object store
once (`tune.with_parameters`), so trials neither re-read nor re-parse the
records, and their numpy arrays are shared, not copied, between trials on a
node.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ecgcore.config.schema import ConfigError
from ecgcore.config.task import Task
from ecgcore.data.pipeline import pipeline_for, split_of
from ecgcore.errors import ProjectError
from ecgcore.io.cache import prepared_records, preprocessing_key, read_records
from ecgcore.io.signature import dataset_signature, read_digests, signature_memo, write_digests
from ecgcore.models import part_models
from ecgcore.records import Records

# (job, fold) -> (job file, JSON path of that fold id), so that a fold the data lacks names the job file.
FoldPaths = Mapping[tuple[str, int], tuple[str, str]]


@dataclass
class SharedData:
    records: dict[str, Records] = field(default_factory=dict)  # preprocessing key -> prepared records
    key_of: dict[str, str] = field(default_factory=dict)  # task id -> preprocessing key
    cache_files: dict[str, str] = field(default_factory=dict)  # preprocessing key -> cache file
    signatures: dict[str, str] = field(default_factory=dict)  # data_dir -> dataset_signature (provenance)
    # task id -> what its track's reader left out (records without a label, ...): said once, kept in fold notes
    notes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for r in self.records.values() for s in r.signals)


def prepare_data(tasks: list[Task], cache_dir: Path, say: Callable[[str], None],
                 fold_paths: FoldPaths | None = None) -> SharedData:
    shared, raw, notes = SharedData(), {}, {}
    signatures, digests = shared.signatures, {}
    for task, model_name, model in _models_to_prepare(tasks):
        if task.data_dir not in signatures:
            memo = signature_memo(cache_dir, task.data_dir)
            digests[memo] = read_digests(memo)
            signatures[task.data_dir] = dataset_signature(task.data_dir, digests[memo])
        track = task.open_track()
        if (track, task.data_dir) not in notes:  # cold or warm cache alike
            notes[track, task.data_dir] = track.dataset_note(task.data_dir)
            for note in notes[track, task.data_dir]:
                say(f"dataset {task.data_dir}: {note}")
        shared.notes[task.task_id] = notes[track, task.data_dir]
        key = preprocessing_key(_track_key(task, track), task.data_dir, model, signatures[task.data_dir])
        shared.key_of[part_id(task.task_id, model_name)] = key
        if key in shared.records:
            continue
        started = time.monotonic()
        cache_file = cache_dir / f"{key}.npz"
        how = "from the cache"
        if not cache_file.exists():
            source = (track, task.data_dir)
            if source not in raw:
                raw[source] = track.read(task.data_dir)
            how = "read and preprocessed"
            prepared_records(raw[source], pipeline_for(model, raw[source]), cache_file)
        # Read back in both cases: the trials get the same arrays, one buffer per dataset, cold or warm.
        shared.records[key] = read_records(cache_file)
        shared.cache_files[key] = str(cache_file)
        say(f"dataset {task.data_dir} for {task.model_file}{model_name and ' (' + model_name + ' part)'}: {how} in "
            f"{time.monotonic() - started:.1f} s "
            f"({cache_file.name})")
    check_splits(tasks, shared, say, fold_paths)
    for memo, known in digests.items():  # only for data that was read: a failed submit leaves no memo
        write_digests(memo, known)
    return shared


def _track_key(task: Task, track) -> dict:
    """What of the track the prepared records depend on: its name, options and its labels file's state."""
    try:
        stamp = os.stat(track.labels_marker(task.data_dir)).st_mtime_ns
    except OSError:
        stamp = 0
    return {"track": task.track, "options": task.track_options, "labels_mtime_ns": stamp}


def part_id(task_id: str, part: str = "") -> str:
    """The key_of entry of a task ("") or of one part of a stacked model."""
    return f"{task_id}:{part}" if part else task_id


def _models_to_prepare(tasks: list[Task]):
    """(task, part name, model config): each task's own model ("") and its parts' (a stacked model's)."""
    for task in tasks:
        yield task, "", task.model
        for name, model in part_models(task.model).items():
            yield task, name, model


def check_splits(tasks: list[Task], shared: SharedData, say: Callable[[str], None],
                 fold_paths: FoldPaths | None = None) -> None:
    """Settle every split (written beside the dataset when it may be) and check every fold id."""
    splits = {}
    for task in tasks:
        track = task.open_track()
        key = (track, task.data_dir, task.split)
        if key not in splits:
            records = shared.records[shared.key_of[task.task_id]]
            _, splits[key] = split_of(records, track, task.split, persist=True)
            sources = splits[key].properties.get("test sources")
            by_source = f" (test sources by fold: {', '.join(sources)})" if sources else ""
            say(f"dataset {task.data_dir} ({track.title}): {track.describe(records)}; "
                f"{task.split} with {len(splits[key].folds)} folds{by_source}")
            if "leakage" in splits[key].properties:
                say(f"warning: dataset {task.data_dir}: {splits[key].properties['leakage']}")
        n_folds = len(splits[key].folds)
        if task.fold >= n_folds:
            message = (f"split {task.split} of {task.data_dir} has {n_folds} folds (0..{n_folds - 1}), "
                       f"no fold {task.fold}")
            where = (fold_paths or {}).get((task.job, task.fold))
            if where is not None:
                raise ConfigError(*where, message)
            raise ProjectError(f"{task.task_id}: {message}")
