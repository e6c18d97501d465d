"""FFDNet (Zhang, Zuo, Zhang 2018; IPOL implementation by Tassano, Delon, Veit 2019).

Layer for layer the network of the IPOL code, so its official weights load
(after renaming `module.intermediate_dncnn.itermediate_dncnn.` to `body.`), but
written to convert everywhere:

- pixel_unshuffle / pixel_shuffle are rank-5 reshapes and a transpose, not the
  rank-6 reshape the TorchScript ONNX exporter emits and not the `pixel_unshuffle`
  op the Core ML torch frontend refuses below iOS16;
- the model returns the denoised image, clamp(x - predicted noise, 0, 1), as the
  reference test script does.
"""
from __future__ import annotations

import torch
from torch import nn

_DEFAULTS = {1: (64, 15), 3: (96, 12)}  # channels -> (features, layers) of the IPOL nets


def space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """`F.pixel_unshuffle(x, 2)` with reshapes of rank <= 5."""
    n, c, h, w = x.shape
    x = x.reshape(n * c, h // 2, 2, w // 2, 2)
    x = x.permute(0, 2, 4, 1, 3)
    return x.reshape(n, c * 4, h // 2, w // 2)


def depth_to_space(x: torch.Tensor) -> torch.Tensor:
    """`F.pixel_shuffle(x, 2)` with reshapes of rank <= 5."""
    n, c4, h, w = x.shape
    x = x.reshape(n * (c4 // 4), 2, 2, h, w)
    x = x.permute(0, 3, 1, 4, 2)
    return x.reshape(n, c4 // 4, h * 2, w * 2)


def _repeat_last_to_even(x: torch.Tensor) -> torch.Tensor:
    """Repeat the last row and column, then keep an even number of each (no branch: traces for any size)."""
    h, w = x.shape[2], x.shape[3]
    x = torch.cat([x, x[:, :, -1:, :]], dim=2)[:, :, : (h + 1) // 2 * 2, :]
    return torch.cat([x, x[:, :, :, -1:]], dim=3)[:, :, :, : (w + 1) // 2 * 2]


def _body(channels: int, features: int, layers: int) -> nn.Sequential:
    """DnCNN-style body with the IPOL module indices (conv at 0, 2, 5, 8, ...)."""
    mods: list[nn.Module] = [
        nn.Conv2d(5 * channels, features, 3, padding=1, bias=False),
        nn.ReLU(inplace=False),
    ]
    for _ in range(layers - 2):
        mods += [
            nn.Conv2d(features, features, 3, padding=1, bias=False),
            nn.BatchNorm2d(features),
            nn.ReLU(inplace=False),
        ]
    mods.append(nn.Conv2d(features, 4 * channels, 3, padding=1, bias=False))
    return nn.Sequential(*mods)


class FFDNet(nn.Module):
    """FFDNet denoiser: forward(x in [0,1] of shape N,C,H,W with H, W even; sigma of shape [N])."""

    def __init__(self, channels: int = 3, features: int | None = None, layers: int | None = None,
                 pad_odd: bool = False):
        """`pad_odd`: accept odd heights/widths like the reference code (repeat the last row/column, then crop)."""
        super().__init__()
        self.pad_odd = pad_odd
        if channels not in _DEFAULTS:
            raise ValueError(f"FFDNet channels must be 1 (grayscale) or 3 (colour), not {channels!r}")
        default_features, default_layers = _DEFAULTS[channels]
        self.channels = channels
        self.body = _body(channels, features or default_features, layers or default_layers)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if not self.pad_odd:
            return self._denoise(x, sigma)
        h, w = x.shape[2], x.shape[3]
        return self._denoise(_repeat_last_to_even(x), sigma)[:, :, :h, :w]

    def _denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        # sigma broadcast over an [N, C, H/2, W/2] map, by addition rather than expand: no dynamic tile,
        # so flexible sizes convert for NeuralNetwork iOS13 too
        noise_map = torch.zeros_like(x[:, :, ::2, ::2]) + sigma.reshape(n, 1, 1, 1)
        features = torch.cat([noise_map, space_to_depth(x)], dim=1)
        noise = depth_to_space(self.body(features))
        return torch.clamp(x - noise, 0.0, 1.0)
