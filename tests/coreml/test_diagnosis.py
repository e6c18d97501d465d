"""Every catalogued failure, reproduced on a tiny model: its one-line message, and its fix converting and validating.

Each test converts through `modelbuild.coreml.convert` (the call the build makes), asserts the
message names the failing op, the route, the entry and its fix, then applies the fix and
compares the converted model with PyTorch through modelbuild.runtime.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modelbuild import runtime
from modelbuild.coreml import CoreMLBuildError, FeatureSpec, Range, convert
from modelbuild.coreml.diagnosis import CATALOGUE, Failure, one_line
from modelbuild.coreml.failure_site import Site
from modelbuild.coreml.targets import plan_conversion
from modelbuild.model_outputs import select_outputs
from modelbuild.quiet import coremltools

IMAGE = (1, 3, 8, 8)


class Lambda(nn.Module):
    def __init__(self, function) -> None:
        super().__init__()
        self.function = function

    def forward(self, *inputs: torch.Tensor):
        return self.function(*inputs)


def _export(model: nn.Module, shapes: list[tuple[int, ...]], path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(torch.zeros(s) for s in shapes), str(path), dynamo=False, opset_version=17,
                          input_names=[f"x{i}" for i in range(len(shapes))], output_names=["y"])
    return path


def _convert(model: nn.Module, frontend: str = "torch", fmt: str = "mlprogram", target: str = "iOS15",
             onnx_path: Path | None = None, shapes: list[tuple[int, ...]] | None = None,
             flexible: Range | None = None, log_path: Path | None = None):
    shapes = shapes or [IMAGE]
    with torch.no_grad():
        result = model(*(torch.zeros(s) for s in shapes))
    out_shape = tuple(result.shape) if isinstance(result, torch.Tensor) else (1,)
    inputs = [FeatureSpec(f"x{i}", s, flexible=flexible if i == 0 else None) for i, s in enumerate(shapes)]
    return convert(frontend=frontend, torch_model=model, onnx_path=onnx_path, inputs=inputs,
                   outputs=[FeatureSpec("y", out_shape)], format=fmt, minimum_deployment_target=target,
                   log_path=log_path)


def _message(model: nn.Module, **route) -> str:
    with pytest.raises(CoreMLBuildError) as raised:
        _convert(model, **route)
    message = str(raised.value)
    assert "\n" not in message and "{op." not in message
    return message


def _assert_matches_torch(mlmodel, model: nn.Module, shapes: list[tuple[int, ...]] | None = None,
                          atol: float = 1e-5) -> None:
    rng = np.random.default_rng(0)
    feeds = {f"x{i}": rng.standard_normal(s).astype(np.float32) for i, s in enumerate(shapes or [IMAGE])}
    with torch.no_grad():
        expected = model(*(torch.from_numpy(v) for v in feeds.values())).numpy()
    got = runtime.load(mlmodel, backend="reference").predict(feeds)["y"]
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=0, atol=atol)


def test_every_catalogue_entry_has_a_test():
    source = Path(__file__).read_text()
    untested = [entry.id for entry in CATALOGUE if f'"Known failure {entry.id}: ' not in source]
    assert not untested, f"catalogued failures without a test here: {untested}"


def test_mha_fastpath():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True).eval()
    message = _message(layer, shapes=[(1, 4, 8)])
    assert message.startswith("Converting with frontend 'torch' to mlprogram for iOS15 (float32) failed at torch op "
                              "'_transformer_encoder_layer_fwd'")
    assert "Known failure mha_fastpath: " in message
    assert "Fix: add `model.patches: [{step: torch::disable_mha_fastpath}]` to the recipe" in message
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # what the patch does, as the fix says for a module built by hand
    try:
        mlmodel = _convert(layer, shapes=[(1, 4, 8)])
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)
    _assert_matches_torch(mlmodel, layer, [(1, 4, 8)])


def test_dynamic_upsample():
    """1-D linear interpolation to another tensor's length: not among the sizes modelbuild lowers itself."""
    model = Lambda(lambda x: F.interpolate(x[..., ::2], size=x.shape[-1:], mode="linear", align_corners=False)).eval()
    shape = (1, 3, 16)
    message = _message(model, shapes=[shape], flexible=Range((None, None, (8, 32, 16))))
    assert "failed at torch op 'upsample_linear1d'" in message
    assert "ValueError: Unable to map torch_upsample_bilinear to core upsample." in message
    assert "Known failure dynamic_upsample: " in message and "Fix: set `fixed_shape: true` on this variant" in message
    _assert_matches_torch(_convert(model, shapes=[shape]), model, [shape])


