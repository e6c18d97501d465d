"""The model patch registry: ids, parameter models in the recipe schema, errors, cheap import, coverage."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

from modelbuild.patches import ALWAYS_APPLIED, TORCH_PATCHES, PatchContext, apply_patches, torch_patch_models
from modelbuild.recipe import recipe_json_schema
from modelbuild.surgery import SurgeryError, UnknownStepError

MODELS = torch_patch_models()


def test_ids_are_namespaced_and_models_strict_and_documented():
    assert set(MODELS) == {"torch::calibrate", "torch::disable_mha_fastpath", "torch::replace_modules",
                           "torch::set_attribute"}
    for patch_id, model in MODELS.items():
        assert model.model_config["extra"] == "forbid", patch_id
        assert model.model_fields["step"].default == patch_id
        assert "Given:" in model.__doc__ and "Result:" in model.__doc__, patch_id
        schema = model.model_json_schema()
        assert all("description" in prop for name, prop in schema["properties"].items() if name != "step")


def test_patches_are_a_discriminated_union_in_the_recipe_schema():
    patches = recipe_json_schema()["$defs"]["ModelSource"]["properties"]["patches"]
    assert patches["items"]["discriminator"]["propertyName"] == "step"
    assert set(patches["items"]["discriminator"]["mapping"]) == set(MODELS)


def test_unknown_patches_and_bad_parameters_name_themselves():
    with pytest.raises(UnknownStepError) as caught:
        apply_patches(nn.ReLU(), [{"step": "torch::fuse_bn"}], None)
    assert str(caught.value) == ("Unknown torch model patch 'torch::fuse_bn'. Available torch steps: "
                                 + ", ".join(MODELS) + ".")
    with pytest.raises(SurgeryError) as caught:
        apply_patches(nn.ReLU(), [{"step": "torch::set_attribute", "attribute": "inplace"}], None)
    assert str(caught.value) == ("Invalid parameters for model patch 'torch::set_attribute': value: Field "
                                 "required. Accepted parameters: step, attribute, value, names, type.")
    with pytest.raises(SurgeryError, match="step: Value error, give names .globs on module names., type .a module "
                                           "class. or both"):
        apply_patches(nn.ReLU(), [{"step": "torch::set_attribute", "attribute": "inplace", "value": True}], None)


def test_patches_apply_in_order_and_may_replace_the_root():
    model = nn.Sequential(nn.ReLU6())
    patched = apply_patches(model, [
        {"step": "torch::replace_modules", "type": "torch.nn:ReLU6", "factory": "torch.nn:Hardtanh",
         "args": {"min_val": 0.0, "max_val": 6.0}},
        {"step": "torch::set_attribute", "type": "torch.nn:Hardtanh", "attribute": "max_val", "value": 3},
        {"step": "torch::replace_modules", "type": "torch.nn:Sequential", "factory": "torch.nn:Identity"},
    ], PatchContext(None, Path(".")))
    assert isinstance(patched, nn.Identity)
    assert isinstance(model[0], nn.Hardtanh) and model[0].max_val == 3.0 and isinstance(model[0].max_val, float)


def test_importing_the_patches_and_the_schema_imports_no_torch():
    code = ("import sys, modelbuild.patches as p, modelbuild.recipe.schema; p.torch_patch_models(); "
            "print(sorted(m for m in ('onnx', 'coremltools', 'torch', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_always_applied_patches_are_registered():
    assert all(patch["step"] in TORCH_PATCHES for patch in ALWAYS_APPLIED)


def test_every_registered_patch_has_a_test():
    sources = "".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py")
                      if path.name != Path(__file__).name)
    assert [patch_id for patch_id in TORCH_PATCHES if f'"{patch_id}"' not in sources] == []
