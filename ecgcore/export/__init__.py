"""Trained networks as ONNX graphs: one record in, class probabilities out, checked against PyTorch.

`graph` builds the torch module that is exported (the steps of `predict` after resampling, one or several
fold networks, their mean) and says which architectures have no graph; `onnx` writes it with torch's dynamo
exporter and compares onnxruntime's outputs with PyTorch's. No orchestrator here: the `export` command
(orchestrator.commands.export) reads the fold folders and writes the files.
"""
