"""Render a model description (see `modelbuild.inspection.describe`) as compact, aligned text."""
from __future__ import annotations

from typing import Any

WIDTH = 100


def render(description: dict[str, Any]) -> str:
    """The text `modelbuild inspect` prints: a header line, features, preprocessing, ops, metadata."""
    lines = [f"{description['path']}  ({', '.join(_header_facts(description))})"]
    lines += _body(description)
    return "\n".join(lines)


def _body(description: dict[str, Any], indent: str = "") -> list[str]:
    lines = _feature_lines(description, indent)
    if "classifier" in description:
        lines.append(indent + _classifier_line(description["classifier"]))
    if description.get("ops"):
        lines += _ops_lines(description["ops"], description.get("mil_opsets"), indent)
    if description.get("weights"):
        lines += _weight_lines(description["weights"], indent)
    if len(description.get("functions", [])) > 1:
        lines.append(f"{indent}functions: {', '.join(description['functions'])}")
    if "initializers" in description:
        lines.append(f"{indent}initializers: {description['initializers']} "
                     f"({description['parameters']:,} parameters)")
    for number, stage in enumerate(description.get("pipeline", [])):
        lines.append(f"{indent}stage {number}: {stage['model_type']}")
        lines += _body({**stage, "metadata": {}}, indent + "  ")
    lines += _metadata_lines(description.get("metadata", {}), indent)
    return lines


def _feature_lines(description: dict[str, Any], indent: str) -> list[str]:
    """The inputs, outputs and states sections, names and types aligned across all three."""
    preprocessing = {entry["feature"]: entry for entry in description.get("preprocessing", [])}
    sections = [("inputs", description["inputs"]), ("outputs", description["outputs"]),
                ("states", description.get("states", []))]
    rows = {section: [_feature_row(f, preprocessing.get(f["name"])) for f in features]
            for section, features in sections if features}
    name_width = max((len(row[0]) for section in rows.values() for row in section), default=0)
    type_width = max((len(row[1]) for section in rows.values() for row in section), default=0)
    lines = []
    for section, section_rows in rows.items():
        lines.append(f"{indent}{section}:")
        lines += [f"{indent}  {name:<{name_width}}  {kind:<{type_width}}  {extra}".rstrip()
                  for name, kind, extra in section_rows]
    return lines


def _header_facts(description: dict[str, Any]) -> list[str]:
    if description["format"] == "onnx":
        opsets = description["opsets"]
        facts = [f"ONNX opset {opsets.get('ai.onnx', '?')}"]
        facts += [f"{domain} v{version}" for domain, version in opsets.items() if domain != "ai.onnx"]
        facts.append(f"IR v{description['ir_version']}")
    else:
        facts = [f"Core ML {description['model_type']}", f"spec v{description['specification_version']}"]
        if description["minimum_deployment_target"]:
            facts.append(f"{description['minimum_deployment_target']} or later")
    facts.append(human_size(description["size_bytes"]))
    for key, label in (("weights_bytes", "weights"), ("external_data_bytes", "external data")):
        if key in description:
            facts.append(f"{label} {human_size(description[key])}")
    return facts


def _feature_row(feature: dict[str, Any], preprocessing: dict[str, Any] | None) -> tuple[str, str, str]:
    """(name, type and shape, extras: flexibility, preprocessing, description)."""
    kind = feature["type"]
    extras = []
    if kind == "image":
        text = f"image {feature['width']}x{feature['height']} {feature['color_space']}"
        if "size_range" in feature:
            size_range = feature["size_range"]
            extras.append(f"sizes {_span(size_range['width'])} x {_span(size_range['height'])}")
        if "enumerated_sizes" in feature:
            extras.append("sizes " + ", ".join(f"{w}x{h}" for w, h in feature["enumerated_sizes"]))
    elif kind in ("multiArray", "state", "tensor", "sparse_tensor"):
        text = f"{kind} {_shape(feature['shape'])} {feature['dtype']}"
        if "shape_range" in feature:
            extras.append("flexible " + _shape([_span(r) for r in feature["shape_range"]]))
        if "enumerated_shapes" in feature:
            extras.append("shapes " + " | ".join(_shape(s) for s in feature["enumerated_shapes"]))
    elif kind == "dictionary":
        text = f"dictionary {feature['key_type']} -> double"
    elif kind == "sequence" and "element_type" in feature:
        text = f"sequence of {feature['element_type']}"
    elif kind in ("sequence", "optional"):
        text = f"{kind} of {_feature_row({'name': '', **feature['element']}, None)[1]}"
    elif kind == "map":
        text = f"map {feature['key_dtype']} -> {_feature_row({'name': '', **feature['value']}, None)[1]}"
    else:
        text = kind
    if feature.get("optional"):
        text += " (optional)"
    if preprocessing:
        extras.append("preprocessing: " + _preprocessing_text(preprocessing))
    if feature.get("description"):
        extras.append(f'"{feature["description"]}"')
    return feature["name"], text, "   ".join(extras)


