"""Every compressed weight form coremltools.optimize.coreml writes runs in the runtime and gives what
coremltools' own decompression (`decompress_weights`) of the same model gives."""
from __future__ import annotations

import numpy as np
import pytest

from modelbuild.runtime.mil import Program
from modelbuild.runtime.mil.testing import ct, mb

PRUNE = {"method": "prune", "target_sparsity": 0.5}
FORMS = {  # name: (deployment target, the optimizations in order; later ones compress jointly)
    "int8 per-tensor": ("iOS16", [{"method": "quantize", "granularity": "per_tensor"}]),
    "uint8 per-channel linear": ("iOS16", [{"method": "quantize", "dtype": "uint8", "mode": "linear"}]),
    "int4 per-block": ("iOS18", [{"method": "quantize", "dtype": "int4", "granularity": "per_block",
                                  "block_size": 8}]),
    "6-bit palette": ("iOS16", [{"method": "palettize", "nbits": 6, "mode": "uniform"}]),
    "3-bit palette": ("iOS18", [{"method": "palettize", "nbits": 3, "mode": "uniform"}]),
    "4-bit grouped-channel palette": ("iOS18", [{"method": "palettize", "nbits": 4, "mode": "uniform",
                                                  "granularity": "per_grouped_channel", "group_size": 8}]),
    "palette with per-channel scales": ("iOS18", [{"method": "palettize", "nbits": 4, "mode": "uniform",
                                                    "enable_per_channel_scale": True}]),
    "50% sparse": ("iOS16", [PRUNE]),
    "2:4 sparse": ("iOS16", [{"method": "prune", "n_m_ratio": (2, 4)}]),
    "sparse + palette": ("iOS18", [PRUNE, {"method": "palettize", "nbits": 4, "mode": "uniform"}]),
    "sparse + int8": ("iOS18", [PRUNE, {"method": "quantize"}]),
    "palette + int8 table": ("iOS18", [{"method": "palettize", "nbits": 4, "mode": "uniform"},
                                       {"method": "quantize", "granularity": "per_tensor"}]),
}


def _compress(model, optimizations: list[dict]):
    import coremltools.optimize.coreml as cto

    for position, options in enumerate(optimizations):
        options = dict(options)
        method = options.pop("method")
        config_class, function = {"quantize": (cto.OpLinearQuantizerConfig, cto.linear_quantize_weights),
                                  "palettize": (cto.OpPalettizerConfig, cto.palettize_weights),
                                  "prune": (cto.OpMagnitudePrunerConfig, cto.prune_weights)}[method]
        config = cto.OptimizationConfig(global_config=config_class(**options, weight_threshold=0))
        joint = {"joint_compression": True} if position and method != "prune" else {}
        model = function(model, config, **joint)
    return model


def _run(model, x: np.ndarray) -> np.ndarray:
    (value,) = Program.from_spec(model.get_spec(), model.weights_dir).run({"x": x}).values()
    return value


@pytest.mark.parametrize("form", FORMS)
def test_compressed_form_matches_coremltools_decompression(form, rng):
    import coremltools.optimize.coreml as cto

    target, optimizations = FORMS[form]
    conv = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    dense = rng.standard_normal((10, 32)).astype(np.float32)
    x = rng.standard_normal((1, 16, 8, 8)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=getattr(ct.target, target))
    def program(x):
        pooled = mb.reduce_mean(x=mb.conv(x=x, weight=conv, pad_type="same"), axes=[2, 3])
        return mb.linear(x=pooled, weight=dense)

    model = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=getattr(ct.target, target),
                       compute_precision=ct.precision.FLOAT32)
    compressed = _compress(model, optimizations)
    forms = sorted({op.type for op in Program.from_spec(compressed.get_spec(), compressed.weights_dir)
                    .functions["main"].block.operations if op.type.startswith("constexpr_")})
    assert forms, "coremltools left no compressed weight"
    got, expected = _run(compressed, x), _run(cto.decompress_weights(compressed), x)
    print(f"{form}: {', '.join(forms)}; max |runtime - decompressed| {np.abs(got - expected).max():.2g}")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    assert not np.allclose(got, _run(model, x), rtol=1e-6, atol=0), "compression changed nothing"
