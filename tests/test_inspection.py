"""`modelbuild inspect`: descriptions of tiny real .onnx, .mlmodel and .mlpackage files built here."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from modelbuild.inspection import InspectError, describe, describe_file
from modelbuild.inspection.text import human_size
from modelbuild.quiet import coremltools

REPO = Path(__file__).resolve().parents[1]


def _feature_line(text: str, name: str) -> str:
    """The text line describing feature `name` (names come first, then padding)."""
    [line] = [line for line in text.splitlines() if line.split()[:1] == [name]]
    return line


class TinyConv(torch.nn.Module):
    """conv -> relu with 3 channels in and out, so an image output is possible."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


class TinyClassifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(x), dim=1)


@pytest.fixture(scope="module")
def ct():
    return coremltools()


@pytest.fixture(scope="module")
def conv() -> tuple[torch.nn.Module, torch.jit.ScriptModule]:
    torch.manual_seed(0)
    module = TinyConv().eval()
    return module, torch.jit.trace(module, torch.rand(1, 3, 32, 32))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("inspect")


def _convert(ct, traced, inputs, **kwargs):
    kwargs.setdefault("convert_to", "neuralnetwork")
    kwargs.setdefault("minimum_deployment_target", ct.target.iOS13)
    return ct.convert(traced, inputs=inputs, **kwargs)


@pytest.fixture(scope="module")
def onnx_file(conv, folder) -> Path:
    path = folder / "tiny.onnx"
    torch.onnx.export(conv[0], (torch.rand(1, 3, 32, 32),), str(path), input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                      opset_version=17, dynamo=False)
    return path


@pytest.fixture(scope="module")
def image_mlmodel(ct, conv, folder) -> Path:
    image = ct.ImageType(name="photo", shape=(1, 3, 32, 32), scale=1 / 255, bias=[0.25, -0.5, 0.125],
                         color_layout=ct.colorlayout.RGB)
    model = _convert(ct, conv[1], [image])
    model.short_description = "a tiny denoiser"
    model.author = "modelbuild tests"
    model.license = "BSD-3-Clause"
    model.version = "1.2.3"
    model.user_defined_metadata["recipe"] = "tiny"
    model.input_description["photo"] = "the noisy photo"
    path = folder / "image.mlmodel"
    model.save(str(path))
    return path


@pytest.fixture(scope="module")
def classifier_mlmodel(ct, folder) -> Path:
    traced = torch.jit.trace(TinyClassifier().eval(), torch.rand(1, 8))
    config = ct.ClassifierConfig(["cat", "dog", "bird"])
    model = _convert(ct, traced, [ct.TensorType(name="features", shape=(1, 8))], classifier_config=config)
    path = folder / "classifier.mlmodel"
    model.save(str(path))
    return path


@pytest.fixture(scope="module")
def range_mlmodel(ct, conv, folder) -> Path:
    shape = (1, 3, ct.RangeDim(16, 64, default=32), ct.RangeDim(8, -1, default=32))
    path = folder / "range.mlmodel"
    _convert(ct, conv[1], [ct.TensorType(name="x", shape=shape)]).save(str(path))
    return path


@pytest.fixture(scope="module")
def enumerated_mlmodel(ct, conv, folder) -> Path:
    shapes = ct.EnumeratedShapes(shapes=[(1, 3, 16, 16), (1, 3, 32, 48)])
    path = folder / "enumerated.mlmodel"
    _convert(ct, conv[1], [ct.TensorType(name="x", shape=shapes)]).save(str(path))
    return path


@pytest.fixture(scope="module")
def program(ct, conv, folder):
    image = ct.ImageType(name="picture", shape=(1, 3, ct.RangeDim(16, 64, default=32), 32),
                         scale=1 / 255, bias=[0.5, 0.25, 0.125])
    model = _convert(ct, conv[1], [image], convert_to="mlprogram",
                     minimum_deployment_target=ct.target.iOS16)
    path = folder / "program.mlpackage"
    model.save(str(path))
    return path, model


def test_onnx_description_lists_symbolic_dims_opset_and_nodes(onnx_file, conv):
    import onnx

    description = describe(onnx_file)
    graph = onnx.load(str(onnx_file)).graph
    assert description["format"] == "onnx"
    assert description["opsets"]["ai.onnx"] == 17
    assert description["inputs"] == [{"name": "x", "type": "tensor", "dtype": "FLOAT",
                                      "shape": ["batch", 3, 32, 32]}]
    assert [o["name"] for o in description["outputs"]] == ["y"]
    assert description["ops"]["counts"] == dict(Counter(node.op_type for node in graph.node))
    assert description["parameters"] == sum(p.numel() for p in conv[0].parameters())
    assert description["size_bytes"] == onnx_file.stat().st_size
    text = describe_file(onnx_file)
    assert text.splitlines()[0].startswith(f"{onnx_file}  (ONNX opset 17")
    assert "x  tensor [batch, 3, 32, 32] FLOAT" in text
    assert "nodes (2): " in text


