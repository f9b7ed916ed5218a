"""Training one task: the epoch loops, optimisers, losses, boosting, stacking, pretraining."""
