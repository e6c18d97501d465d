"""Edits of the converted Core ML spec: metadata, descriptions, output shapes, checks.

Run after serialisation, the same for both frontends. They also drop
coremltools' `conversion_date` metadata so that converting the same model
twice gives the same bytes (the build's early cutoff depends on it), and they
check that every feature came out with the declared name and type: float32
multi-arrays, or images of the declared colour layout and size.

Image inputs with a per-channel scale get it recorded in the metadata too
(`modelbuild.coreml.<input>.channel_scale`), since the image description only
shows Core ML's own scale and bias.
"""
from __future__ import annotations

import shutil
from typing import Any

from modelbuild.coreml.errors import CoreMLBuildError
from modelbuild.coreml.features import FeatureSpec, ImageInput, Metadata, channel_scales, coreml_array_type

CONVERSION_DATE_KEY = "com.github.apple.coremltools.conversion_date"
FRONTEND_KEY = "modelbuild.coreml.frontend"
CHANNEL_SCALE_KEY = "modelbuild.coreml.{name}.channel_scale"  # per-channel factor after scale and bias
_COLOR_SPACES = {"RGB": "RGB", "BGR": "BGR", "GRAYSCALE": "GRAYSCALE"}


def describe(spec: Any, inputs: list[FeatureSpec], outputs: list[FeatureSpec] | None, metadata: Metadata,
             frontend_label: str) -> None:
    """Write metadata and feature descriptions into `spec`, fill output shapes, check features.

    `outputs=None` leaves the outputs alone (a classifier's are checked by
    `modelbuild.coreml.classifier.check_classifier_spec`).
    """
    meta = spec.description.metadata
    meta.shortDescription = metadata.short_description
    meta.author = metadata.author
    meta.license = metadata.license
    meta.versionString = metadata.version
    if CONVERSION_DATE_KEY in meta.userDefined:
        del meta.userDefined[CONVERSION_DATE_KEY]
    meta.userDefined[FRONTEND_KEY] = frontend_label
    for feature in inputs:  # the part of the preprocessing Core ML's image description cannot show
        if isinstance(feature.image, ImageInput) and feature.image.channel_scale is not None:
            factors = ", ".join(f"{factor:.9g}" for factor in channel_scales(feature.image))
            meta.userDefined[CHANNEL_SCALE_KEY.format(name=feature.name)] = factors
    for key, value in metadata.user_defined.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise CoreMLBuildError(
                f"Core ML user-defined metadata must map strings to strings; got {key!r}: {value!r}."
            )
        meta.userDefined[key] = value
    sizes_vary = any(f.flexible is not None for f in inputs)  # then output sizes vary too
    roles = [("input", inputs, spec.description.input)]
    if outputs is not None:
        roles.append(("output", outputs, spec.description.output))
    for role, declared, described in roles:
        if [d.name for d in described] != [f.name for f in declared]:
            raise CoreMLBuildError(
                f"The converted model's {role}s are {[d.name for d in described]}, not the declared "
                f"{[f.name for f in declared]}; this is a modelbuild bug, please report it."
            )
        for feature, description in zip(declared, described):
            description.shortDescription = feature.description
            _check_type(role, feature, description.type, fixed_size=not (role == "output" and sizes_vary),
                        neural_network=spec.WhichOneof("Type") != "mlProgram")


def _check_type(role: str, feature: FeatureSpec, feature_type: Any, fixed_size: bool, neural_network: bool) -> None:
    """Check the feature's type; with `fixed_size=False` (outputs of a flexible model) not its size.

    A NeuralNetwork computes in float: coremltools declares its integer inputs FLOAT32."""
    kind = feature_type.WhichOneof("Type")
    if feature.image is not None:
        image = feature_type.imageType
        expected = (feature.shape[-1], feature.shape[-2], _COLOR_SPACES[feature.image.color_layout])
        actual = (image.width, image.height, type(image).ColorSpace.Name(image.colorSpace))
        if kind != "imageType" or (actual if fixed_size else actual[2:]) != (expected if fixed_size else expected[2:]):
            raise CoreMLBuildError(
                f"Image {role} {feature.name!r} came out as {kind} {actual!r} instead of an image "
                f"{expected!r}; this is a modelbuild bug, please report it."
            )
        return
    array = feature_type.multiArrayType
    data_type = type(array).ArrayDataType.Name(array.dataType) if kind == "multiArrayType" else kind
    expected = coreml_array_type(feature.dtype) if role == "input" else "FLOAT32"
    if data_type != expected and not (expected == "INT32" and data_type == "FLOAT32" and neural_network):
        raise CoreMLBuildError(
            f"{role.capitalize()} {feature.name!r} came out as {data_type}, not a {expected} multi-array; "
            "this is a modelbuild bug, please report it."
        )
    if not fixed_size:
        return
    if not array.shape:  # the NeuralNetwork backend leaves output shapes empty
        array.shape.extend(feature.shape)
    elif tuple(array.shape) != tuple(feature.shape):
        raise CoreMLBuildError(
            f"{role.capitalize()} {feature.name!r} came out with shape {tuple(array.shape)!r}, "
            f"not the declared {tuple(feature.shape)!r}."
        )


def rebuild(ct, mlmodel: Any, spec: Any) -> Any:
    """A new MLModel from an edited spec (with the old one's weights); drop the old temp package."""
    if mlmodel.is_package:
        new_model = ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir)
        if mlmodel.is_temp_package and mlmodel.package_path:
            shutil.rmtree(mlmodel.package_path, ignore_errors=True)
        return new_model
    return ct.models.MLModel(spec)
