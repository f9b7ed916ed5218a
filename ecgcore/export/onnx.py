"""An export graph (ecgcore.export.graph) as an ONNX file, and the check of onnxruntime against PyTorch.

The exporter is torch's dynamo one, `torch.onnx.export(..., dynamo=True)`
with `dynamic_shapes` (it needs onnxscript): it traces with torch.export,
so the record length is a symbol of the graph and the sizes that follow
from it (frames, windows, chunks) are expressions of it. The TorchScript
exporter (`dynamo=False`) is not used: it records one example's run, so
every size computed in Python (the number of windows or chunks of a record,
the padding of an odd frame count) would be frozen at the example's value.

The dynamo exporter has its own ways to fail quietly. When torch.export
cannot keep a dimension free it retries with its suggested fixes: a
raised minimum is kept (the sidecar says it), a length fixed to the
example's or tied to an expression is refused here. And a branch on the
length becomes a runtime assertion that the ONNX graph drops, so the graph
holds for the example's side of the branch only: `check` runs records of
several lengths through onnxruntime, and the networks avoid such branches
while exporting (ecgcore.models.common.exporting).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from ecgcore.errors import ProjectError
from ecgcore.export.graph import ProbabilityGraph

OUTPUT = "probabilities"
# Largest |onnxruntime - PyTorch| allowed on any class probability of any checked record. Both compute in
# float32 (measured on the shipped model files: 3e-8 to 2e-5); a wrong graph is off by far more.
TOLERANCE = 1e-4
_NOISY_LOGGERS = ("torch.onnx", "torch.export", "torch.fx", "torch._dynamo", "onnxscript")


def require_onnx() -> None:
    """The export extra (onnx, onnxscript, onnxruntime) is installed, or a ProjectError saying how to get it."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ProjectError(f"ONNX export needs the 'export' extra ({exc.name} is missing): "
                           "pip install -e '.[export]'") from None


def export_onnx(graph: ProbabilityGraph, example: np.ndarray, path: Path) -> dict:
    """Write graph (graph.input_name (1, ...) -> probabilities (1, classes)) to path as ONNX.

    example is one real graph input; its graph.length_axis is exported as a symbol. A short example
    is faster: the exporter's decomposition of an LSTM runs over the example's steps. Returns what
    the sidecar records of the exporter, min_length the shortest input the graph takes.
    """
    length = torch.export.Dim("length", min=2)
    with _quiet():
        try:
            program = torch.onnx.export(graph.eval(), (torch.from_numpy(example),), dynamo=True, verbose=False,
                                        dynamic_shapes={"x": {graph.length_axis: length}},
                                        input_names=[graph.input_name], output_names=[OUTPUT])
        except Exception as exc:  # the exporter's errors have no common type; its summary says what failed
            raise ProjectError(f"the torch ONNX exporter could not translate the model: {_summary(exc)}") from exc
    min_length = _shortest_input(program.exported_program, graph.length_axis)
    program.save(path)
    return {"exporter": "torch.onnx.export(dynamo=True)", "torch": torch.__version__,
            "opset": program.model.opset_imports.get(""), "min_length": min_length}


def _shortest_input(program: torch.export.ExportedProgram, axis: int) -> int:
    """The shortest input the graph takes; a ProjectError where its length is not a free symbol.

    The exporter retries with torch.export's suggested fixes: a raised minimum is fine (it is
    returned), a length fixed to the example's or tied to an expression (a multiple of 8) is refused.
    """
    name = program.graph_signature.user_inputs[0]
    node = next(n for n in program.graph.nodes if n.name == name)
    length = node.meta["val"].shape[axis]
    if not isinstance(length, torch.SymInt) or not length.node.expr.is_symbol:
        raise ProjectError(f"the exported graph takes inputs of length {length} only: torch.export could not "
                           "keep the record length free, and a graph for some lengths only is refused")
    return int(program.range_constraints[length.node.expr].lower)


def onnx_probabilities(path: Path, inputs: list[np.ndarray]) -> np.ndarray:
    """onnxruntime's probabilities (records, classes) for graph inputs (ecgcore.export.graph), one record a run."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = []
    for x in inputs:
        try:
            out.append(session.run([OUTPUT], {name: x})[0])
        except Exception as exc:  # onnxruntime's errors have no public type: the graph is wrong for this length
            raise ProjectError(f"onnxruntime cannot run the exported graph on an input of shape {x.shape}: "
                               f"{_summary(exc)}") from exc
    return np.concatenate(out).astype(np.float64)


def check(actual: np.ndarray, expected: np.ndarray, names: list[str], tolerance: float = TOLERANCE) -> float:
    """The largest |actual - expected| over records and classes; a ProjectError naming the worst record above
    tolerance (or where either is not a number)."""
    per_record = np.abs(actual - expected).max(axis=1)
    per_record = np.where(np.isnan(per_record), np.inf, per_record)
    worst = int(per_record.argmax())
    if per_record[worst] > tolerance:
        raise ProjectError(f"onnxruntime and PyTorch disagree on record {names[worst]}: max |difference| of a "
                           f"probability {per_record[worst]:.3g} > tolerance {tolerance:g} (onnxruntime "
                           f"{np.round(actual[worst], 6).tolist()}, PyTorch {np.round(expected[worst], 6).tolist()})")
    return float(per_record.max())


@contextlib.contextmanager
def _quiet():
    """The exporter's warnings and log lines (missing torchvision, symbolic-shape notes) are not the user's."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for logger in loggers:
                logger.setLevel(logging.ERROR)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _summary(exc: Exception) -> str:
    """The line of the exporter's message that says what failed (its messages run to pages of advice)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if "## Exception summary" in lines:
        after = lines[lines.index("## Exception summary") + 1:]
        return after[0] if after else lines[0]
    return lines[0] if lines else type(exc).__name__
