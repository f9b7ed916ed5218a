"""The preprocessed dataset of a task, built once and cached on disk.

A task's records after the model file's preprocessing (lead selection,
filters, resampling, standardisation; for a features model, the feature
vector of each record) depend only on the dataset and on
those options, not on the fold: `prepared_records` builds them once and
keeps them in `<cache_dir>/<key>.npz` (plain arrays and JSON, loaded with
allow_pickle=False: a cache file is data, never code). The key hashes the dataset's
signature (ecgcore.io.signature: every record and label file's path, size
and content), the track with its options and the preprocessing options (and,
for a features model, the version of the feature set), so a changed record,
label or option gives a new entry and a stale one is never read. Files are written under a temporary name and renamed,
so an interrupted write leaves no half file. The orchestrator builds these
once per submit and hands them to every trial through Ray's object store.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ecgcore.config.model import ModelConfig
from ecgcore.models import get_architecture
from ecgcore.records import Records

CACHE_VERSION = 2  # bump when the preprocessing code changes what it produces


def preprocessing_key(track: dict, root: str, model: ModelConfig, signature: str) -> str:
    """track: the task's track and its options ({"track": ..., "options": ...}): they choose labels and records."""
    options = {"version": CACHE_VERSION, "track": track, "root": os.path.abspath(root),
               "signature": signature, "preprocessing": asdict(model.preprocessing)}
    if get_architecture(model.model_name).input == "features":
        from ecgcore.features.extract import FEATURES_VERSION  # a feature model's prepared records are its features

        options["features"] = FEATURES_VERSION
    return hashlib.sha256(json.dumps(options, sort_keys=True, default=list).encode()).hexdigest()[:24]


def prepared_records(records: Records, pipeline, cache_file: Path | None = None) -> Records:
    """records with every signal through pipeline.prepare (from cache_file when it holds them)."""
    if cache_file is not None and cache_file.exists():
        return read_records(cache_file)
    from ecgcore.data.pipeline import prepare_records  # data imports this module's users, not the reverse

    signals = tuple(prepare_records(pipeline, records))
    leads = tuple(pipeline.pre.leads) if pipeline.pre.leads else records.leads[0]
    out = replace(records, signals=signals, fs=(pipeline.fs,) * len(records), leads=(leads,) * len(records))
    if cache_file is not None:
        write_records(out, cache_file)
    return out


def write_records(records: Records, path: Path) -> None:
    """One .npz: the signals end to end, their shapes, the targets, and the rest as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = [np.atleast_2d(s).astype(np.float32) for s in records.signals]
    meta = {"root": records.root, "names": list(records.names), "fs": list(records.fs),
            "leads": [list(x) for x in records.leads], "sources": list(records.sources),
            "patients": list(records.patients), "folds": list(records.folds)}
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, data=np.concatenate([s.ravel() for s in flat]) if flat else np.zeros(0, np.float32),
             shapes=np.array([s.shape for s in flat], dtype=np.int64).reshape(-1, 2),
             targets=np.asarray(records.targets), meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    os.replace(tmp, path)


def read_records(path: Path) -> Records:
    with np.load(path, allow_pickle=False) as npz:
        data, shapes, targets = npz["data"], npz["shapes"], npz["targets"]
        meta = json.loads(npz["meta"].tobytes())
    ends = np.cumsum(shapes[:, 0] * shapes[:, 1])
    starts = ends - shapes[:, 0] * shapes[:, 1]
    signals = tuple(data[a:b].reshape(shape) for a, b, shape in zip(starts, ends, shapes, strict=True))
    return Records(meta["root"], tuple(meta["names"]), targets, signals, tuple(meta["fs"]),
                   tuple(tuple(x) for x in meta["leads"]), tuple(meta["sources"]), tuple(meta["patients"]),
                   tuple(meta["folds"]))
