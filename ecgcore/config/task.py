"""The unit of work: one model trained and tested on one fold of one split.

A Task is everything `train_task` needs, with paths already absolute. It
has no defaults of its own: every value comes resolved from the job and
model files (whose dataclasses declare the defaults) and the command line. The
orchestrator builds Tasks from job and model files (`expand`) and sends them
to Ray trials as plain dicts; ecgcore never sees a job file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecgcore.config.model import ModelConfig, spec
from ecgcore.tracks import TRACKS, open_track


@dataclass(frozen=True)
class Task:
    task_id: str = spec(None, "<architecture>/<job>/fold<k>", required=True)
    job: str = spec(None, "job name", required=True)
    fold: int = spec(None, "cross-validation fold id", required=True, min=0)
    model_file: str = spec(None, "model file name in models/ (without .json)", required=True)
    model: ModelConfig = spec(None, "the resolved model file", required=True)
    data_dir: str = spec(None, "absolute dataset folder", required=True)
    split: str = spec(None, "split name, split_<folds>_<tv>_<seed>", required=True)
    out_dir: str = spec(None, "absolute fold folder for outputs", required=True)
    max_epochs: int = spec(None, "epochs at most (model max_epochs, capped by --max-epochs)",
                           required=True, min=1)
    log_en: bool = spec(None, "write TensorBoard events", required=True)
    log_test_score: bool = spec(None, "score the test fold at every validation", required=True)
    threads: int = spec(None, "torch intra-op threads", required=True, min=1)
    track: str = spec(None, "the dataset's track (ecgcore.tracks): reader, labels, metric, splits", required=True,
                      choices=tuple(TRACKS))
    track_options: Any = spec(None, "the track's options, resolved (an object; {} for a track without options)",
                              required=True)
    kind: str = spec(None, "classify, or pretrain (self-supervised, labels unused)", required=True,
                     choices=("classify", "pretrain"))
    init_checkpoint: str | None = spec(None, "absolute best_model.pt to start from (fine-tuning)",
                                       required=True)
    time_limit_s: float | None = spec(None, "stop training after this many seconds (then score)",
                                      required=True, min=1.0)
    part_folds: tuple[str, ...] = spec((), "a Stack's parts: the absolute fold folder of each (its fold of this "
                                           "task's fold), in the order of the model's parts; () for any other model",
                                       required=True, nonempty=False)

    def open_track(self):
        """The task's track, its label space read from the task's dataset where the track needs it."""
        return open_track(self.track, self.track_options, root=self.data_dir)
