"""Per-channel input normalisation as part of the graph (what one Core ML image scale cannot express)."""
from __future__ import annotations

import torch
from torch import nn


class Normalized(nn.Module):
    """forward(x, *rest) = model((x - mean[c]) / std[c], *rest): exact per-channel normalisation in the graph."""

    def __init__(self, model: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("inv_std", 1.0 / torch.tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) * self.inv_std, *rest)