def test_onnx_histogram_counts_nodes_inside_subgraphs(tmp_path):
    from onnx import TensorProto, helper

    def branch(name: str, op_type: str):
        out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [2])
        return helper.make_graph([helper.make_node(op_type, ["x"], [f"{name}_out"])], name, [], [out])

    node = helper.make_node("If", ["cond"], ["y"], then_branch=branch("then", "Relu"),
                            else_branch=branch("else", "Neg"))
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                      helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    path = tmp_path / "if.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    assert describe(path)["ops"]["counts"] == {"If": 1, "Neg": 1, "Relu": 1}


def test_image_input_shows_size_colour_and_scaler(image_mlmodel, ct):
    spec = ct.utils.load_spec(str(image_mlmodel))
    description = describe(image_mlmodel)
    assert description["model_type"] == "neuralNetwork"
    assert description["specification_version"] == spec.specificationVersion == 4
    assert description["minimum_deployment_target"].startswith("iOS13")
    [photo] = description["inputs"]
    assert photo == {"name": "photo", "type": "image", "width": 32, "height": 32, "color_space": "RGB",
                     "description": "the noisy photo"}
    [preprocessing] = description["preprocessing"]
    assert preprocessing["feature"] == "photo"
    assert preprocessing["scale"] == pytest.approx(1 / 255, rel=1e-6)
    assert preprocessing["bias"] == pytest.approx({"red": 0.25, "green": -0.5, "blue": 0.125})
    layers = [layer.WhichOneof("layer") for layer in spec.neuralNetwork.layers]
    assert description["ops"] == {"kind": "layers", "total": len(layers), "counts": dict(Counter(layers))}
    text = describe_file(image_mlmodel)
    photo_line = _feature_line(text, "photo")
    assert "image 32x32 RGB" in photo_line
    assert "preprocessing: scale 0.00392157, bias R 0.25 G -0.5 B 0.125" in photo_line
    assert '"the noisy photo"' in photo_line
    assert f"layers ({len(layers)}): " in text


def test_metadata_fields_and_user_defined_keys(image_mlmodel):
    metadata = describe(image_mlmodel)["metadata"]
    assert metadata["shortDescription"] == "a tiny denoiser"
    assert metadata["author"] == "modelbuild tests"
    assert metadata["license"] == "BSD-3-Clause"
    assert metadata["versionString"] == "1.2.3"
    assert metadata["userDefined"]["recipe"] == "tiny"
    lines = [line.strip() for line in describe_file(image_mlmodel).splitlines()]
    assert "metadata:" in lines
    assert any(line.split() == ["author", "modelbuild", "tests"] for line in lines)
    assert any(line.split() == ["recipe", "tiny"] for line in lines)


def test_classifier_shows_labels_and_outputs(classifier_mlmodel):
    description = describe(classifier_mlmodel)
    assert description["model_type"] == "neuralNetworkClassifier"
    classifier = description["classifier"]
    assert classifier["class_labels"] == 3
    assert classifier["first_labels"] == ["cat", "dog", "bird"]
    outputs = {o["name"]: o for o in description["outputs"]}
    label = classifier["predicted_feature_name"]
    probabilities = classifier["predicted_probabilities_name"]
    assert outputs[label]["type"] == "string"
    assert outputs[probabilities] == {"name": probabilities, "type": "dictionary", "key_type": "string"}
    text = describe_file(classifier_mlmodel)
    assert (f"classifier: 3 string labels (cat, dog, bird); label -> {label}, "
            f"probabilities -> {probabilities}") in text
    assert _feature_line(text, probabilities).split()[1:] == ["dictionary", "string", "->", "double"]
    assert _feature_line(text, label).split()[1:] == ["string"]


def test_shape_range_with_unbounded_dimension(range_mlmodel):
    [x] = describe(range_mlmodel)["inputs"]
    assert x["shape"] == [1, 3, 32, 32]
    assert x["shape_range"] == [[1, 1], [3, 3], [16, 64], [8, None]]
    assert "flexible [1, 3, 16..64, 8..]" in describe_file(range_mlmodel)


def test_enumerated_shapes(enumerated_mlmodel):
    [x] = describe(enumerated_mlmodel)["inputs"]
    assert x["enumerated_shapes"] == [[1, 3, 16, 16], [1, 3, 32, 48]]
    assert "shapes [1, 3, 16, 16] | [1, 3, 32, 48]" in describe_file(enumerated_mlmodel)


