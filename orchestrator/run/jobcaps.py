"""The trials' configs handed to Tune in task order, with per-job concurrency caps (the jobs' max_concurrent).

Every submit schedules its trials through this search algorithm, capped or not: Tune's grid_search over the
configs would deep-copy the whole grid for every trial it makes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ray.tune.search import Searcher


class JobCaps(Searcher):
    """The trials' configs in task order, a job's next fold held back while max_concurrent of it run.

    Tune starts every trial a search algorithm has handed out as soon as
    resources allow, so a per-job cap is the searcher's to keep: it suggests
    nothing for now (None) until one of that job's trials ends. (submit
    --max-concurrent caps all jobs together: Tune's own ConcurrencyLimiter
    around this searcher.) Its state is saved with the experiment, as JSON,
    so `resume` hands out only what was never started.
    """

    def __init__(self, configs: list[dict], caps: dict[str, int]):
        super().__init__()
        self.queue, self.caps = list(configs), dict(caps)
        self.running: dict[str, str] = {}  # trial id -> its job's name
        # Failed for good: `resume` restarts them (Tuner.restore with resume_errored) without asking us.
        self.failed: dict[str, str] = {}

    def suggest(self, trial_id: str):
        busy = Counter(self.running.values())
        for i, config in enumerate(self.queue):
            group = config["spec"]["cap_group"]
            if group not in self.caps or busy[group] < self.caps[group]:
                self.running[trial_id] = group
                return self.queue.pop(i)
        return None if self.queue else Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        group = self.running.pop(trial_id, None)  # finished, failed for good, or stopped by the scheduler
        if error and group is not None:
            self.failed[trial_id] = group

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps({"queue": self.queue, "caps": self.caps,
                                                     "running": self.running, "failed": self.failed}))

    def restore(self, checkpoint_path: str) -> None:
        """The state of an interrupted submit: what ran, and what failed, is running again now."""
        state = json.loads(Path(checkpoint_path).read_text())
        self.queue, self.caps = state["queue"], state["caps"]
        self.running, self.failed = {**state["running"], **state["failed"]}, {}
