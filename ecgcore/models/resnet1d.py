"""Two 1D ResNets on the raw signal from CinC 2020 entries: ResNet1d and SEResNet18.

"ResNet1d" is the residual network of Ribeiro et al. (Nat. Commun. 2020) as the
antonior92 team used it at CinC 2020 (antonior92/physionet-12ecg-classification,
models/resnet.py; the same class is in antonior92/ecg-age-prediction, resnet.py).
Stem conv (no bias) + BN, no ReLU; then one residual block per entry of
`filters`/`seq_lengths`, the first at the stem's length. A block carries a pair
(x, y): conv-BN-ReLU-dropout, conv with stride `downsample`, add the skip (y
max-pooled by `downsample`, then a 1x1 conv when the channels change), keep the
sum as the next y, then BN-ReLU-dropout. The last features are flattened into
one Linear, so the input length is fixed: seq_lengths[0] samples (their 4096 at
400 Hz). The Keras model of antonior92/automatic-ecg-diagnosis (model.py) differs:
kernel 16, a ReLU after the stem and four blocks (no 64->64 block at 4096).

"SEResNet18" is DSAIL_SNU's entry (seonwoo-min/PhysioNet-Challange-2020,
src/model/model.py, src/data.py, config/*.json): an 18-layer pre-activation
ResNet with channels (16, 16, 32, 64, 128) x width_factor for stem and stages.
Stem: one conv (kernel 11, no BN/ReLU); the first block applies BN-ReLU to the
stem output and routes that activated tensor through its shortcut too. A basic
block is BN-ReLU-conv(stride)-BN-ReLU-dropout-conv (-SE), plus a shortcut that
max-pools by the stride and zero-pads the extra channels. The stride (4) sits in
the first conv of the first block of stages 2-4, with their asymmetric padding
(kernel - stride zeros, the odd one on the right). After the last stage:
BN-ReLU-dropout. Records are cut into chunks of chunk_length with chunk_stride;
as in their collate_into_block, the last chunk of a record longer than one
chunk is its final chunk_length samples, and a record no longer than one chunk
is one zero-padded chunk. Pooling follows their code: each chunk's features
are globally max-pooled, the max is taken over the record's chunks (their
AdaptiveMaxPool1d over the record's concatenated chunks) and the Linear
classifier comes after it; the output is not a max over per-chunk logits.
Their init is kept (Kaiming-normal conv/linear weights, zero biases). Their
SE is a mean over the chunk, two bias-free 1x1 convs, reduction 4.
Their shipped config/model.json used block "ResNet_Basic" (no SE), dropout 0.3;
`se` switches the SE blocks. Their manifold mixup is not reproduced here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ecgcore.config.model import spec
from ecgcore.errors import ProjectError
from ecgcore.models import InputSpec, register
from ecgcore.models.common import exporting, strided_lengths, time_mask


@dataclass(frozen=True)
class ResNet1dParams:
    filters: tuple[int, ...] = spec((64, 128, 196, 256, 320), "channels of the stem and of each residual block",
                                    min=1)
    seq_lengths: tuple[int, ...] = spec(
        (4096, 1024, 256, 64, 16), "samples after the stem and after each block; seq_lengths[0] is the input "
        "window (preprocessing.window) and each length divides the one before", min=1)
    kernel_size: int = spec(17, "kernel of every convolution (odd)", min=1)


@dataclass(frozen=True)
class SEResNet18Params:
    width_factor: int = spec(2, "multiplies the channels (16, 16, 32, 64, 128) of stem and stages 1-4", min=1)
    blocks_per_stage: int = spec(2, "basic blocks per stage (2: 18 layers; their num_blocks is 4x this)", min=1)
    kernel_size: int = spec(11, "kernel of every convolution", min=1)
    stride: int = spec(4, "downsampling by the first block of stages 2-4", min=1)
    se: bool = spec(True, "squeeze-and-excitation at the end of every block's residual branch")
    se_reduction: int = spec(4, "SE bottleneck has channels // se_reduction units", min=1)
    chunk_length: int = spec(2048, "samples per chunk the network sees", min=16)
    chunk_stride: int = spec(1536, "step between chunk starts (at most chunk_length)", min=1)


# ----- ResNet1d (Ribeiro et al.) -----


def _ribeiro_padding(downsample: int, kernel: int) -> int:
    # Their _padding: with an odd kernel it makes a stride-d conv give exactly n / d samples.
    return max(0, (kernel - downsample + 1) // 2)


class ResBlock1d(nn.Module):
    def __init__(self, c_in: int, c_out: int, downsample: int, kernel: int, drop_rate: float):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, padding=_ribeiro_padding(1, kernel), bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.dropout1 = nn.Dropout(drop_rate)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, stride=downsample,
                               padding=_ribeiro_padding(downsample, kernel), bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.dropout2 = nn.Dropout(drop_rate)
        skip = []
        if downsample > 1:
            skip.append(nn.MaxPool1d(downsample, stride=downsample))
        if c_in != c_out:
            skip.append(nn.Conv1d(c_in, c_out, 1, bias=False))
        self.skip_connection = nn.Sequential(*skip)  # empty: identity

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.skip_connection(y)
        x = self.dropout1(torch.relu(self.bn1(self.conv1(x))))
        x = self.conv2(x) + y
        y = x  # the un-normalised sum is the next block's skip input (pre-activation style)
        x = self.dropout2(torch.relu(self.bn2(x)))
        return x, y


class ResNet1d(nn.Module):
    # Its input is exactly one window: a shorter record is zero-padded to it, and the zeros are input
    # (lengths are not used); ecgcore.export pads such records as predict's batches do.
    fixed_length = True

    def __init__(self, p: ResNet1dParams, n_leads: int, n_classes: int, drop_rate: float):
        super().__init__()
        k = p.kernel_size
        self.n_samples = p.seq_lengths[0]
        self.conv1 = nn.Conv1d(n_leads, p.filters[0], k, padding=_ribeiro_padding(1, k), bias=False)
        self.bn1 = nn.BatchNorm1d(p.filters[0])
        blocks, c_in, n_in = [], p.filters[0], p.seq_lengths[0]
        for c_out, n_out in zip(p.filters, p.seq_lengths, strict=True):
            blocks.append(ResBlock1d(c_in, c_out, n_in // n_out, k, drop_rate))
            c_in, n_in = c_out, n_out
        self.res_blocks = nn.ModuleList(blocks)
        self.encoder_channels = p.filters[-1]
        self.out_steps = p.seq_lengths[-1]
        self.head = nn.Linear(p.filters[-1] * p.seq_lengths[-1], n_classes)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[2] != self.n_samples:
            raise ProjectError(f"ResNet1d takes windows of exactly {self.n_samples} samples, got {x.shape[2]}; "
                               f"set preprocessing.window to {self.n_samples}")
        # The window is the whole input (zero-padded like their loader), so every output step is valid.
        x = self.bn1(self.conv1(x))
        y = x
        for block in self.res_blocks:
            x, y = block(x, y)
        return x, torch.full_like(lengths, self.out_steps)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        features, _ = self.encode(x, lengths)
        return self.head(features.flatten(1))


def _check_resnet1d(p: ResNet1dParams, inputs: InputSpec) -> None:
    need = p.seq_lengths[0]
    if inputs.length is None:
        raise ProjectError(f"ResNet1d flattens its last features, so it needs a fixed input length: set "
                           f"preprocessing.window to {need} (model_parameters.seq_lengths[0]); it is null")
    if inputs.length != need:
        raise ProjectError(f"ResNet1d: preprocessing.window is {inputs.length} but model_parameters.seq_lengths[0] "
                           f"is {need}; they must be equal")
    if len(p.filters) != len(p.seq_lengths):
        raise ProjectError(f"ResNet1d: {len(p.filters)} filters but {len(p.seq_lengths)} seq_lengths; "
                           "give one of each per residual block")
    if p.kernel_size % 2 == 0:
        raise ProjectError(f"ResNet1d: kernel_size must be odd (their padding rule), got {p.kernel_size}")
    for n_in, n_out in zip(p.seq_lengths, p.seq_lengths[1:], strict=False):
        if n_in % n_out or n_out > n_in:
            raise ProjectError(f"ResNet1d: seq_lengths must shrink by integer factors, {n_in} -> {n_out} does not")
        d = n_in // n_out
        pad = _ribeiro_padding(d, p.kernel_size)
        if (n_in + 2 * pad - p.kernel_size) // d + 1 != n_out:
            raise ProjectError(f"ResNet1d: downsampling by {d} needs kernel_size >= {d - 1}")


@register("ResNet1d", params=ResNet1dParams, input="signal")
def build_resnet1d(p: ResNet1dParams, inputs: InputSpec, n_classes: int, drop_rate: float) -> nn.Module:
    _check_resnet1d(p, inputs)
    return ResNet1d(p, inputs.n_leads, n_classes, drop_rate)


# ----- SEResNet18 (DSAIL_SNU) -----


class PadConv1d(nn.Conv1d):
    """Bias-free conv with DSAIL_SNU's padding: kernel - stride zeros, the odd one on the right."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(c_in, c_out, kernel, stride=stride, bias=False)
        total = kernel - stride
        self.pad = (total // 2, total - total // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.conv1 = nn.Conv1d(channels, hidden, 1, bias=False)
        self.conv2 = nn.Conv1d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # Chunks: the mean over the whole chunk, as theirs. Whole padded records (encode): valid steps only.
        if mask is None:
            squeezed = x.mean(dim=2, keepdim=True)
        else:
            squeezed = (x * mask).sum(dim=2, keepdim=True) / mask.sum(dim=2, keepdim=True).clamp(min=1)
        return x * torch.sigmoid(self.conv2(torch.relu(self.conv1(squeezed))))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, p: SEResNet18Params, stride: int, first: bool, drop_rate: float):
        super().__init__()
        self.bn1 = nn.BatchNorm1d(c_in)
        self.conv1 = PadConv1d(c_in, c_out, p.kernel_size, stride)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.dropout = nn.Dropout(drop_rate)
        self.conv2 = PadConv1d(c_out, c_out, p.kernel_size)
        self.se = SqueezeExcite(c_out, p.se_reduction) if p.se else None
        self.shortcut = nn.MaxPool1d(stride) if stride > 1 else nn.Identity()
        self.stride, self.first, self.extra_channels = stride, first, c_out - c_in

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None):
        """lengths None: a chunk, nothing masked (theirs). Else padded steps are zeroed after every activation."""
        mask_in = None if lengths is None else time_mask(lengths, x.shape[2], x.dtype)
        act = _masked(torch.relu(self.bn1(x)), mask_in)
        if self.first:
            x = act  # their first block feeds the activated stem output to the shortcut as well
        if lengths is not None and self.stride > 1:
            lengths = strided_lengths(lengths, self.stride)
        out = self.conv1(act)
        mask = None if lengths is None else time_mask(lengths, out.shape[2], out.dtype)
        out = self.conv2(self.dropout(_masked(torch.relu(self.bn2(out)), mask)))
        if self.se is not None:
            out = self.se(out, mask)
        # Shortcut without parameters: max-pool in time, zeros for the channels the branch adds.
        out = out + F.pad(self.shortcut(x), (0, 0, 0, self.extra_channels))
        return _masked(out, mask), lengths


