"""Describe one Core ML feature (an input, output or state) from its `FeatureDescription`."""
from __future__ import annotations

from typing import Any


def _enum_name(message: Any, field: str) -> str:
    """The proto enum name of `message.field` (e.g. FLOAT32, RGB), or its number when the enum has no name for it."""
    number = getattr(message, field)
    value = message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number.get(number)
    return value.name if value is not None else str(number)


def describe_feature(feature: Any) -> dict[str, Any]:
    """`{"name", "type", ...}` with the type's shape, data type, size ranges or key type."""
    described = {"name": feature.name, **_feature_type(feature.type)}
    if feature.type.isOptional:
        described["optional"] = True
    if feature.shortDescription:
        described["description"] = feature.shortDescription
    return described


def _feature_type(feature_type: Any) -> dict[str, Any]:
    kind = feature_type.WhichOneof("Type")
    if kind == "multiArrayType":
        return {"type": "multiArray", **_array(feature_type.multiArrayType)}
    if kind == "imageType":
        return {"type": "image", **_image(feature_type.imageType)}
    if kind == "dictionaryType":
        return {"type": "dictionary", "key_type": _key_type(feature_type.dictionaryType)}
    if kind == "sequenceType":
        sequence = feature_type.sequenceType
        return {"type": "sequence", "element_type": _key_type(sequence),
                "size_range": _range(sequence.sizeRange)}
    if kind == "stateType":
        return {"type": "state", **_array(feature_type.stateType.arrayType)}
    return {"type": (kind or "unknown").removesuffix("Type")}  # int64, double, string


def _array(array: Any) -> dict[str, Any]:
    described: dict[str, Any] = {"dtype": _enum_name(array, "dataType"),
                                 "shape": list(array.shape)}
    flexibility = array.WhichOneof("ShapeFlexibility")
    if flexibility == "shapeRange":
        described["shape_range"] = [_range(r) for r in array.shapeRange.sizeRanges]
    elif flexibility == "enumeratedShapes":
        described["enumerated_shapes"] = [list(s.shape) for s in array.enumeratedShapes.shapes]
    return described


def _image(image: Any) -> dict[str, Any]:
    described: dict[str, Any] = {"width": image.width, "height": image.height,
                                 "color_space": _enum_name(image, "colorSpace")}
    flexibility = image.WhichOneof("SizeFlexibility")
    if flexibility == "imageSizeRange":
        described["size_range"] = {"width": _range(image.imageSizeRange.widthRange),
                                   "height": _range(image.imageSizeRange.heightRange)}
    elif flexibility == "enumeratedSizes":
        described["enumerated_sizes"] = [[s.width, s.height] for s in image.enumeratedSizes.sizes]
    return described


def _range(size_range: Any) -> list[int | None]:
    """`[lower, upper]`, upper None when unbounded (Core ML writes -1)."""
    upper = size_range.upperBound
    return [size_range.lowerBound, None if upper < 0 else upper]


def _key_type(container: Any) -> str:
    """"int64" or "string": a dictionary's key type or a sequence's element type."""
    oneof = "KeyType" if "KeyType" in container.DESCRIPTOR.oneofs_by_name else "Type"
    kind = container.WhichOneof(oneof) or "unknownType"
    return kind.removesuffix("KeyType").removesuffix("Type")
