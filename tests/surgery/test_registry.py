"""The step registries: ids, parameter models for the recipe schema, errors, cheap import, coverage."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
import pytest
from pydantic import Field, TypeAdapter
from surgery.helpers import export_onnx, onnx_op_types, run_onnx, sample, torch_outputs

from modelbuild.surgery import (
    COREML_STEPS,
    ONNX_STEPS,
    StepRegistry,
    SurgeryError,
    SurgeryStep,
    UnknownStepError,
    apply_steps,
    coreml_step_models,
    onnx_step_models,
)

ALL_MODELS = {**onnx_step_models(), **coreml_step_models()}


def test_ids_are_namespaced_and_models_strict_and_documented():
    assert all(step_id.startswith("onnx::") for step_id in onnx_step_models())
    assert all(step_id.startswith("coreml::") for step_id in coreml_step_models())
    for step_id, model in ALL_MODELS.items():
        assert model.model_config["extra"] == "forbid", step_id
        assert model.model_fields["step"].default == step_id
        assert "Given:" in model.__doc__ and "Result:" in model.__doc__, step_id
        schema = model.model_json_schema()
        assert schema["additionalProperties"] is False
        assert all("description" in prop for name, prop in schema["properties"].items() if name != "step"), step_id


def test_step_list_parses_as_a_discriminated_union():
    steps = TypeAdapter(list[Annotated[Union[tuple(ALL_MODELS.values())], Field(discriminator="step")]])
    parsed = steps.validate_python([{"step": "onnx::set_opset", "opset": 13},
                                    {"step": "coreml::add_softmax", "output": "logits"}])
    assert [type(step).__name__ for step in parsed] == ["SetOpset", "AddSoftmax"]
    assert steps.json_schema()["items"]["discriminator"]["propertyName"] == "step"


def test_unknown_steps_name_themselves_and_the_available_ones():
    with pytest.raises(UnknownStepError) as caught:
        apply_steps(None, [{"step": "coreml::add_sigmoid"}])
    assert str(caught.value) == ("Unknown coreml surgery step 'coreml::add_sigmoid'. Available coreml steps: "
                                 + ", ".join(coreml_step_models()) + ".")
    with pytest.raises(UnknownStepError, match=r"'tflite::quantize': ids start with 'onnx::' or 'coreml::'"):
        apply_steps(None, [{"step": "tflite::quantize"}])


def test_bad_parameters_are_refused_before_anything_runs():
    with pytest.raises(SurgeryError) as caught:
        apply_steps(None, [{"step": "onnx::set_opset", "opst": 13}])
    assert str(caught.value) == ("Invalid parameters for surgery step 'onnx::set_opset': opset: Field required; "
                                 "opst: Extra inputs are not permitted. Accepted parameters: step, opset.")
    with pytest.raises(SurgeryError, match="mapping with a 'step' id; got 'fold'"):
        apply_steps(None, ["fold"])
    with pytest.raises(SurgeryError, match="take an onnx.ModelProto; got a str"):
        apply_steps("model.onnx", [{"step": "onnx::fold_constants"}])
    with pytest.raises(SurgeryError, match="take a coremltools.models.MLModel; got a str"):
        apply_steps("model.mlmodel", [{"step": "coreml::add_softmax"}])


def test_registration_guards():
    registry = StepRegistry("onnx")

    class Noop(SurgeryStep):
        """Given: g Result: g"""

        step: Literal["onnx::noop"] = "onnx::noop"

    registry.register(Noop)
    with pytest.raises(ValueError, match=r"'onnx::noop' is registered twice \(Noop and Noop\)"):
        registry.register(Noop)
    with pytest.raises(ValueError, match="does not belong to the 'coreml' registry"):
        StepRegistry("coreml").register(Noop)

    class Undocumented(SurgeryStep):
        """No before/after."""

        step: Literal["onnx::undocumented"] = "onnx::undocumented"

    with pytest.raises(ValueError, match="needs a 'Given: ... Result: ...' docstring"):
        registry.register(Undocumented)

    class Vague(SurgeryStep):
        """Given: g Result: g"""

        step: Literal["onnx::vague"] = "onnx::vague"
        level: int = 1

    with pytest.raises(ValueError, match="Parameter 'level' of surgery step 'onnx::vague' needs a description"):
        registry.register(Vague)


def test_steps_apply_in_order(classifier):
    model = export_onnx(classifier, dynamic_batch=True)
    seen = []
    result = apply_steps(model, [
        {"step": "onnx::flatten_shape_reshape"},
        {"step": "onnx::rename_inputs", "names": {"x": "image"}},
        {"step": "onnx::rename_outputs", "names": {"y": "logits"}},
        {"step": "onnx::fold_constants"},
    ], on_step=lambda step, after: seen.append((step.step, [v.name for v in after.graph.input])))
    assert seen == [("onnx::flatten_shape_reshape", ["x"]), ("onnx::rename_inputs", ["image"]),
                    ("onnx::rename_outputs", ["image"]), ("onnx::fold_constants", ["image"])]
    assert "Flatten" in onnx_op_types(result)
    x = sample(2)
    np.testing.assert_allclose(run_onnx(result, {"image": x})["logits"], torch_outputs(classifier, x), atol=1e-5)


def test_importing_the_steps_imports_neither_onnx_nor_coremltools_nor_torch():
    code = ("import sys, modelbuild.surgery as s; s.onnx_step_models(); s.coreml_step_models(); "
            "print(sorted(m for m in ('onnx', 'coremltools', 'torch', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_registered_step_has_a_test():
    sources = "".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py")
                      if path.name != Path(__file__).name)
    untested = [step_id for step_id in list(ONNX_STEPS) + list(COREML_STEPS) if f'"{step_id}"' not in sources]
    assert not untested, f"surgery steps without a test in tests/surgery: {untested}"


LAZY_PROBE = """
import importlib, pkgutil, sys
import modelbuild.surgery, modelbuild.patches
from modelbuild.recipe import load_recipe
load_recipe('recipes/ffdnet_flexible.yaml')  # lists no surgery step and no patch
print(sorted(m for m in sys.modules if m.startswith(('modelbuild.surgery.', 'modelbuild.patches.'))))
from modelbuild.surgery import COREML_STEPS, ONNX_STEPS
from modelbuild.patches import TORCH_PATCHES
before = {r.target: set(r) for r in (ONNX_STEPS, COREML_STEPS, TORCH_PATCHES)}
for package in (modelbuild.surgery, modelbuild.patches):
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
print(before == {r.target: set(r) for r in (ONNX_STEPS, COREML_STEPS, TORCH_PATCHES)})
"""


def test_registries_import_their_step_modules_only_when_a_recipe_lists_a_step():
    """Loading recipes pays for the steps they use; the `modules` of each registry hold every step there is."""
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([sys.executable, "-c", LAZY_PROBE], cwd=Path(__file__).parents[2], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    assert out[0] == str(sorted(["modelbuild.surgery.coreml_spec", "modelbuild.surgery.coreml_weights",
                                 "modelbuild.surgery.registry", "modelbuild.patches.registry"]))
    assert out[1] == "True"
