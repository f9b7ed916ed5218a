"""What a running submit shows in the terminal: a live table, event lines, or nothing but the end.

The Tune callback in orchestrator.run.driver forwards trial events here; this
module knows no Ray. Modes:
  live   (stdout is a terminal) one row per task, redrawn at most once a
         second: job, fold, state, epoch, best validation score, elapsed, and
         an ETA from the seconds per epoch so far (an upper bound: early
         stopping may end a fold sooner). More than MANY tasks (a search of
         hundreds of variants) keep to one screen: the rows of the running
         tasks (at most LISTED) and of the failed and retried ones (at most
         LISTED), "... and N more", and the counts per state;
  lines  (stdout is a file or a pipe, e.g. CI logs) one line per event;
  quiet  (--quiet) nothing until the closing summary, except errors and retries.
Nothing holds a reference to sys.stdout: Tune pickles its callbacks.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

MANY = 40  # tasks: more than this many, the live table shows the running and failed tasks only
LISTED = 20  # rows of running (and of failed or retried) tasks in that view
HEADER = f"{'task':<44} {'state':<8} {'epoch':>9} {'best':>6} {'elapsed':>8} {'ETA':>8}"


@dataclass
class TaskRow:
    state: str = "pending"
    epoch: int = 0
    max_epochs: int = 0
    best: float | None = None
    started: float | None = None
    seconds_per_epoch: float | None = None
    note: str = ""


@dataclass
class ProgressView:
    mode: str  # live, lines or quiet
    rows: dict[str, TaskRow] = field(default_factory=dict)
    last_draw: float = 0.0
    drawn_lines: int = 0

    @classmethod
    def for_terminal(cls, quiet: bool, tasks) -> ProgressView:
        mode = "quiet" if quiet else ("live" if sys.stdout.isatty() else "lines")
        return cls(mode, {t.task_id: TaskRow(max_epochs=t.max_epochs) for t in tasks})

    def start(self, task_id: str, resources) -> None:
        row = self.rows.setdefault(task_id, TaskRow())
        row.state, row.started = "running", time.time()
        self._line(f"[start] {task_id} on {resources}")

    def result(self, task_id: str, result: dict) -> None:
        row = self.rows.setdefault(task_id, TaskRow())
        row.epoch = int(result.get("epoch", row.epoch))
        value = result.get("valid_score", result.get("valid_loss"))
        if result.get("best_epoch") == result.get("epoch") and value is not None:
            row.best = float(value)
        if row.epoch and result.get("elapsed_s"):
            row.seconds_per_epoch = float(result["elapsed_s"]) / row.epoch
        if "valid_score" in result:
            test = f" test {_score(result['test_score'])}" if "test_score" in result else ""
            self._line(f"[valid] {task_id} epoch {row.epoch}: loss {result['train_loss']:.3f} "
                       f"valid {_score(result['valid_score'])}{test} (best epoch {result['best_epoch']})")
        elif "valid_loss" in result:
            self._line(f"[valid] {task_id} epoch {row.epoch}: loss {result['train_loss']:.4f} "
                       f"valid loss {result['valid_loss']:.4f} (best epoch {result['best_epoch']})")

    def complete(self, task_id: str, last: dict) -> None:
        row = self.rows.setdefault(task_id, TaskRow())
        row.state = "done" if last.get("fold_done") else "stopped"
        if last.get("final_test_score") is not None:
            row.note = f"test {_score(last['final_test_score'])}"
        self._line(f"[{'done ' if row.state == 'done' else 'stop '}] {task_id} {row.note}".rstrip())

    def error(self, task_id: str, where: str) -> None:
        row = self.rows.setdefault(task_id, TaskRow())
        row.state, row.note = "error", f"see {where}"
        if self.mode == "live":
            self.tick(force=True)
        else:
            print(f"[error] {task_id}: see {where}")  # even when quiet

    def retry(self, task_id: str, what: str) -> None:
        """Tune retries the task (orchestrator.run.driver.retry_line says why, where and from which epoch)."""
        row = self.rows.setdefault(task_id, TaskRow())
        row.state, row.note = "retry", what
        if self.mode == "live":
            self.tick(force=True)
        else:
            print(f"[retry] {task_id}: {what}")  # even when quiet

    def tick(self, force: bool = False) -> None:
        """Redraw the live table (at most once a second)."""
        if self.mode != "live" or (not force and time.time() - self.last_draw < 1.0):
            return
        text = self.table()
        up = f"\x1b[{self.drawn_lines}F\x1b[J" if self.drawn_lines else ""
        sys.stdout.write(up + text + "\n")
        sys.stdout.flush()
        self.last_draw, self.drawn_lines = time.time(), text.count("\n") + 1

    def table(self) -> str:
        """Every task's row; more than MANY tasks: the running, then the failed and retried ones (capped)."""
        now = time.time()
        if len(self.rows) <= MANY:
            lines = [HEADER, *[_row(task_id, row, now) for task_id, row in self.rows.items()]]
        else:
            lines = [HEADER]
            for states in (("running",), ("error", "retry")):
                chosen = [(task_id, row) for task_id, row in self.rows.items() if row.state in states]
                lines += [_row(task_id, row, now) for task_id, row in chosen[:LISTED]]
                if len(chosen) > LISTED:
                    lines.append(f"... and {len(chosen) - LISTED} more {' or '.join(states)}")
        counts = {}
        for row in self.rows.values():
            counts[row.state] = counts.get(row.state, 0) + 1
        lines.append(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        return "\n".join(lines)

    def _line(self, text: str) -> None:
        if self.mode == "lines":
            print(text)
        elif self.mode == "live":
            self.tick()


def _row(task_id: str, row: TaskRow, now: float) -> str:
    elapsed = now - row.started if row.started else None
    eta = None
    if row.state == "running" and row.seconds_per_epoch:
        eta = row.seconds_per_epoch * max(0, row.max_epochs - row.epoch)
    best = f"{row.best:.3f}" if row.best is not None else ""
    return (f"{task_id:<44} {row.state:<8} {f'{row.epoch}/{row.max_epochs}':>9} {best:>6} "
            f"{_duration(elapsed):>8} {_duration(eta):>8} {row.note}").rstrip()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def _score(value) -> str:
    """A validation or test score; n/a where it is undefined (a multi-label part without a class of two values)."""
    return "n/a" if value is None or value != value else f"{value:.3f}"
