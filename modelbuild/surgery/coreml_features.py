"""Core ML steps on the model's interface: rename features, metadata and descriptions, image outputs."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from modelbuild.surgery import coreml_spec
from modelbuild.surgery.registry import COREML_STEPS, SurgeryError, SurgeryStep

_CHANNELS = {"RGB": 3, "BGR": 3, "GRAYSCALE": 1}


@COREML_STEPS.register
class RenameFeatures(SurgeryStep):
    """Rename model inputs and outputs (and the layers/ops that read or write them).

    Given: inputs (x.1: [1,3,224,224]) outputs (var_240: [1,1000])
    Result: inputs (image: [1,3,224,224]) outputs (logits: [1,1000])
            with names={"x.1": "image", "var_240": "logits"}
    Works for NeuralNetwork and ML Program models (coremltools.utils.rename_feature).
    """

    step: Literal["coreml::rename_features"] = "coreml::rename_features"
    names: dict[str, str] = Field(
        description="Features to rename, inputs or outputs: old name -> new name.", min_length=1)

    def apply(self, mlmodel: Any) -> Any:
        spec = coreml_spec.spec_of(mlmodel)
        existing = coreml_spec.feature_names(spec, "input") + coreml_spec.feature_names(spec, "output")
        unknown = [old for old in self.names if old not in existing]
        if unknown:
            raise SurgeryError(f"{self.step}: the model has no feature(s) {unknown}; its features are {existing}.")
        targets = list(self.names.values())
        clashes = [new for new in targets if new in set(existing) - set(self.names)]
        if clashes or len(set(targets)) != len(targets):
            raise SurgeryError(
                f"{self.step}: cannot rename to {targets}: {clashes or 'duplicate names'} would name two features."
            )
        rename = coreml_spec.ct().utils.rename_feature
        temporary = {old: f"modelbuild_rename_{i}" for i, old in enumerate(self.names)}
        for old, tmp in temporary.items():  # two phases, so that swaps work
            rename(spec, old, tmp)
        for old, tmp in temporary.items():
            rename(spec, tmp, self.names[old])
        return coreml_spec.rebuild(mlmodel, spec)


@COREML_STEPS.register
class SetMetadata(SurgeryStep):
    """Set the model's metadata and the descriptions of its features (Xcode shows them).

    Given: metadata {author: "", shortDescription: ""}  input x {shortDescription: ""}
    Result: metadata {author: "A. Author", shortDescription: "Denoiser", userDefined {k: v}}
            input x {shortDescription: "noisy image"}
    Fields left out keep their values; user_defined entries are added or replaced.
    """

    step: Literal["coreml::set_metadata"] = "coreml::set_metadata"
    short_description: str | None = Field(None, description="What the model does, one sentence.")
    author: str | None = Field(None, description="Who made the model.")
    license: str | None = Field(None, description="The model's license.")
    version: str | None = Field(None, description="The model's version string.")
    user_defined: dict[str, str] = Field(default_factory=dict, description="Extra key -> value metadata.")
    inputs: dict[str, str] = Field(default_factory=dict, description="Input name -> description.")
    outputs: dict[str, str] = Field(default_factory=dict, description="Output name -> description.")

    def apply(self, mlmodel: Any) -> Any:
        spec = coreml_spec.spec_of(mlmodel)
        coreml_spec.check_features(spec, list(self.inputs), "input", self.step)
        coreml_spec.check_features(spec, list(self.outputs), "output", self.step)
        meta = spec.description.metadata
        for field, attribute in (("short_description", "shortDescription"), ("author", "author"),
                                 ("license", "license"), ("version", "versionString")):
            if getattr(self, field) is not None:
                setattr(meta, attribute, getattr(self, field))
        for key, value in self.user_defined.items():
            meta.userDefined[key] = value
        for role, descriptions in (("input", self.inputs), ("output", self.outputs)):
            for feature in getattr(spec.description, role):
                if feature.name in descriptions:
                    feature.shortDescription = descriptions[feature.name]
        return coreml_spec.rebuild(mlmodel, spec)


@COREML_STEPS.register
class OutputToImage(SurgeryStep):
    """Declare a [1, C, H, W] multi-array output as an image output.

    Given: output y: MultiArray FLOAT32 [1, 3, 256, 256]
    Result: output y: Image RGB 256x256   (the values must already be pixels in 0..255:
            Core ML never rescales image outputs, so any x255 must be an op in the graph)
    """

    step: Literal["coreml::output_to_image"] = "coreml::output_to_image"
    output: str = Field(description="Name of the multi-array output to turn into an image.")
    color_layout: Literal["RGB", "BGR", "GRAYSCALE"] = Field(
        "RGB", description="Channel order of the image: RGB, BGR (3 channels) or GRAYSCALE (1 channel).")

    def apply(self, mlmodel: Any) -> Any:
        spec = coreml_spec.spec_of(mlmodel)
        coreml_spec.check_features(spec, [self.output], "output", self.step)
        feature = next(f for f in spec.description.output if f.name == self.output)
        if feature.type.WhichOneof("Type") != "multiArrayType":
            raise SurgeryError(
                f"{self.step}: output {self.output!r} is a {feature.type.WhichOneof('Type')}, not a multi-array.")
        shape = [int(d) for d in feature.type.multiArrayType.shape]
        if not shape:  # the NeuralNetwork backend leaves output shapes empty
            raise SurgeryError(
                f"{self.step}: output {self.output!r} has no shape in the model description; declare it "
                "at conversion (modelbuild fills output shapes from the recipe)."
            )
        channels = _CHANNELS[self.color_layout]
        if len(shape) != 4 or shape[0] != 1 or shape[1] != channels:
            raise SurgeryError(
                f"{self.step}: output {self.output!r} has shape {shape}; a {self.color_layout} image output "
                f"needs shape [1, {channels}, H, W]."
            )
        if coreml_spec.model_format(spec) == "mlprogram":
            _check_program_output_is_float32(spec, self.output, self.step)
        image = feature.type.imageType
        image.width, image.height = shape[3], shape[2]
        image.colorSpace = type(image).ColorSpace.Value(self.color_layout)
        return coreml_spec.rebuild(mlmodel, spec)


def _check_program_output_is_float32(spec: Any, output: str, step: str) -> None:
    """Core ML builds an ML Program's RGB/BGR/GRAYSCALE image output from a float32 tensor only."""
    from coremltools.proto import MIL_pb2

    block = coreml_spec.main_block(spec, step)
    value_type = next((o.type for op in block.operations for o in op.outputs if o.name == output), None)
    if value_type is not None and value_type.tensorType.dataType != MIL_pb2.DataType.FLOAT32:
        found = MIL_pb2.DataType.Name(value_type.tensorType.dataType)
        raise SurgeryError(
            f"{step}: the program computes output {output!r} as {found}; an image output needs a FLOAT32 "
            "tensor (convert with float32 outputs, or cast before the output)."
        )
