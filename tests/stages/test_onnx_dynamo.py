"""`onnx.exporter: dynamo` on the tiny FFDNet: names, opset, flexible dimensions, determinism, onnx2coreml."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from projects import REPO, edit_recipe, make_tiny_project
from torch.utils._sympy.numbers import int_oo

from modelbuild import runtime
from modelbuild.recipe import load_recipe
from modelbuild.recipe.schema import Input
from modelbuild.recipe.shapes import export_bounds
from modelbuild.stages.coreml_stage import build_coreml
from modelbuild.stages.onnx_dynamo import convert_opset
from modelbuild.stages.onnx_stage import OnnxExportError, export_onnx
from modelbuild.torch_export import dynamic_shapes
from modelbuild.torch_model import build_model
from modelbuild.validation.runners import OnnxRunner


def _dynamo(root, edit=None):
    def change(data):
        data["onnx"]["exporter"] = "dynamo"
        if edit:
            edit(data)
    edit_recipe(root, change)
    return load_recipe(root / "recipes" / "tiny.yaml")


def _torch(recipe, root, *arrays):
    with torch.no_grad():
        return build_model(recipe, root)(*(torch.from_numpy(a) for a in arrays)).numpy()


def _metadata(model: onnx.ModelProto) -> list[str]:
    graph = model.graph
    return [p.key for item in [*graph.node, *graph.input, *graph.output, *graph.value_info, *graph.initializer]
            for p in item.metadata_props]


def test_bounds_of_ranges_and_enumerated_shapes():
    ranged = Input.model_validate({"shape": [1, 3, 64, 64], "flexible": {"range": {3: [32, -1], 2: [16, 128]}}})
    enumerated = Input.model_validate({"shape": [1, 3, 64, 64],
                                       "flexible": {"enumerated": [[1, 3, 64, 64], [1, 3, 32, 96], [1, 3, 48, 80]]}})
    assert export_bounds(ranged) == {2: (16, 128), 3: (32, None)}  # unbounded: no max
    assert export_bounds(enumerated) == {2: (32, 64), 3: (64, 96)}  # the smallest and largest size of each
    assert export_bounds(Input.model_validate({"shape": [1]})) == {}
    [image, sigma] = dynamic_shapes(["image", "sigma"], [export_bounds(ranged), {}])
    assert sigma is None and {d: (dim.__name__, dim.min, dim.max) for d, dim in image.items()} == {
        2: ("image_2", 16, 128), 3: ("image_3", 32, int_oo)}
    assert dynamic_shapes(["sigma"], [{}]) is None


def test_dynamo_export_agrees_with_torch_and_converts_with_onnx2coreml(tiny_project):
    recipe = _dynamo(tiny_project)
    target = tiny_project / "tiny.onnx"
    entry = export_onnx(recipe, tiny_project, target)
    assert entry["max_abs_error_vs_reference"]["y"] < 1e-6
    model = onnx.load(str(target))
    assert [(o.domain, o.version) for o in model.opset_import if o.domain == ""] == [("", 17)]
    assert [i.name for i in model.graph.input] == ["x", "sigma"] and [o.name for o in model.graph.output] == ["y"]
    assert _metadata(model) == []  # no source paths, line numbers or fx nodes in the file
    artifact = tiny_project / "tiny_viaonnx.mlmodel"
    build_coreml(recipe, tiny_project, "viaonnx", target, artifact)
    x, sigma = np.random.default_rng(0).random((1, 1, 16, 16), np.float32), np.array([0.1], np.float32)
    got = runtime.load(artifact).predict({"x": x, "sigma": sigma})["y"]
    np.testing.assert_allclose(got, _torch(recipe, tiny_project, x, sigma), rtol=0, atol=1e-5)


def test_flexible_dimensions_are_symbolic_and_run_at_other_sizes(tiny_project):
    recipe = _dynamo(tiny_project, lambda d: d["inputs"]["x"].update(flexible={"range": {2: [8, 64], 3: [8, 64]}}))
    target = tiny_project / "tiny.onnx"
    export_onnx(recipe, tiny_project, target)
    dims = [d.dim_param or d.dim_value for d in onnx.load(str(target)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 1, "x_2", "x_3"]
    runner = OnnxRunner(target)
    for seed, (h, w) in enumerate([(8, 8), (64, 64), (40, 24)]):
        x, sigma = np.random.default_rng(seed).random((1, 1, h, w), np.float32), np.array([0.2], np.float32)
        got = runner.run({"x": x, "sigma": sigma})["y"]
        np.testing.assert_allclose(got, _torch(recipe, tiny_project, x, sigma), rtol=0, atol=1e-6)


def test_a_dimension_torch_export_specialises_is_refused(tiny_project):
    """FFDNet reshapes sigma [1] to [N, 1, 1, 1]: the batch size is fixed by the model, whatever the recipe says."""
    recipe = _dynamo(tiny_project, lambda d: d["inputs"]["x"].update(flexible={"range": {0: [1, 4]}}))
    with pytest.raises(OnnxExportError) as caught:
        export_onnx(recipe, tiny_project, tiny_project / "tiny.onnx")
    assert str(caught.value) == (
        "onnx.exporter dynamo: input 'x' came out with shape [1, 1, 16, 16], but inputs.x declares [1, 1, 16, 16] "
        "with flexible dimensions [0]; torch.export specialised dimension 0 to 1. Use onnx.exporter torchscript, "
        "or make that dimension fixed.")
    assert not (tiny_project / "tiny.onnx").exists()


class _MeanPool(torch.nn.Module):
    def forward(self, x):
        return torch.relu(x).mean(dim=(2, 3), keepdim=True)


def _export_at_18(module) -> onnx.ModelProto:
    return torch.onnx.export(module, (torch.rand(1, 2, 4, 4),), dynamo=True, opset_version=18,
                             verbose=False).model_proto


def test_opset_17_is_converted_down_after_optimisation():
    """Opset 18 moved ReduceMean's axes to an input; the converted node has them as an attribute, without the
    noop_with_empty_axes attribute opset 17 does not know, and computes the same."""
    proto = _export_at_18(_MeanPool().eval())
    converted = convert_opset(proto, 17)
    onnx.checker.check_model(converted, full_check=True)
    [node] = [n for n in converted.graph.node if n.op_type == "ReduceMean"]
    assert {a.name for a in node.attribute} == {"axes", "keepdims"}
    x = np.random.default_rng(1).standard_normal((1, 2, 4, 4)).astype(np.float32)
    expected = _MeanPool()(torch.from_numpy(x)).numpy()
    session = onnxruntime.InferenceSession(converted.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x})[0], expected, atol=1e-7)


def test_an_opset_the_converter_cannot_reach_is_refused():
    with pytest.raises(OnnxExportError) as caught:
        convert_opset(_export_at_18(_MeanPool().eval()), 11)
    assert str(caught.value) == (
        "onnx.opset 11: the dynamo exporter writes opset 18 and onnx's version converter cannot take this model "
        "down to 11 (No Adapter From Version $14 for Relu). Use onnx.opset 18 or newer, or onnx.exporter "
        "torchscript.")


_EXPORT_IN_A_FRESH_PROCESS = textwrap.dedent("""
    import sys
    from pathlib import Path
    from modelbuild.recipe import load_recipe
    from modelbuild.stages.onnx_stage import export_onnx
    root = Path(sys.argv[1])
    export_onnx(load_recipe(root / "recipes" / "tiny.yaml"), root, root / "tiny.onnx")
""")

_MODEL_MODULE = textwrap.dedent('''
    """A model defined in the project folder: its source path differs between projects."""
    import torch


    class LocalNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x, sigma):
            return torch.clamp(x - sigma * self.conv(x), 0, 1)
''')


@pytest.mark.slow
def test_export_is_byte_identical_in_fresh_processes_and_other_folders(tmp_path_factory):
    """doit's early cutoff needs it: the same recipe exported in two processes, from two project folders whose
    model module lives at different paths (the exporter records source paths), gives the same bytes."""
    files = []
    for name in ("first", "second"):
        root = make_tiny_project(tmp_path_factory.mktemp(name))
        (root / "localnet.py").write_text(_MODEL_MODULE)
        edit_recipe(root, lambda d: (d["onnx"].update(exporter="dynamo", opset=18),  # 18: no version conversion
                                     d["model"].update(factory="localnet:LocalNet", args={}, weights=None)))
        subprocess.run([sys.executable, "-c", _EXPORT_IN_A_FRESH_PROCESS, str(root)], check=True, cwd=root,
                       env={**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{REPO}"})
        files.append((root / "tiny.onnx").read_bytes())
    assert files[0] == files[1]
    assert _metadata(onnx.load_from_string(files[0])) == []
