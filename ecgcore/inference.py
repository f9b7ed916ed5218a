"""Class probabilities of a model on prepared records: what scoring, prediction and stacked models share.

`predict_proba` runs any model of the registry (a network, a booster in its
module, a stack of them) over evaluation inputs batched by similar length and
averages the windows of each record. It lives outside ecgcore.training so that
a model whose forward runs other models (ecgcore.models.hybrid,
ecgcore.models.stack) can call it without importing training, and so that
`TrainedFold` (ecgcore.trained) predicts without the loops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ecgcore.data import batches as batching

if TYPE_CHECKING:  # the pipeline imports the model registry, which imports the models that import this module
    from ecgcore.data.inputs import LazyInputs
    from ecgcore.data.pipeline import Pipeline


@torch.no_grad()
def predict_proba(model: nn.Module, pipeline: Pipeline, items: LazyInputs, owners: np.ndarray,
                  n_records: int, device, multilabel: bool = False, batch_size: int | None = None) -> np.ndarray:
    """Class probabilities per record: inputs batched by similar length, windows averaged per record.

    Softmax over the classes for single-label models, an independent sigmoid
    per class for multi-label ones. batch_size: by default the device's
    (batches.eval_batch_size). The inputs are built a batch ahead on a thread;
    the probabilities stay on the device until all are computed and come to
    the host in one copy, so the host never waits for the device mid-way.
    """
    model.eval()
    device = torch.device(device)
    size = batch_size or batching.eval_batch_size(device)
    order = np.argsort(items.lengths, kind="stable")
    chunks = [order[start:start + size] for start in range(0, len(order), size)]
    outputs = []
    with batching.prefetch(batching.host_batches(pipeline, items, chunks, device.type == "cuda")) as ready:
        for _, x, lengths in ready:
            logits = model(*batching.to_device(x, lengths, device)).float()
            outputs.append(torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1))
    in_order = torch.cat(outputs).cpu().numpy()
    probs = np.zeros((len(items), in_order.shape[1]), dtype=np.float64)
    probs[order] = in_order
    out = np.zeros((n_records, probs.shape[1]), dtype=np.float64)
    np.add.at(out, owners, probs)
    return out / np.bincount(owners, minlength=n_records)[:, None]