def test_neuralnetwork_sampling_mode(tmp_path):
    """onnx2coreml lowers a half-pixel Resize to resize_bilinear(UNALIGN_CORNERS): coremltools' NeuralNetwork
    backend raises with the mode left as '{op.sampling_mode.val}'; the message names it."""
    model = Lambda(lambda x: F.interpolate(x, size=(12, 12), mode="bilinear", align_corners=False)).eval()
    onnx_path = _export(model, [IMAGE], tmp_path / "resize.onnx")
    message = _message(model, frontend="onnx", onnx_path=onnx_path, fmt="neuralnetwork", target="iOS14")
    assert ("failed at MIL op resize_bilinear 'y': NotImplementedError: the NeuralNetwork backend has no "
            "resize_bilinear with sampling_mode 'UNALIGN_CORNERS' (half-pixel centres") in message
    assert "Known failure neuralnetwork_sampling_mode: " in message
    assert "Fix: convert with `frontend: torch`" in message and "or use `format: mlprogram`" in message
    _assert_matches_torch(_convert(model, fmt="neuralnetwork", target="iOS14"), model)
    _assert_matches_torch(_convert(model, frontend="onnx", onnx_path=onnx_path, fmt="mlprogram"), model)


class Segmenter(nn.Module):
    """Returns {'out': ..., 'aux': ...}, as torchvision's segmentation models do."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.conv(x), "aux": self.conv(x) * 2}


def test_structured_outputs():
    message = _message(Segmenter().eval())
    assert ("failed at torch.jit.trace: TraceFailure: torch.jit.trace refused the dict that Segmenter.forward() "
            "returns.") in message
    assert "Known failure structured_outputs: " in message
    assert "Fix: name the recipe's outputs after the keys forward() returns" in message
    recipe = SimpleNamespace(outputs={"out": SimpleNamespace(path=None)})  # what select_outputs reads of a Recipe
    picked = select_outputs(Segmenter().eval(), recipe)
    _assert_matches_torch(_convert(picked), picked)


@pytest.mark.parametrize("route,failed_at,fix,fixed_route", [
    ({"target": "iOS15"}, "failed at torch op 'pixel_unshuffle'",
     "Fix: set `minimum_deployment_target: iOS16` on this variant.", {"target": "iOS16"}),
    ({"fmt": "neuralnetwork", "target": "iOS14"}, "failed at torch op 'pixel_unshuffle'",
     "Fix: use `format: mlprogram` with `minimum_deployment_target: iOS16`", {"target": "iOS16"}),
])
def test_op_needs_newer_target(route, failed_at, fix, fixed_route):
    model = nn.PixelUnshuffle(2).eval()
    message = _message(model, **route)
    assert failed_at in message and "Known failure op_needs_newer_target: " in message and fix in message
    _assert_matches_torch(_convert(model, **fixed_route), model)


def test_layer_feature_that_needs_a_newer_neuralnetwork_target():
    model = Lambda(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)).eval()
    message = _message(model, fmt="neuralnetwork", target="iOS13")
    assert ("failed at NeuralNetwork feature 'Upsample operation with Align Corners mode': ValueError: the converted "
            "model needs Core ML specification version 5 (iOS14), iOS13 has version 4.") in message
    assert "Known failure op_needs_newer_target: " in message
    assert "Fix: set `minimum_deployment_target: iOS14` on this variant." in message
    _assert_matches_torch(_convert(model, fmt="neuralnetwork", target="iOS14"), model)


def test_torch_op_without_converter(tmp_path):
    boundaries = torch.tensor([-0.5, 0.0, 0.5])
    model = Lambda(lambda x: torch.bucketize(x, boundaries).float()).eval()
    message = _message(model)
    assert "failed at torch op 'bucketize'" in message
    assert "NotImplementedError: PyTorch convert function for op 'bucketize' not implemented." in message
    assert "Known failure torch_op_without_converter: " in message
    assert "or use `frontend: onnx`" in message
    onnx_path = _export(model, [IMAGE], tmp_path / "bucketize.onnx")
    _assert_matches_torch(_convert(model, frontend="onnx", onnx_path=onnx_path, fmt="neuralnetwork", target="iOS13"),
                          model, atol=0)


def test_onnx_op_without_lowering(tmp_path):
    model = Lambda(lambda x: x.cumsum(-1)).eval()
    onnx_path = _export(model, [IMAGE], tmp_path / "cumsum.onnx")
    message = _message(model, frontend="onnx", onnx_path=onnx_path, fmt="neuralnetwork", target="iOS14")
    assert ("failed at ONNX node '/CumSum' (CumSum): UnsupportedOpError: onnx2coreml has no lowering for "
            "CumSum (1 node(s), e.g. '/CumSum').") in message
    assert "Known failure onnx_op_without_lowering: " in message and "Fix: use `frontend: torch`" in message
    _assert_matches_torch(_convert(model, fmt="neuralnetwork", target="iOS14"), model)


def test_onnx_unsupported_dtype(tmp_path):
    model = Lambda(lambda x: ((x * 5).clamp(0, 9).to(torch.uint8) + 1).float()).eval()
    onnx_path = _export(model, [IMAGE], tmp_path / "uint8.onnx")
    message = _message(model, frontend="onnx", onnx_path=onnx_path, fmt="neuralnetwork", target="iOS13")
    assert ("failed at ONNX node '/Add' (Add): ConversionError: its MIL op got y as uint8 and x as int32, "
            "which must agree.") in message
    assert "Known failure onnx_unsupported_dtype: " in message and "Fix: use `frontend: torch`" in message
    _assert_matches_torch(_convert(model, fmt="neuralnetwork", target="iOS13"), model, atol=0)


def test_rank_above_5():
    def space_to_depth(x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return x.reshape(n, c * 4, h // 2, w // 2)

    model = Lambda(space_to_depth).eval()
    message = _message(model, target="iOS16", flexible=Range((None, None, (4, 16, 8), (4, 16, 8))))
    assert "Known failure rank_above_5: " in message
    assert "Fix: reshape to rank 5 or less, as modelbuild.zoo.ffdnet.space_to_depth does, or set `fixed_shape: true`" \
        in message
    _assert_matches_torch(_convert(model, target="iOS16"), model, atol=0)


def test_the_log_file_holds_the_converter_output_and_the_traceback(tmp_path):
    log = tmp_path / "logs" / "variant.log"
    message = _message(nn.PixelUnshuffle(2).eval(), target="iOS15", log_path=log)
    assert message.endswith(f"Converter log: {log}")
    text = log.read_text()
    assert "frontend torch, format mlprogram, minimum_deployment_target iOS15" in text
    assert "ERROR - converting 'pixel_unshuffle' op" in text  # coremltools' own output, kept out of the message
    assert "Traceback (most recent call last):" in text and f"Outcome: {message}" in text


def test_a_successful_conversion_writes_its_log_too(tmp_path):
    log = tmp_path / "ok.log"
    _convert(nn.Conv2d(3, 3, 1).eval(), log_path=log)
    assert log.read_text().rstrip().endswith("Outcome: converted.")


def _plan():
    return plan_conversion(coremltools(), frontend="torch", format="mlprogram", minimum_deployment_target="iOS15",
                           compute_precision="float32")


def test_an_exception_without_a_message_gets_its_type_and_the_last_converter_line():
    failure = Failure(_plan(), AssertionError(), log="Failed to load _MLModelProxy: x\nrunning pass common::foo\n\n")
    assert one_line(failure) == (
        "Converting with frontend 'torch' to mlprogram for iOS15 (float32) failed: AssertionError with no message "
        "(last converter output: 'running pass common::foo'). Not a known failure (modelbuild/coreml/diagnosis.py): "
        "try the other frontend or format, or report it with the converter log.")


def test_an_unknown_failure_is_one_line_naming_the_error():
    line = one_line(Failure(_plan(), ValueError("first line\n  second   line")), log_path="logs/v.log")
    assert re.fullmatch(r"Converting .* failed: ValueError: first line second line\. Not a known failure .*"
                        r"Converter log: logs/v\.log", line)


def test_a_placeholder_left_in_a_message_is_filled_in_from_the_failing_op():
    op = SimpleNamespace(op_type="resize_bilinear", sampling_mode=SimpleNamespace(val="OFFSET_CORNERS"))
    site = Site("MIL op", "resize_bilinear", "up", item=op)
    error = NotImplementedError("Unsupported 'sampling_mode' ('{op.sampling_mode.val}') in some backend")
    line = one_line(Failure(_plan(), error, site=site))
    assert "failed at MIL op resize_bilinear 'up': NotImplementedError: Unsupported 'sampling_mode' " \
           "('OFFSET_CORNERS') in some backend." in line
