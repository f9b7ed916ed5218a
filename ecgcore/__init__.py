"""ecgcore: ECG data, preprocessing, models, training loop and metrics.

This package knows ECGs and PyTorch and nothing of Ray or of job files: the
orchestrator package builds `Task` objects and calls `train_task` from here.
"""

__version__ = "0.1.0"
