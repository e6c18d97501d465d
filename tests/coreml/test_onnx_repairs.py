"""ONNX repairs applied automatically for frontend onnx: converted models match PyTorch, the log says what was done."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modelbuild import runtime
from modelbuild.coreml import FeatureSpec, convert
from modelbuild.coreml.onnx_repairs import repair_for_onnx2coreml, unsupported_ops


class PaddedWindowMask(nn.Module):
    """Pad to a multiple of 4 and add a mask written with negative slices, as torchvision's swin_t does:
    the TorchScript exporter leaves Range nodes computing the slice indices from shapes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        x = F.pad(x, (0, (4 - w % 4) % 4, 0, (4 - h % 4) % 4))
        mask = x.new_zeros(x.shape[-2:])
        mask[-4:-2, -4:-2] = 1.0
        return x + mask


class MaskGather(nn.Module):
    """Gathers columns of a bool mask (a Gather on bool data, as transformers 5's mask creation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = x > 0
        return torch.index_select(mask, 3, torch.tensor([3, 1, 0])).float() + x[..., :3]


def _onnx(model: nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(shape),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"])
    return path


@pytest.mark.parametrize("model_class,shape,ops_before,note", [
    (PaddedWindowMask, (1, 3, 6, 6), {"Range"}, "modelbuild: applied onnx::fold_constants: onnx2coreml has no "
                                                "lowering for 2 Range node(s), all of which compute constants"),
    (MaskGather, (1, 2, 3, 4), set(), "modelbuild: applied onnx::bool_as_int32 to 1 node(s) on bool data "
                                      "('/Gather' (Gather))"),
])
@pytest.mark.parametrize("fmt,target", [("neuralnetwork", "iOS13"), ("mlprogram", "iOS15")])
def test_repaired_conversion_matches_torch_and_is_logged(tmp_path, model_class, shape, ops_before, note, fmt, target):
    model = model_class().eval()
    path = _onnx(model, shape, tmp_path / "model.onnx")
    assert set(unsupported_ops(onnx.load(str(path)))) == ops_before
    with torch.no_grad():
        out_shape = tuple(model(torch.zeros(shape)).shape)
    log = tmp_path / "convert.log"
    mlmodel = convert(frontend="onnx", onnx_path=path, inputs=[FeatureSpec("x", shape)],
                      outputs=[FeatureSpec("y", out_shape)], format=fmt, minimum_deployment_target=target,
                      log_path=log)
    assert note in log.read_text()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(runtime.load(mlmodel, backend="reference").predict({"x": x})["y"], expected,
                               rtol=0, atol=1e-6)


def test_a_graph_that_needs_no_repair_is_passed_through_unchanged(tmp_path):
    model = onnx.load(str(_onnx(nn.Conv2d(3, 3, 1).eval(), (1, 3, 4, 4), tmp_path / "conv.onnx")))
    assert repair_for_onnx2coreml(model) is model


def test_flexible_inputs_are_not_folded_to_the_default_shape(tmp_path):
    model = onnx.load(str(_onnx(PaddedWindowMask().eval(), (1, 3, 6, 6), tmp_path / "mask.onnx")))
    assert set(unsupported_ops(repair_for_onnx2coreml(model, flexible=True))) == {"Range"}
    assert not unsupported_ops(repair_for_onnx2coreml(model))


@pytest.mark.slow
@pytest.mark.parametrize("fmt,target", [("neuralnetwork", "iOS13"), ("mlprogram", "iOS15")])
def test_bert_with_an_attention_mask_converts_through_onnx(tmp_path, fmt, target):
    """transformers 5's BERT, exported with its attention_mask input, gathers from a bool mask ('/bert/Gather_1')
    and selects with a Where whose value inputs are scalars ('/bert/Where_1', typed a scalar in an ML Program)."""
    from modelbuild.zoo.transformers import from_config

    torch.manual_seed(0)
    bert = from_config("bert", "AutoModelForSequenceClassification", {
        "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128,
        "vocab_size": 1000})
    bert.forward = _logits_only(bert.forward)
    ids = np.random.default_rng(0).integers(0, 1000, (1, 16))
    mask = np.ones((1, 16), np.int64)
    mask[0, 11:] = 0
    path = tmp_path / "bert.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(bert, (torch.from_numpy(ids), torch.from_numpy(mask)), str(path), dynamo=False,
                          opset_version=17, input_names=["input_ids", "attention_mask"], output_names=["logits"])
    log = tmp_path / "bert.log"
    mlmodel = convert(frontend="onnx", onnx_path=path, format=fmt, minimum_deployment_target=target, log_path=log,
                      inputs=[FeatureSpec("input_ids", (1, 16), dtype="int64"),
                              FeatureSpec("attention_mask", (1, 16), dtype="int64")],
                      outputs=[FeatureSpec("logits", (1, 2))])
    notes = log.read_text()
    assert "applied onnx::bool_as_int32 to 1 node(s) on bool data ('/bert/Gather_1' (Gather))" in notes
    assert "applied onnx::broadcast_where_branches to 1 Where node(s) ('/bert/Where_1')" in notes
    with torch.no_grad():
        expected = bert(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    feed_type = np.float32 if fmt == "neuralnetwork" else np.int32  # what Core ML gets for int64 inputs
    got = runtime.load(mlmodel, backend="reference").predict(
        {"input_ids": ids.astype(feed_type), "attention_mask": mask.astype(feed_type)})["logits"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def _logits_only(forward):
    def logits(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return forward(input_ids=input_ids, attention_mask=attention_mask).logits
    return logits
