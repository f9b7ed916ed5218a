"""Hand-made ECG features (rhythm, morphology, signal quality) for the gradient-boosted models."""
