"""One model build per recipe per process: shared while its inputs are the same, rebuilt when they change."""
from __future__ import annotations

import warnings

import pytest
import torch
from projects import edit_recipe, run_doit, write_tiny_weights

from modelbuild import shared_model as shared
from modelbuild import torch_model
from modelbuild.recipe import load_recipe


@pytest.fixture
def builds(monkeypatch):
    """Count the calls of modelbuild.torch_model.build_model (the cache starts empty)."""
    calls = []
    real = torch_model.build_model

    def counting(recipe, root):
        calls.append(recipe.name)
        return real(recipe, root)

    shared.forget_models()
    monkeypatch.setattr(torch_model, "build_model", counting)
    yield calls
    shared.forget_models()


def _tiny(root):
    return load_recipe(root / "recipes" / "tiny.yaml")


def test_the_same_recipe_gets_the_same_model_built_once(tiny_project, builds):
    first = shared.shared_model(_tiny(tiny_project), tiny_project)
    second = shared.shared_model(_tiny(tiny_project), tiny_project)
    assert first is second and builds == ["tiny"]
    assert not second.training


def test_a_changed_weights_file_gets_a_fresh_model_with_the_new_weights(tiny_project, builds):
    before = shared.shared_model(_tiny(tiny_project), tiny_project)
    write_tiny_weights(tiny_project / "weights" / "tiny.pth", seed=1)
    after = shared.shared_model(_tiny(tiny_project), tiny_project)
    assert after is not before and len(builds) == 2
    expected = torch.load(tiny_project / "weights" / "tiny.pth", weights_only=True)
    assert all(torch.equal(value, expected[key]) for key, value in after.state_dict().items())
    assert not torch.equal(after.state_dict()["body.0.weight"], before.state_dict()["body.0.weight"])


def test_a_changed_recipe_gets_a_fresh_model(tiny_project, builds):
    edit_recipe(tiny_project, lambda data: data["model"].pop("weights"))
    before = shared.shared_model(_tiny(tiny_project), tiny_project)
    edit_recipe(tiny_project, lambda data: data["model"].update(seed=1))
    after = shared.shared_model(_tiny(tiny_project), tiny_project)
    assert len(builds) == 2
    assert not torch.equal(after.state_dict()["body.0.weight"], before.state_dict()["body.0.weight"])


@pytest.mark.parametrize("mutate", [
    lambda model: model.train(),
    lambda model: model.body[0].weight.data.add_(1.0),
    lambda model: model.register_forward_hook(lambda *args: None),
], ids=["train mode", "weights changed in place", "a hook"])
def test_a_model_a_stage_changed_is_not_handed_to_the_next(tiny_project, builds, mutate):
    model = shared.shared_model(_tiny(tiny_project), tiny_project)
    pristine = {key: value.clone() for key, value in model.state_dict().items()}
    mutate(model)
    again = shared.shared_model(_tiny(tiny_project), tiny_project)
    assert again is not model and len(builds) == 2 and not again.training
    assert all(torch.equal(value, pristine[key]) for key, value in again.state_dict().items())
    assert not again._forward_hooks


def test_each_hit_gives_the_build_warnings_again(tiny_project, builds):
    edit_recipe(tiny_project, lambda data: data["model"].pop("weights"))
    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            shared.shared_model(_tiny(tiny_project), tiny_project)
        assert any("no model.weights" in str(w.message) for w in caught)
    assert len(builds) == 1


def test_default_outputs_are_the_models_outputs_on_the_generated_inputs(tiny_project, builds):
    from modelbuild.feeds import generated_inputs

    recipe = _tiny(tiny_project)
    outputs = shared.default_outputs(recipe, tiny_project)
    model = torch_model.build_model(recipe, tiny_project)
    with torch.no_grad():
        expected = model(*(torch.from_numpy(v) for v in generated_inputs(recipe).values()))
    assert len(outputs) == 1 and torch.equal(torch.from_numpy(outputs[0].copy()), expected)
    assert shared.default_outputs(recipe, tiny_project) is outputs and not outputs[0].flags.writeable


def test_a_build_of_every_stage_builds_the_model_once(tiny_project, builds, monkeypatch):
    """onnx, the torch-frontend variant and validation all need the model: one build in the process."""
    (tiny_project / "samples").mkdir()
    code, ran = run_doit(tiny_project, monkeypatch, "build:tiny")
    assert code == 0, (tiny_project / "doit-report.txt").read_text()
    assert {"onnx:tiny", "coreml:tiny.viatorch", "coreml:tiny.viaonnx", "validate:tiny"} <= set(ran)
    assert builds == ["tiny"]


def test_the_onnx_export_runs_the_model_once_and_keeps_its_outputs(tiny_project, tmp_path, monkeypatch):
    """The TorchScript exporter's trace is a real run on the example inputs: it is the reference, not a second run."""
    import numpy as np

    from modelbuild.feeds import generated_inputs
    from modelbuild.stages.onnx_stage import export_onnx
    from modelbuild.zoo.ffdnet import FFDNet

    calls = []
    forward = FFDNet.forward
    monkeypatch.setattr(FFDNet, "forward", lambda self, *args: calls.append(1) or forward(self, *args))
    shared.forget_models()
    recipe = load_recipe(tiny_project / "recipes" / "tiny.yaml")
    try:
        export_onnx(recipe, tiny_project, tmp_path / "tiny.onnx")
        assert len(calls) == 1
        kept = shared.default_outputs(recipe, tiny_project)
        assert len(calls) == 1
        with torch.no_grad():
            eager = shared.shared_model(recipe, tiny_project)(
                *(torch.from_numpy(v) for v in generated_inputs(recipe).values()))
        np.testing.assert_array_equal(kept[0], eager.numpy())
    finally:
        shared.forget_models()
