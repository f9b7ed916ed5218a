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
    assert _report(outcomes, set(), 12.0, "log", lines.append, n_tasks=len(tasks)) == 0
    assert "1/4 task(s) finished" in lines[-1] and "2 not started (resume runs them)" in lines[-1]