def test_mlpackage_program_ops_sizes_and_image_preprocessing(program):
    path, model = program
    description = describe(path)
    assert description["model_type"] == "mlProgram"
    assert description["mil_opsets"] == ["CoreML6"]
    mil_ops = [op.op_type for op in model._mil_program.functions["main"].operations]
    assert description["ops"]["counts"] == dict(Counter(mil_ops))
    files = [f for f in path.rglob("*") if f.is_file()]
    assert description["size_bytes"] == sum(f.stat().st_size for f in files)
    assert description["weights_bytes"] == sum(f.stat().st_size for f in files if f.name == "weight.bin")
    [picture] = description["inputs"]
    assert picture["size_range"] == {"width": [32, 32], "height": [16, 64]}
    [preprocessing] = description["preprocessing"]
    assert preprocessing["scale"] == pytest.approx(1 / 255, rel=1e-3)  # may be stored as fp16
    assert preprocessing["bias"] == pytest.approx({"red": 0.5, "green": 0.25, "blue": 0.125}, rel=1e-3)
    text = describe_file(path)
    assert f"ops ({len(mil_ops)}, CoreML6): " in text
    assert "conv 1" in text and "relu 1" in text
    picture_line = _feature_line(text, "picture")
    assert "image 32x32 RGB" in picture_line and "sizes 32 x 16..64" in picture_line
    assert "preprocessing: scale 0.00392157, bias R 0.5 G 0.25 B 0.125" in picture_line


def test_pipeline_describes_each_stage(image_mlmodel, ct, tmp_path):
    stage = ct.utils.load_spec(str(image_mlmodel))
    spec = ct.proto.Model_pb2.Model(specificationVersion=stage.specificationVersion)
    spec.description.CopyFrom(stage.description)
    spec.pipeline.models.add().CopyFrom(stage)
    path = tmp_path / "pipeline.mlmodel"
    ct.utils.save_spec(spec, str(path))
    description = describe(path)
    assert description["model_type"] == "pipeline"
    assert [s["model_type"] for s in description["pipeline"]] == ["neuralNetwork"]
    assert description["pipeline"][0]["ops"] == describe(image_mlmodel)["ops"]
    assert "stage 0: neuralNetwork" in describe_file(path)


def test_descriptions_are_json_serialisable(onnx_file, image_mlmodel, classifier_mlmodel, program):
    for path in (onnx_file, image_mlmodel, classifier_mlmodel, program[0]):
        description = describe(path)
        assert json.loads(json.dumps(description)) == description


@pytest.mark.parametrize("name, content, fragment", [
    ("model.txt", b"hello", "the extension '.txt' is not supported"),
    ("broken.onnx", b"\xff\xfe not protobuf", "as an ONNX model"),
    ("broken.mlmodel", b"\xff\xfe not protobuf", "as a Core ML model"),
    ("empty.mlmodel", b"", "names no model type"),
    ("file.mlpackage", b"x", "an .mlpackage must be a folder"),
])
def test_unreadable_paths_raise_a_sentence_naming_the_path(tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InspectError) as caught:
        describe(path)
    message = str(caught.value)
    assert str(path) in message and fragment in message
    assert ".onnx, .mlmodel or .mlpackage" in message or "folder" in message


def test_empty_mlpackage_folder_is_reported(tmp_path):
    path = tmp_path / "hollow.mlpackage"
    path.mkdir()
    with pytest.raises(InspectError, match="as a Core ML model"):
        describe(path)


def test_human_size_uses_decimal_units():
    assert [human_size(n) for n in (0, 999, 1000, 1_234_567, 5 * 10**9)] == \
        ["0 B", "999 B", "1.0 kB", "1.2 MB", "5.0 GB"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelbuild", "inspect", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli_prints_the_description(image_mlmodel):
    result = _cli(str(image_mlmodel))
    assert result.returncode == 0, result.stderr
    assert "photo" in result.stdout and "image 32x32 RGB" in result.stdout
    assert "Failed to load" not in result.stdout + result.stderr


def test_cli_missing_file_exits_2_with_the_message(tmp_path):
    missing = tmp_path / "absent.mlmodel"
    result = _cli(str(missing))
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"Cannot inspect {missing}: there is no file or folder at that path" in result.stderr


def test_long_histograms_wrap_between_entries(onnx_file):
    from modelbuild.inspection.text import WIDTH, render

    counts = {f"op_type_{i}": 40 - i for i in range(40)}
    description = {**describe(onnx_file), "ops": {"kind": "nodes", "total": sum(counts.values()),
                                                  "counts": counts}}
    lines = render(description).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("nodes ("))
    end = next(i for i, line in enumerate(lines) if line.startswith("initializers:"))
    histogram = lines[start:end]
    assert len(histogram) > 1 and all(len(line) <= WIDTH for line in histogram)
    entries = " ".join(histogram).split(":", 1)[1].split(",")
    assert [entry.split() for entry in entries] == [[name, str(count)] for name, count in counts.items()]
