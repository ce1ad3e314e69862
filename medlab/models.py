"""Model factories the labs share. Small by default (they train on a laptop CPU); every size
is a keyword.

>>> net = small_cnn(widths=(8, 16))
>>> net(torch.zeros(2, 1, 64, 64)).shape
torch.Size([2, 1])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int, *, batch_norm: bool = True) -> nn.Sequential:
    """3 × 3 convolution (padding keeps the size), optional batch norm, ReLU, 2 × 2 max-pooling:
    ``(N, in, H, W)`` → ``(N, out, H/2, W/2)``."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
    return nn.Sequential(*layers)


def small_cnn(*, in_channels: int = 1, outputs: int = 1, widths: Sequence[int] = (16, 32, 64, 64),
              dropout: float = 0.0, batch_norm: bool = True) -> nn.Sequential:
    """A plain convolutional classifier: one :func:`conv_block` per width, global average
    pooling, optional dropout, and a linear layer to ``outputs`` logits.

    Input ``(N, in_channels, H, W)`` with ``H`` and ``W`` divisible by ``2 ** len(widths)``;
    output ``(N, outputs)``.
    """
    if not widths:
        raise ValueError("small_cnn needs at least one convolutional block")
    blocks, c = [], in_channels
    for w in widths:
        blocks.append(conv_block(c, w, batch_norm=batch_norm))
        c = w
    head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if dropout > 0:
        head.append(nn.Dropout(dropout))
    head.append(nn.Linear(c, outputs))
    return nn.Sequential(*blocks, *head)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
