"""From records to model inputs: splits, preprocessing, augmentation, the per-model pipeline."""
