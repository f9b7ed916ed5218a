"""ECG-DualNet (Rohr, Reich et al., Physiological Measurement 2022): signal encoder + conditioned spectrogram CNN.

Source: github.com/ChristophReich1996/ECG_Classification: ecg_classification/
model.py (ECGCNN, Conv2dResidualBlock, ConditionalBatchNormalization),
dataset.py (PhysioNetDataset), train.py, README.md (parameter table). Only an
earlier model.py and config.py could be read; the final ECGCNN (LSTM encoder,
fusion) follows their ECGAttNet of the same release, and the sizes were fixed
by fitting the README counts, which all three match exactly (with PAU, 10
coefficients each): LSTM hidden size = latent_features, 128/256/256 for
S/M/L, 2/2/3 LSTM layers, block channels in models/ECGDualNet_*.json.

Their data: a 300 Hz record standardised, cut or zero-padded to 18000 samples,
unfolded into windows of 256 samples every 224 (80 windows), and its log
spectrogram (n_fft 64, hop 32, 563 frames x 33 bins). The signal encoder (an
LSTM over the windows; a Transformer encoder in their ECG-DualNet++) yields a
latent vector; the spectrogram goes through residual blocks of 3x3 convs whose
BatchNorms are conditional: scale and shift are linear (no bias) in that
latent. After an average over time and frequency, a Linear to
latent_features with an activation, plus the latent vector, then the head
(a Linear to the classes).

Differences, and why:
- Activations are PReLU (their non-PAU option) instead of Padé activation
  units: PAU needs their CUDA extension. 9 fewer parameters per activation
  (11 activations: 99).
- Variable lengths instead of a fixed 18000: the spectrogram is computed here
  with torch.stft from the signal (reflect-padded at each record's own end);
  a record has the windows that start inside it and the frames of its own
  length; the LSTM stops at its last window, the Transformer ignores padded
  windows, BatchNorm statistics and the time average use valid frames only,
  and the 2x2 pools keep a record's odd last frame (theirs floored), so a
  record shorter than one window still works. A record gets the same output
  alone as in a padded batch (eval mode). They fed the zero padding through
  every layer instead.
- The LSTM summary is the output at the last valid window (their stored final
  model.py could not be retrieved to check last step vs. mean); the
  Transformer summary is the mean over windows, as in their ECG-DualNet++.
- Transformer positions are sinusoidal (no parameters; any length), and the
  windows are projected to latent_features when their size differs.
- Several leads: windows are flattened across leads, the spectrogram has one
  input channel per lead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ecgcore.config.model import spec
from ecgcore.errors import ProjectError
from ecgcore.models import InputSpec, register
from ecgcore.models.common import masked_mean, time_mask
from ecgcore.models.dualnet_blocks import (
    LSTMSignalEncoder,
    ResidualCBNBlock,
    TransformerSignalEncoder,
    log_spectrogram,
    signal_windows,
)


@dataclass(frozen=True)
class DualNetParams:
    signal_encoder: str = spec("lstm", "lstm (ECG-DualNet) or transformer (their ECG-DualNet++ signal encoder)",
                               choices=("lstm", "transformer"))
    window: int = spec(256, "samples per signal window (theirs at 300 Hz)", min=1)
    window_step: int = spec(224, "samples between the starts of signal windows", min=1)
    latent_features: int = spec(256, "LSTM hidden size / Transformer width = size of the conditioning latent",
                                min=2)
    lstm_layers: int = spec(2, "stacked LSTM layers", min=1)
    transformer_heads: int = spec(8, "attention heads (divide latent_features)", min=1)
    transformer_layers: int = spec(2, "Transformer encoder layers", min=1)
    transformer_ff_features: int = spec(512, "feed-forward width of each Transformer layer", min=1)
    spectrogram_channels: tuple[int, ...] = spec((32, 64, 128, 256, 256),
                                                 "output channels of each residual block (each pools 2x2)", min=1)
    n_fft: int = spec(64, "spectrogram window in samples; hop is n_fft // 2", min=4)


class ECGDualNet(nn.Module):
    def __init__(self, p: DualNetParams, inputs: InputSpec, n_classes: int, drop_rate: float):
        super().__init__()
        self.window, self.window_step, self.n_fft = p.window, p.window_step, p.n_fft
        in_features = inputs.n_leads * p.window
        if p.signal_encoder == "lstm":
            self.signal_encoder = LSTMSignalEncoder(in_features, p.latent_features, p.lstm_layers, drop_rate)
        else:
            self.signal_encoder = TransformerSignalEncoder(in_features, p.latent_features, p.transformer_heads,
                                                           p.transformer_layers, p.transformer_ff_features,
                                                           drop_rate)
        blocks, c_in = [], inputs.n_leads
        for c_out in p.spectrogram_channels:
            blocks.append(ResidualCBNBlock(c_in, c_out, p.latent_features, drop_rate))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.encoder_channels = c_in
        self.fusion = nn.Sequential(nn.Linear(c_in, p.latent_features), nn.PReLU())
        self.head = nn.Linear(p.latent_features, n_classes)

    def _trunk(self, x: torch.Tensor, lengths: torch.Tensor):
        """Spectrogram features (batch, C, frames, freqs), their valid frames and the signal latent."""
        # The last window of a record reaches past its end: that part must be zeros, as in their padding.
        x = x * time_mask(lengths, x.shape[2], x.dtype)
        windows, counts = signal_windows(x, lengths, self.window, self.window_step)
        latent = self.signal_encoder(windows, counts)
        feats, frames = log_spectrogram(x, lengths, self.n_fft)
        for block in self.blocks:
            feats, frames = block(feats, frames, latent)
        return feats, frames, latent

    def encode(self, x: torch.Tensor, lengths: torch.Tensor):
        """Conditioned spectrogram features averaged over frequency: (batch, encoder_channels, frames), lengths."""
        feats, frames, _ = self._trunk(x, lengths)
        return feats.mean(dim=3), frames

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        feats, frames, latent = self._trunk(x, lengths)
        # Their adaptive average pool over (time, freq), here over valid frames only.
        pooled = masked_mean(feats.mean(dim=3), frames)
        return self.head(self.fusion(pooled) + latent)


@register("ECGDualNet", params=DualNetParams, input="signal")
def build_dualnet(p: DualNetParams, inputs: InputSpec, n_classes: int, drop_rate: float) -> nn.Module:
    if p.signal_encoder == "transformer" and p.latent_features % p.transformer_heads:
        raise ProjectError(f"ECGDualNet: transformer_heads ({p.transformer_heads}) must divide "
                           f"latent_features ({p.latent_features})")
    if p.window_step > p.window:
        raise ProjectError(f"ECGDualNet: window_step ({p.window_step}) above window ({p.window}) would skip "
                           "samples between windows")
    return ECGDualNet(p, inputs, n_classes, drop_rate)