class SETrunk(nn.Module):
    """Stem, 4 stages, final BN-ReLU-dropout: (batch, leads, n) -> (batch, 128*width, n / stride^3)."""

    def __init__(self, p: SEResNet18Params, n_leads: int, drop_rate: float):
        super().__init__()
        widths = [16 * p.width_factor, 16 * p.width_factor, 32 * p.width_factor, 64 * p.width_factor,
                  128 * p.width_factor]
        self.conv1 = PadConv1d(n_leads, widths[0], p.kernel_size)
        blocks, c_in = [], widths[0]
        for stage, c_out in enumerate(widths[1:]):
            for b in range(p.blocks_per_stage):
                stride = p.stride if stage > 0 and b == 0 else 1
                blocks.append(BasicBlock(c_in, c_out, p, stride, stage == 0 and b == 0, drop_rate))
                c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.bn = nn.BatchNorm1d(c_in)
        self.dropout = nn.Dropout(drop_rate)
        self.out_channels = c_in
        self.reduction = p.stride ** 3

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None):
        out = self.conv1(x)
        for block in self.blocks:
            out, lengths = block(out, lengths)
        mask = None if lengths is None else time_mask(lengths, out.shape[2], out.dtype)
        return _masked(self.dropout(torch.relu(self.bn(out))), mask), lengths


