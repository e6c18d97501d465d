"""capture 'export': torch.export programs made convertible, flexible batch sizes, and what is refused.

The numeric checks of every declared shape (ranges, enumerated shapes, odd sizes) run in
test_flexible.py for both captures; the program edits (names, image I/O, classifier) in
test_classifier.py.
"""
from __future__ import annotations

import operator

import numpy as np
import pytest
import torch

from modelbuild import runtime
from modelbuild.coreml import CoreMLBuildError, FeatureSpec, Range, convert, save_mlmodel
from modelbuild.coreml.exported_program import capture
from modelbuild.zoo.ffdnet import FFDNet

SUFFIX = {"neuralnetwork": ".mlmodel", "mlprogram": ".mlpackage"}
SIGMA = torch.tensor([0.1])


def _targets(program) -> set[str]:
    return {getattr(node.target, "__name__", str(node.target)) for node in program.graph.nodes
            if node.op == "call_function"}


def test_edited_program_computes_what_the_model_does_at_odd_sizes(ffdnet):
    """The asserts torch deferred (they pin even sizes) are gone, sizes divide as integers, and the edited
    graph still computes the model's output at sizes other than the example's."""
    padded = FFDNet(channels=3, features=8, layers=3, pad_odd=True).eval()
    padded.load_state_dict(ffdnet.state_dict())
    features = [FeatureSpec("noisy", (1, 3, 32, 32), flexible=Range((None, None, (15, 65, 32), (15, 65, 32)))),
                FeatureSpec("sigma", (1,))]
    program = capture(padded, features)
    targets = _targets(program)
    assert {"_assert_scalar.default", "sym_not", "sym_min", "sym_max"}.isdisjoint(targets)
    assert {"int", "minimum"} <= targets
    floordivs = [n for n in program.graph.nodes if n.op == "call_function" and n.target is operator.floordiv]
    assert floordivs and all([user.target for user in n.users] == [int] for n in floordivs)
    for shape in [(1, 3, 15, 33), (1, 3, 65, 64)]:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape)))
        with torch.no_grad():
            expected = padded(x, SIGMA)
            got = program.module()(x, SIGMA)
        assert got.shape == expected.shape == shape
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


class _Conv(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x))


@pytest.mark.parametrize("format,target", [("neuralnetwork", "iOS13"), ("mlprogram", "iOS16")])
def test_a_batch_size_whose_example_is_1_stays_flexible(format, target, tmp_path):
    """torch.export specialises example sizes of 1 unless told otherwise; the batch here runs at 1 to 4."""
    model = _Conv().eval()
    batch = Range(((1, 4, 1), None, None, None))
    mlmodel = convert(frontend="torch", torch_model=model, inputs=[FeatureSpec("x", (1, 3, 8, 8), flexible=batch)],
                      outputs=[FeatureSpec("y", (1, 4, 8, 8))], format=format, minimum_deployment_target=target,
                      capture="export")
    loaded = runtime.load(save_mlmodel(mlmodel, tmp_path / f"m{SUFFIX[format]}"), backend="reference")
    for n in (1, 3, 4):
        x = np.random.default_rng(n).random((n, 3, 8, 8), np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(loaded.predict({"x": x})["y"], expected, rtol=0, atol=1e-6)


def test_a_dimension_the_model_fixes_is_refused_with_torchs_reason(ffdnet):
    """FFDNet reshapes sigma [1] to [N, 1, 1, 1]: the batch cannot vary, and torch.export says so."""
    inputs = [FeatureSpec("noisy", (1, 3, 32, 32), flexible=Range(((1, 4, 1), None, None, None))),
              FeatureSpec("sigma", (1,))]
    with pytest.raises(CoreMLBuildError) as caught:
        convert(frontend="torch", torch_model=ffdnet, inputs=inputs, outputs=[FeatureSpec("y", (1, 3, 32, 32))],
                format="mlprogram", minimum_deployment_target="iOS16", capture="export")
    message = str(caught.value)
    assert message.startswith("torch.export.export failed on FFDNet with inputs of shapes [(1, 3, 32, 32), (1,)] "
                              "and flexible dimensions {'noisy': {0: (1, 4)}}: ")
    assert "noisy_0" in message


def test_capture_export_needs_frontend_torch(tmp_path):
    with pytest.raises(CoreMLBuildError) as caught:
        convert(frontend="onnx", onnx_path=tmp_path / "m.onnx", inputs=[FeatureSpec("x", (1, 3, 8, 8))],
                outputs=[FeatureSpec("y", (1, 4, 8, 8))], format="neuralnetwork", minimum_deployment_target="iOS13",
                capture="export")
    assert str(caught.value) == ("capture 'export' applies to frontend 'torch'; frontend 'onnx' converts the ONNX "
                                 "file as it is.")
