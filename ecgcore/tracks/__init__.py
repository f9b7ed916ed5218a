"""The registry of tracks: a dataset's name -> the module that knows everything that differs about it.

A track (ecgcore.tracks.base.Track) declares its reader, label space and
output kind, metrics, split policies, how predictions are written and what the
commands show; nothing outside ecgcore/tracks/ branches on which track a job
runs. Adding a dataset is one module beside these and one line in TRACKS.
Importing this registry costs nothing (no reader, no numpy): the CLI and the
config schema name the choices from it, and a track module is imported only
when a track is opened.
"""

from __future__ import annotations

import functools
import importlib
import json

from ecgcore.errors import DataError

# name -> "module:class". The class is built with the job's track options (see each module's Options).
TRACKS = {
    "cinc2017": "ecgcore.tracks.cinc2017:CinC2017",
    "cinc2020": "ecgcore.tracks.cinc12lead:CinC2020",
    "cinc2021": "ecgcore.tracks.cinc12lead:CinC2021",
    "ptbxl": "ecgcore.tracks.ptbxl:PtbXl",
    "wfdb": "ecgcore.tracks.wfdb:WfdbFolder",
}
# The job files' older `challenge` key (and fold logs written before tracks) name a track by its year.
CHALLENGE_TRACKS = {2017: "cinc2017", 2020: "cinc2020", 2021: "cinc2021"}
DEFAULT_TRACK = "cinc2017"
# `data check` without --track asks these, in order, whether a folder is theirs (a labels file is never guessed).
DETECTED = ("cinc2017", "ptbxl", "cinc2021")


def track_class(name: str) -> type:
    if name not in TRACKS:
        raise DataError(f"unknown track {name!r}; known: {', '.join(TRACKS)}")
    module, cls = TRACKS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def open_track(name: str, options: dict | None = None, classes: tuple[str, ...] | None = None,
               root: str | None = None):
    """The track `name` with the job's options (plain JSON values, defaults filled in or not).

    classes: the label space a fold log recorded; given, the track takes it instead of reading the dataset
    (summarize, compare and predict read logs, not datasets). root: the dataset folder, for a track whose
    label space depends on the data (PTB-XL's classes of a task).
    """
    return _open(name, json.dumps(options or {}, sort_keys=True), None if classes is None else tuple(classes),
                 root)


@functools.cache
def _open(name: str, options: str, classes: tuple[str, ...] | None, root: str | None):
    return track_class(name)(json.loads(options), classes, root)


def detect_track(root) -> str | None:
    """The track whose layout the folder root has (see DETECTED), or None."""
    return next((name for name in DETECTED if track_class(name).detects(root)), None)


def logged_track_name(recorded) -> str:
    """The track a fold log names; recorded(key) reads the log's files (None where absent). A log from before
    tracks recorded the challenge year, or nothing at all for CinC 2017."""
    return recorded("track") or track_of_challenge(int(recorded("challenge") or 2017))


def logged_track(recorded):
    """The track as a fold log recorded it: its options and, once the fold finished, its classes."""
    classes = recorded("classes")
    return open_track(logged_track_name(recorded), recorded("track_options"),
                      None if classes is None else tuple(classes), recorded("data_dir"))


def track_of_challenge(year: int) -> str:
    if year not in CHALLENGE_TRACKS:
        raise DataError(f"no track for challenge {year}; known: {', '.join(map(str, CHALLENGE_TRACKS))}")
    return CHALLENGE_TRACKS[year]
