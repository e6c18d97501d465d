"""torch::disable_mha_fastpath: attention modules take the composite path coremltools converts."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from modelbuild.patches.registry import TORCH_PATCHES, ModelPatch, PatchContext

if TYPE_CHECKING:
    from torch import nn


@TORCH_PATCHES.register
class DisableMhaFastpath(ModelPatch):
    """Make MultiheadAttention and TransformerEncoder(Layer) skip torch's fused inference kernels.

    Given: encoder_layer(x) = _transformer_encoder_layer_fwd(x, ...)   (eval mode, no grad)
           self_attention(x, x, x) = _native_multi_head_attention(x, x, x, ...)
    Result: the same modules computed by their ordinary forward: linear, matmul, softmax, layer_norm, ...
    The fused ops are what coremltools' torch frontend cannot convert ("PyTorch convert function for
    op '_native_multi_head_attention' not implemented", torchvision vit_b_16). Each such module runs
    its forward with torch.backends.mha's fast path off and restores the flag after every call, so
    eager validation, torch.jit.trace, torch.onnx.export and torch.export all see composite ops.
    Outputs are the same up to float rounding. Applied to every PyTorch model without being listed.
    """

    step: Literal["torch::disable_mha_fastpath"] = "torch::disable_mha_fastpath"

    def apply(self, model: nn.Module, context: PatchContext) -> nn.Module:
        from modelbuild.patches.slow_attention import disable_fast_path  # torch

        disable_fast_path(model)
        return model
