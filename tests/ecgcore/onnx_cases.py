"""Shared by the ONNX export tests: a tiny network of a shipped model file, exported and compared with predict.

The networks are untrained (seeded) but their BatchNorm statistics come from one training-mode pass over
the records, so every layer does something; the records are real (the shared CinC samples), a few spread
over the folder and the first one shortened twice, so the graph runs at several lengths.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ecgcore.config.modelfile import parse_model
from ecgcore.config.schema import read_json
from ecgcore.data.pipeline import pipeline_for, prepare_records
from ecgcore.export.graph import ProbabilityGraph, graph_inputs
from ecgcore.export.onnx import TOLERANCE, check, export_onnx, onnx_probabilities
from ecgcore.inference import predict_proba
from ecgcore.models import create_model
from ecgcore.tracks import CHALLENGE_TRACKS, open_track
from orchestrator.commands.export import check_records
from tests.conftest import ROOT


def tiny_config(model_file: str, params: dict, preprocessing: dict | None = None):
    """A shipped model file (models/<model_file>.json) with smaller model_parameters and preprocessing changes."""
    model = read_json(ROOT / "models" / f"{model_file}.json")
    model["model_parameters"] = {**model["model_parameters"], **params}
    model["preprocessing"] = {**model.get("preprocessing", {}), **(preprocessing or {})}
    return parse_model(model, f"{model_file}.json")


@dataclasses.dataclass
class Compared:
    difference: float  # largest |onnxruntime - predict| of a probability
    lengths: list[int]  # the graph inputs' lengths in samples
    expected: np.ndarray  # predict's probabilities (records, classes)
    noise_difference: float  # largest |onnxruntime - PyTorch graph| on noise of ODD_LENGTHS


# Lengths (samples; frames: an eighth) of many residues, below and above the windows and chunks of the tests:
# a branch of a network on its length that the export froze would show at some of them.
ODD_LENGTHS = (203, 256, 517, 770, 1023, 1029, 1794, 2565)


def export_and_compare(cfg, data_dir, challenge: int, tmp_path, n_nets: int = 1) -> Compared:
    """Export n_nets networks of cfg (their mean) and compare onnxruntime with predict_proba on real records."""
    track = open_track(CHALLENGE_TRACKS[challenge])
    records = check_records(data_dir, track)
    pipeline = pipeline_for(cfg, records)
    torch.manual_seed(0)
    nets = [_with_statistics(create_model(cfg, pipeline.inputs, len(track.class_names)), pipeline, records)
            for _ in range(n_nets)]
    items = pipeline.eval_items(prepare_records(pipeline, records))
    expected = np.mean([predict_proba(net, pipeline, items, items.owners, len(records), "cpu",
                                      multilabel=track.multilabel) for net in nets], axis=0)
    inputs = graph_inputs(cfg, records, None)
    path = tmp_path / "model.onnx"
    graph = ProbabilityGraph(pipeline, nets, track.multilabel)
    axis = graph.length_axis
    export_onnx(graph, min(inputs, key=lambda x: x.shape[axis]), path)
    difference = check(onnx_probabilities(path, inputs), expected, list(records.names), TOLERANCE)
    noise = [_noise(inputs[0].shape, axis, n if axis == 2 else n // 8) for n in ODD_LENGTHS]
    with torch.no_grad():
        eager = np.concatenate([graph(torch.from_numpy(x)).numpy() for x in noise])
    noise_difference = float(np.abs(onnx_probabilities(path, noise) - eager).max())
    return Compared(difference, sorted({x.shape[axis] for x in inputs}), expected, noise_difference)


def _noise(shape: tuple, axis: int, length: int) -> np.ndarray:
    shape = (*shape[:axis], length, *shape[axis + 1:])
    return np.random.default_rng(length).normal(size=shape).astype(np.float32)


def _with_statistics(net, pipeline, records):
    """net after one training-mode pass over the records (BatchNorm running statistics), in eval mode."""
    items = pipeline.eval_items(prepare_records(pipeline, records))
    x, lengths = pipeline.to_tensors(items.batch(range(len(items))), "cpu")
    net.train()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = 1.0  # the running statistics become this batch's
        net(x, lengths)
    return net.eval()
