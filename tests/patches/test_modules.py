"""torch::replace_modules and torch::set_attribute, compared with models built the patched way."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import mobilenet_v2

from modelbuild.patches import PatchError, apply_patches


def run(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(x).numpy()


def mlp(approximate: str = "none") -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.GELU(approximate), nn.Linear(32, 32), nn.GELU(approximate),
                         nn.Linear(32, 4))


def replace(type_: str, factory: str, **more) -> dict:
    return {"step": "torch::replace_modules", "type": type_, "factory": factory, **more}


def set_attribute(attribute: str, value, **selection) -> dict:
    return {"step": "torch::set_attribute", "attribute": attribute, "value": value, **selection}


X8 = torch.randn(16, 8, generator=torch.Generator().manual_seed(1)) * 3


def test_gelu_becomes_its_tanh_approximation_everywhere_or_where_the_names_say():
    exact = run(mlp(), X8)
    patched = apply_patches(mlp(), [replace("torch.nn:GELU", "torch.nn:GELU", args={"approximate": "tanh"})], None)
    assert [m.approximate for m in patched if isinstance(m, nn.GELU)] == ["tanh", "tanh"]
    np.testing.assert_array_equal(run(patched, X8), run(mlp("tanh"), X8))
    assert np.abs(run(patched, X8) - exact).max() > 1e-4  # the approximation shows

    only_first = apply_patches(mlp(), [replace("torch.nn:GELU", "torch.nn:GELU", args={"approximate": "tanh"},
                                               names=["1"])], None)
    assert [m.approximate for m in only_first if isinstance(m, nn.GELU)] == ["tanh", "none"]


def test_relu6_becomes_hardtanh_with_identical_outputs():
    torch.manual_seed(0)
    model = mobilenet_v2(num_classes=10).eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    before = run(model, x)
    patched = apply_patches(model, [replace("torch.nn:ReLU6", "torch.nn:Hardtanh",
                                            args={"min_val": 0.0, "max_val": 6.0})], None)
    assert not any(type(m) is nn.ReLU6 for m in patched.modules())
    assert sum(type(m) is nn.Hardtanh for m in patched.modules()) == 35
    np.testing.assert_array_equal(run(patched, x), before)


def test_a_shared_module_stays_shared_and_nested_matches_go_with_their_parent():
    act = nn.ReLU6()
    model = nn.Sequential(nn.Linear(4, 4), act, nn.Linear(4, 4), act)
    apply_patches(model, [replace("torch.nn:ReLU6", "torch.nn:Hardtanh", args={"min_val": 0.0, "max_val": 6.0})],
                  None)
    assert isinstance(model[1], nn.Hardtanh) and model[1] is model[3]

    outer = nn.Sequential(nn.Sequential(nn.ReLU()), nn.ReLU())
    patched = apply_patches(outer, [replace("torch.nn:Sequential", "torch.nn:Identity", names=["*"])], None)
    assert isinstance(patched, nn.Identity)


def test_copy_state_carries_the_weights_over():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.LayerNorm(6))
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 2.0)
        model[1].bias.uniform_(-1.0, 1.0)
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(3))
    before = run(model, x)
    step = replace("torch.nn:LayerNorm", "torch.nn:LayerNorm", args={"normalized_shape": [6], "eps": 1e-5})
    np.testing.assert_array_equal(run(apply_patches(copy.deepcopy(model), [{**step, "copy_state": True}], None), x),
                                  before)
    assert np.abs(run(apply_patches(copy.deepcopy(model), [step], None), x) - before).max() > 0.1
    bad = replace("torch.nn:LayerNorm", "torch.nn:LayerNorm", args={"normalized_shape": [3]}, copy_state=True)
    with pytest.raises(PatchError, match=r"the state of 1 does not fit LayerNorm \(copy_state\): Error\(s\) in "
                                         "loading state_dict for LayerNorm"):
        apply_patches(model, [bad], None)


def test_replace_modules_refusals():
    with pytest.raises(PatchError) as caught:
        apply_patches(mlp(), [replace("torch.nn:Hardswish", "torch.nn:ReLU")], None)
    assert str(caught.value) == (
        "torch::replace_modules found no modules of type torch.nn:Hardswish; the model has "
        "torch.nn.modules.linear:Linear (3), torch.nn.modules.activation:GELU (2), "
        "torch.nn.modules.container:Sequential (1).")
    with pytest.raises(PatchError, match="found no modules of type torch.nn:GELU whose name matches '9' or 'x.*'"):
        apply_patches(mlp(), [replace("torch.nn:GELU", "torch.nn:ReLU", names=["9", "x.*"])], None)
    with pytest.raises(PatchError, match=r"torch::replace_modules: torch.nn.functional:relu\(\*\*\{\}\) failed"):
        apply_patches(mlp(), [replace("torch.nn:GELU", "torch.nn.functional:relu")], None)
    with pytest.raises(PatchError, match="torch::replace_modules factory: 'math:pi' is not a class or function"):
        apply_patches(mlp(), [replace("torch.nn:GELU", "math:pi")], None)
    with pytest.raises(PatchError, match="torch::replace_modules: builtins:list returned list, not a torch.nn.Module"):
        apply_patches(mlp(), [replace("torch.nn:GELU", "builtins:list")], None)
    with pytest.raises(PatchError, match="torch::replace_modules type: 'torch.nn.functional:gelu' is a "
                                         "builtin_function_or_method, not a class"):
        apply_patches(mlp(), [replace("torch.nn.functional:gelu", "torch.nn:ReLU")], None)
    with pytest.raises(PatchError, match="torch::replace_modules type: module 'torch.nn' has no attribute 'Gelu'"):
        apply_patches(mlp(), [replace("torch.nn:Gelu", "torch.nn:ReLU")], None)


def test_align_corners_set_on_upsample_layers_gives_the_model_built_with_it():
    def model(align_corners: bool) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1),
                             nn.Upsample(scale_factor=2, mode="bilinear", align_corners=align_corners))

    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    patched = apply_patches(model(False), [set_attribute("align_corners", True, type="torch.nn:Upsample")], None)
    np.testing.assert_array_equal(run(patched, x), run(model(True), x))
    assert np.abs(run(patched, x) - run(model(False), x)).max() > 1e-2


def test_a_list_becomes_the_tuple_the_attribute_held():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 2, 3)
    padded = copy.deepcopy(conv)
    padded.padding = (1, 1)
    x = torch.rand(1, 2, 6, 6, generator=torch.Generator().manual_seed(5))
    model = apply_patches(nn.Sequential(conv), [set_attribute("padding", [1, 1], names=["0"])], None)
    assert model[0].padding == (1, 1)
    np.testing.assert_array_equal(run(model, x), run(padded, x))
    assert run(model, x).shape == (1, 2, 6, 6)


def test_set_attribute_refusals():
    with pytest.raises(PatchError, match=r"found no modules of type torch.nn:Upsample; the model has "
                                         r"torch.nn.modules.linear:Linear \(3\)"):
        apply_patches(mlp(), [set_attribute("align_corners", True, type="torch.nn:Upsample")], None)
    with pytest.raises(PatchError) as caught:
        apply_patches(mlp(), [set_attribute("approximate", "tanh", names=["*"])], None)
    assert str(caught.value) == ("torch::set_attribute: (the model) (Sequential), 0 (Linear), 2 (Linear), 4 (Linear) "
                                 "have no attribute 'approximate'; choose modules that have it with names or type.")
    with pytest.raises(PatchError, match="'weight' of 0 is a parameter; set_attribute sets plain attributes"):
        apply_patches(mlp(), [set_attribute("weight", 0, names=["0"])], None)