def _preprocessing_text(entry: dict[str, Any]) -> str:
    if entry["source"] == "meanImage":
        return f"mean image ({entry['mean_image_values']} values)"
    labels = {"red": "R", "green": "G", "blue": "B", "gray": "gray"}
    biases = " ".join(f"{labels[channel]} {_number(value)}" for channel, value in entry["bias"].items())
    origin = " (ops in the program)" if entry["source"] == "program ops" else ""
    return f"scale {_number(entry['scale'])}, bias {biases}{origin}"


def _classifier_line(classifier: dict[str, Any]) -> str:
    shown = ", ".join(str(label) for label in classifier["first_labels"])
    more = ", ..." if classifier["class_labels"] > len(classifier["first_labels"]) else ""
    return (f"classifier: {classifier['class_labels']} {classifier['label_type']} labels ({shown}{more}); "
            f"label -> {classifier['predicted_feature_name'] or '?'}, "
            f"probabilities -> {classifier['predicted_probabilities_name'] or '?'}")


def _ops_lines(ops: dict[str, Any], mil_opsets: list[str] | None, indent: str) -> list[str]:
    """`layers (37): convolution 12, activation 11, ...`, wrapped between entries, never inside one."""
    opsets = f", {'/'.join(mil_opsets)}" if mil_opsets else ""
    entries = [f"{name} {count}" for name, count in ops["counts"].items()]
    lines = [f"{indent}{ops['kind']} ({ops['total']}{opsets}):"]
    for number, entry in enumerate(entries):
        text = entry + ("," if number < len(entries) - 1 else "")
        if len(lines[-1]) + 1 + len(text) > WIDTH:
            lines.append(indent + "   ")
        lines[-1] += " " + text
    return lines


def _weight_lines(weights: list[dict[str, Any]], indent: str) -> list[str]:
    """A count per storage form, then each weight that is not plain float32 with its form."""
    counts: dict[str, int] = {}
    for weight in weights:
        counts[weight["form"]] = counts.get(weight["form"], 0) + 1
    lines = [f"{indent}weights: " + "; ".join(f"{count} x {form}" for form, count in counts.items())]
    shown = [w for w in weights if w["form"] not in ("float32", "float32 (raw)")]
    width = max((len(w["name"]) for w in shown), default=0)
    lines += [f"{indent}  {w['name']:<{width}}  {(_shape(w['shape']) + '  ') if w['shape'] else ''}{w['form']}"
              for w in shown]
    return lines


def _metadata_lines(metadata: dict[str, Any], indent: str) -> list[str]:
    """Plain fields aligned, then each dict field (userDefined, metadata_props) as its own table."""
    plain = {key: value for key, value in metadata.items() if not isinstance(value, dict)}
    tables = {key: value for key, value in metadata.items() if isinstance(value, dict)}
    if not plain and not tables:
        return []
    lines = [f"{indent}metadata:"] + _aligned(plain, indent + "  ")
    for key, table in tables.items():
        lines += [f"{indent}  {key}:"] + _aligned(table, indent + "    ")
    return lines


def _aligned(pairs: dict[str, Any], indent: str) -> list[str]:
    width = max((len(key) for key in pairs), default=0)
    return [f"{indent}{key:<{width}}  {value}" for key, value in pairs.items()]


def _shape(dims: list[Any] | None) -> str:
    if dims is None:
        return "[rank unknown]"
    if not dims:
        return "[shape not declared]"
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _span(bounds: list[int | None]) -> str:
    lower, upper = bounds
    if lower == upper:
        return str(lower)
    return f"{lower}..{'' if upper is None else upper}"


def _number(value: float) -> str:
    return f"{value:.6g}"


def human_size(size: int) -> str:
    """Bytes as B, kB, MB or GB (powers of 1000), one decimal above a kilobyte."""
    if size < 1000:
        return f"{size} B"
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            return f"{size:.1f} {unit}"
    raise AssertionError("unreachable")
