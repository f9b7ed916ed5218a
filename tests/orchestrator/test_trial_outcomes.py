"""The outcomes a submit reports from Tune's results, including an interrupt that left trials unstarted."""

from __future__ import annotations

from types import SimpleNamespace

from orchestrator.commands.submit import _report
from orchestrator.run.driver import trial_outcomes


def _result(task_id, fold_done=True, config=True, error=None):
    return SimpleNamespace(config={"spec": {"task_id": task_id}} if config else None, error=error, checkpoint=None,
                           metrics={"fold_done": fold_done, "final_test_score": 0.5, "epoch": 3})


def test_trials_an_interrupt_left_without_config_are_not_outcomes():
    tasks = [SimpleNamespace(task_id=f"CNN/j/fold{k}") for k in range(4)]
    results = [_result("CNN/j/fold1", fold_done=False), _result("CNN/j/fold0"), _result(None, config=False),
               _result(None, config=False)]
    outcomes = trial_outcomes(results, tasks)
    assert [o.task_id for o in outcomes] == ["CNN/j/fold0", "CNN/j/fold1"]
    assert [o.ok for o in outcomes] == [True, False]
    lines = []
    assert _report(outcomes, set(), 12.0, "log", lines.append, n_tasks=len(tasks)) == 130  # as a shell after Ctrl-C
    assert "CNN/j/fold1" in lines[1] and "interrupted after epoch 3 (resume continues it)" in lines[1]
    assert "1/4 task(s) finished, 1 interrupted (resume continues them), 2 not started (resume runs them)" in lines[-1]


def test_a_fold_stopped_by_the_jobs_scheduler_is_neither_a_failure_nor_an_interrupt():
    tasks = [SimpleNamespace(task_id=f"CNN/j/fold{k}") for k in range(2)]
    outcomes = trial_outcomes([_result("CNN/j/fold0"), _result("CNN/j/fold1", fold_done=False)], tasks)
    lines = []
    assert _report(outcomes, set(), 12.0, "log", lines.append, n_tasks=2, scheduled=True) == 0
    assert "stopped early by the scheduler after epoch 3" in lines[1] and "interrupted" not in "".join(lines)
    assert "1/2 task(s) finished, 1 stopped by the scheduler in" in lines[-1]
