"""torch::disable_mha_fastpath: composite attention in eager runs, jit.trace, ONNX export and Core ML conversion."""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import pytest
import torch
from torch import nn
from torchvision.models import VisionTransformer

from modelbuild import runtime
from modelbuild.coreml import CoreMLBuildError, FeatureSpec, convert
from modelbuild.patches import apply_patches
from modelbuild.torch_model import build_model
from patches.helpers import project_recipe

FUSED_OPS = ("aten::_native_multi_head_attention", "aten::_transformer_encoder_layer_fwd")
DISABLE = {"step": "torch::disable_mha_fastpath"}
VIT_ARGS = {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 2, "hidden_dim": 32, "mlp_dim": 64,
            "num_classes": 10}


def tiny_vit() -> nn.Module:
    torch.manual_seed(0)
    model = VisionTransformer(**VIT_ARGS).eval()
    nn.init.normal_(model.heads.head.weight, std=0.2)  # torchvision zeroes the head: logits would be 0
    return model


def encoder() -> nn.Module:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).eval()


def traced_ops(model: nn.Module, x: torch.Tensor) -> set[str]:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {node.kind() for node in torch.jit.trace(model, x).inlined_graph.nodes()}


def onnx_export(model: nn.Module, x: torch.Tensor) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=17, input_names=["x"], output_names=["y"])
    return onnx.load_from_string(buffer.getvalue())


@pytest.mark.parametrize("make, shape", [(tiny_vit, (1, 3, 32, 32)), (encoder, (2, 5, 16))], ids=["vit", "encoder"])
def test_trace_and_onnx_export_see_composite_ops_with_the_same_numbers(make, shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    model = make()
    assert set(FUSED_OPS) & traced_ops(model, x), "the unpatched model should take the fast path"
    with torch.no_grad():
        fast = model(x)
    patched = apply_patches(model, [DISABLE], None)
    assert not set(FUSED_OPS) & traced_ops(patched, x)
    with torch.no_grad():
        slow = patched(x)
    np.testing.assert_allclose(slow.numpy(), fast.numpy(), atol=1e-5)

    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_export(patched, x).SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["y"], {"x": x.numpy()})[0], slow.numpy(), atol=1e-5)


def test_unpatched_vit_cannot_be_exported_to_onnx():
    with pytest.raises(Exception, match="_native_multi_head_attention"):
        onnx_export(tiny_vit(), torch.rand(1, 3, 32, 32))


def test_the_global_flag_is_restored_after_every_forward_even_a_failing_one():
    model = apply_patches(encoder(), [DISABLE], None)
    assert torch.backends.mha.get_fastpath_enabled()
    with torch.no_grad():
        model(torch.rand(1, 5, 16))
        assert torch.backends.mha.get_fastpath_enabled()
        with pytest.raises(Exception):
            model(torch.rand(1, 5, 7))  # wrong feature size
    assert torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad():
            model(torch.rand(1, 5, 16))
        assert not torch.backends.mha.get_fastpath_enabled()
    finally:
        torch.backends.mha.set_fastpath_enabled(True)


def test_classes_keep_their_names_overrides_and_isinstance_and_patching_twice_changes_nothing():
    class Scaled(nn.MultiheadAttention):
        def forward(self, *args, **kwargs):
            output, weights = super().forward(*args, **kwargs)
            return 2 * output, weights

    model = nn.Sequential(encoder(), Scaled(16, 2, batch_first=True))
    apply_patches(model, [DISABLE, DISABLE], None)
    attention = model[0].layers[0].self_attn
    assert isinstance(attention, nn.MultiheadAttention) and type(attention).__name__ == "MultiheadAttention"
    assert type(attention).__mro__.count(nn.MultiheadAttention) == 1
    assert isinstance(model[1], Scaled) and type(model[1]).__name__ == "Scaled"
    x = torch.rand(1, 3, 16)
    with torch.no_grad():
        expected = nn.MultiheadAttention.forward(model[1], x, x, x)[0] * 2
        np.testing.assert_allclose(model[1](x, x, x)[0].numpy(), expected.numpy(), atol=1e-6)


def test_every_built_vit_converts_to_an_ml_program_that_agrees_with_torch(tmp_path):
    recipe, root = project_recipe(tmp_path, {
        "name": "vit",
        "model": {"factory": "torchvision.models:VisionTransformer", "args": VIT_ARGS,
                  "patches": [{"step": "torch::calibrate"}]},  # the zero head redrawn; the fast path: by itself
        "inputs": {"image": {"shape": [1, 3, 32, 32]}},
        "outputs": {"logits": {}},
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(recipe, root)
    features = {"inputs": [FeatureSpec("image", (1, 3, 32, 32))], "outputs": [FeatureSpec("logits", (1, 10))]}
    mlmodel = convert(frontend="torch", torch_model=model, format="mlprogram", minimum_deployment_target="iOS15",
                      **features)
    x = np.random.default_rng(2).random((1, 3, 32, 32), dtype=np.float32)
    got = runtime.load(mlmodel, backend="reference").predict({"image": x})["logits"]
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.ptp(expected) > 0.5
    np.testing.assert_allclose(got, expected, atol=1e-4 * np.ptp(expected))
    with pytest.raises(CoreMLBuildError, match="convert function for op '_native_multi_head_attention' not impl"):
        convert(frontend="torch", torch_model=tiny_vit(), format="mlprogram", minimum_deployment_target="iOS15",
                **features)


@pytest.mark.parametrize("strict", [False, True], ids=["non-strict", "strict"])
@pytest.mark.parametrize("make, shape", [(tiny_vit, (1, 3, 32, 32)), (encoder, (2, 5, 16))], ids=["vit", "encoder"])
def test_torch_export_traces_the_patched_model_without_fused_ops(make, shape, strict):
    model = apply_patches(make(), [DISABLE], None)
    x = torch.rand(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(model, (x,), strict=strict)
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert not {target for target in targets if "_native_multi_head_attention" in target
                or "_transformer_encoder_layer_fwd" in target}
    assert "aten.linear.default" in targets  # the projections, computed one by one
    with torch.no_grad():
        np.testing.assert_allclose(program.module()(x).numpy(), model(x).numpy(), atol=1e-5)
    assert torch.backends.mha.get_fastpath_enabled()
