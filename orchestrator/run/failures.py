"""What a failed trial that Tune retries says, in one line, on the driver.

A trial whose worker went away (its node left the cluster, its process was
killed: Ray's actor errors) "lost its worker"; one whose training raised
"failed". The line names the fold's node (the trial reports its node id with
every row), the epoch of the checkpoint it continues from and the attempt;
Tune's traceback stays in the trial's error file. orchestrator.run.driver's
Progress callback prints it through the progress view.
"""

from __future__ import annotations

import re
from pathlib import Path

import ray


def retry_line(trial) -> str:
    """What happened to a trial Tune retries, in one line: lost worker or error, where, and the epoch it continues
    after. The worker is lost when Ray no longer counts its node alive (the trial reports its node id with each
    row) or the error says the actor or its connection died (Ray may not have noticed the node yet)."""
    last = trial.last_result or {}
    node = last.get("node_id")
    where = f"node {node[:12]} ({last.get('node_ip', '?')})" if node else f"node {last.get('node_ip', '?')}"
    cause = _failure_cause(trial)
    lost = (node is not None and node in _dead_nodes()) or _actor_lost(trial)
    epoch = last.get("epoch")
    after = f"from its checkpoint of epoch {epoch}" if epoch else "from the start"
    return (f"{'lost its worker' if lost else 'failed'} on {where} ({cause}); retrying {after} as attempt "
            f"{trial.run_metadata.num_failures + 1}")


def _actor_lost(trial) -> bool:
    """Whether the trial's worker went away (its process or node: Ray's actor errors), as against an error raised
    by the training itself; read from the exception Tune pickled beside the trial."""
    import cloudpickle
    from ray.exceptions import NodeDiedError, RayActorError

    try:
        with open(trial.pickled_error_file, "rb") as fh:
            error = cloudpickle.load(fh)
    except (OSError, TypeError, ValueError, EOFError, AttributeError, ImportError):
        return False
    return isinstance(error, (RayActorError, NodeDiedError))


def _dead_nodes() -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if not n.get("Alive")}


def _failure_cause(trial) -> str:
    """The error type and its first line from the trial's error file (Tune's record of each failure)."""
    try:
        text = Path(trial.error_file).read_text()
    except (OSError, TypeError):
        return "no error recorded"
    block = text.rsplit("Failure #", 1)[-1]
    named = re.findall(r"\b((?:\w+\.)*\w+(?:Error|Exception))\b:?\s*([^\n]*)", block)
    if not named:
        return block.strip().splitlines()[-1][:160] if block.strip() else "no error recorded"
    kind, message = named[-1] if "Ray" not in named[0][0] else named[0]
    return f"{kind.rsplit('.', 1)[-1]}: {message.strip()[:120]}".rstrip(": ")

    def on_experiment_end(self, trials, **info):
        self.view.tick(force=True)