class SEResNet18(nn.Module):
    def __init__(self, p: SEResNet18Params, n_leads: int, n_classes: int, drop_rate: float):
        super().__init__()
        self.chunk_length, self.chunk_stride = p.chunk_length, p.chunk_stride
        self.trunk = SETrunk(p, n_leads, drop_rate)
        self.encoder_channels = self.trunk.out_channels
        self.head = nn.Linear(self.trunk.out_channels, n_classes)
        _dsail_init(self)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        chunks, owner = self.chunk(x, lengths)
        features, _ = self.trunk(chunks)
        pooled = features.amax(dim=2)  # global max over each chunk
        # One row more than records: a chunk owned by x.shape[0] is no record's (exported graphs have some).
        per_record = pooled.new_full((x.shape[0] + 1, pooled.shape[1]), -math.inf)
        # Max over a record's chunks; max of maxes = their max-pool over the concatenated chunks.
        per_record = per_record.scatter_reduce(0, owner[:, None].expand_as(pooled), pooled, "amax")
        return self.head(per_record[:-1])

    def chunk(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(chunks (n_chunks, leads, chunk_length), owning record of each chunk)."""
        if exporting():
            return self._whole_record_chunks(x)
        x = x * time_mask(lengths, x.shape[2], x.dtype)  # a short record's chunk must see zeros past its end
        if x.shape[2] < self.chunk_length:
            x = F.pad(x, (0, self.chunk_length - x.shape[2]))
        owners, starts = [], []
        for record, n in enumerate(lengths.tolist()):
            record_starts = chunk_starts(n, self.chunk_length, self.chunk_stride)
            owners += [record] * len(record_starts)
            starts += record_starts
        owner = torch.tensor(owners, device=x.device)
        steps = torch.tensor(starts, device=x.device)[:, None] + torch.arange(self.chunk_length, device=x.device)
        # Index (record, sample) pairs on a time-major view: the index tensors stay (n_chunks, chunk_length).
        return x.transpose(1, 2)[owner[:, None], steps].transpose(1, 2), owner

    def _whole_record_chunks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """chunk for one unpadded record (ecgcore.export), with sizes that follow from its length alone.

        The record, zero-padded by one chunk, is cut every chunk_stride: these chunks hold chunk_starts'
        regular ones, and those starting after the final chunk's start belong to no record (owner 1, dropped by
        forward); the final chunk, ending at the record's end (or the one padded chunk of a short record),
        is added. A chunk twice changes nothing: the chunks' features are max-pooled.
        """
        length, stride = self.chunk_length, self.chunk_stride
        padded = F.pad(x, (0, length))
        regular = padded.unfold(2, length, stride)[0].transpose(0, 1)  # starts 0, stride, ... <= the record's length
        last_start = (torch.full((), x.shape[2], dtype=torch.int64, device=x.device) - length).clamp(min=0)
        last = padded[0][:, last_start + torch.arange(length, device=x.device)]
        starts = torch.cat([torch.arange(regular.shape[0], device=x.device) * stride, last_start[None]])
        return torch.cat([regular, last[None]]), (starts > last_start).to(torch.int64)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The trunk over whole records, padding masked after every activation.

        BatchNorm in training mode still takes its batch statistics over the
        padded steps too; in eval mode a record's features do not depend on the
        padding. The input is padded to a multiple of stride^3 so that every
        strided layer divides the length exactly.
        """
        x = x * time_mask(lengths, x.shape[2], x.dtype)
        x = F.pad(x, (0, -x.shape[2] % self.trunk.reduction))
        return self.trunk(x, lengths)


def chunk_starts(n: int, length: int, stride: int) -> list[int]:
    """Chunk start samples for a record of n samples (their collate_into_block)."""
    if n <= length:
        return [0]  # one zero-padded chunk (theirs gives none to records of length - stride samples or fewer)
    count = math.ceil((n - length) / stride) + 1
    return [i * stride for i in range(count - 1)] + [n - length]


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


def _dsail_init(model: nn.Module) -> None:
    # Their get_params_and_initialize: Kaiming-normal (ReLU) weights, zero biases, BN at ones/zeros.
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@register("SEResNet18", params=SEResNet18Params, input="signal")
def build_seresnet18(p: SEResNet18Params, inputs: InputSpec, n_classes: int, drop_rate: float) -> nn.Module:
    if p.kernel_size < p.stride:
        raise ProjectError(f"SEResNet18: kernel_size ({p.kernel_size}) must be at least stride ({p.stride})")
    if p.chunk_stride > p.chunk_length:
        raise ProjectError(f"SEResNet18: chunk_stride ({p.chunk_stride}) above chunk_length ({p.chunk_length}) "
                           "would skip samples between chunks")
    return SEResNet18(p, inputs.n_leads, n_classes, drop_rate)
