"""load() and Model.predict: sources, backends, input checks, images, classifiers, pipelines."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from PIL import Image

from modelbuild.runtime import InputError, ModelRuntimeError, ShapeMismatchError, UnsupportedOpError, load


def _scale_model(make_builder, shape=(1, 3, 4, 5), alpha=2.0, beta=0.5):
    builder = make_builder({"x": shape}, ["y"])
    builder.add_activation("lin", "LINEAR", "x", "y", params=[alpha, beta])
    return builder


@pytest.mark.ops("activation")
def test_load_from_spec_path_and_mlmodel(ct, make_builder, tmp_path, rng=np.random.default_rng(1)):
    spec = _scale_model(make_builder).spec
    x = rng.standard_normal((1, 3, 4, 5)).astype(np.float32)
    path = tmp_path / "scale.mlmodel"
    ct.utils.save_spec(spec, str(path))
    mlmodel = ct.models.MLModel(spec, skip_model_load=True)
    for source in (spec, path, str(path), mlmodel):
        model = load(source, backend="reference")
        assert model.backend == "reference"
        assert model.input_names == ["x"] and model.output_names == ["y"]
        np.testing.assert_allclose(model.predict({"x": x})["y"], 2.0 * x + 0.5, rtol=1e-6)


def test_load_refuses_unknown_sources_and_backends(make_builder, tmp_path):
    with pytest.raises(ModelRuntimeError, match="No Core ML model at"):
        load(tmp_path / "missing.mlmodel")
    with pytest.raises(ModelRuntimeError, match="Cannot load a Core ML model from a int"):
        load(3)
    with pytest.raises(ModelRuntimeError, match="Unknown backend 'gpu'; choose one of auto, reference, native"):
        load(_scale_model(make_builder).spec, backend="gpu")


@pytest.mark.skipif(sys.platform == "darwin", reason="the native backend works on macOS")
def test_native_backend_needs_macos_and_auto_falls_back(make_builder):
    spec = _scale_model(make_builder).spec
    with pytest.raises(ModelRuntimeError, match="native backend runs Apple's Core ML and needs macOS"):
        load(spec, backend="native")
    assert load(spec).backend == "reference"


def test_missing_and_extra_inputs_are_named(make_builder):
    model = load(_scale_model(make_builder).spec, backend="reference")
    with pytest.raises(InputError, match=r"missing input\(s\) 'x'; unknown input\(s\) 'z'. The model declares: 'x'"):
        model.predict({"z": np.zeros((1, 3, 4, 5))})


def test_wrong_input_shape_is_refused(make_builder):
    model = load(_scale_model(make_builder).spec, backend="reference")
    with pytest.raises(ShapeMismatchError, match=r"Input 'x' has shape \[1, 3, 4, 4\], but the model accepts \[1, 3, 4, 5\]"):
        model.predict({"x": np.zeros((1, 3, 4, 4))})


def test_shape_range_accepts_inside_and_refuses_outside(ct, make_builder):
    from coremltools.models.neural_network import flexible_shape_utils as flex

    spec = _scale_model(make_builder).spec
    flex.set_multiarray_ndshape_range(spec, "x", lower_bounds=[1, 3, 2, 2], upper_bounds=[1, 3, 8, -1])
    model = load(spec, backend="reference")
    assert model.inputs["x"].shape_ranges == ((1, 1), (3, 3), (2, 8), (2, -1))
    x = np.ones((1, 3, 8, 100), dtype=np.float32)
    np.testing.assert_allclose(model.predict({"x": x})["y"], 2.5 * x)
    with pytest.raises(ShapeMismatchError, match=r"\[1, 3, 9, 4\].*accepts \[1..1, 3..3, 2..8, 2..inf\]"):
        model.predict({"x": np.ones((1, 3, 9, 4))})


def test_enumerated_shapes_accept_only_the_listed_shapes(ct, make_builder):
    from coremltools.models.neural_network import flexible_shape_utils as flex

    spec = _scale_model(make_builder).spec
    flex.add_multiarray_ndshape_enumeration(spec, "x", [(1, 3, 4, 5), (1, 3, 8, 8)])
    model = load(spec, backend="reference")
    assert model.predict({"x": np.zeros((1, 3, 8, 8))})["y"].shape == (1, 3, 8, 8)
    with pytest.raises(ShapeMismatchError, match=r"one of \[1, 3, 4, 5\], \[1, 3, 8, 8\]"):
        model.predict({"x": np.zeros((1, 3, 4, 8))})


def _image(rng, width, height, mode="RGB"):
    channels = 1 if mode == "L" else 3
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode=mode)


@pytest.mark.ops("activation")
@pytest.mark.parametrize("is_bgr", [False, True])
def test_image_input_layout_and_scaler(make_builder, is_bgr):
    rng = np.random.default_rng(2)
    builder = _scale_model(make_builder, alpha=1.0, beta=0.0)
    builder.set_pre_processing_parameters(image_input_names=["x"], is_bgr=is_bgr, red_bias=-1.0,
                                          green_bias=-2.0, blue_bias=-3.0, image_scale=0.5)
    model = load(builder.spec, backend="reference")
    assert model.inputs["x"].kind == "image" and model.inputs["x"].color_space == ("BGR" if is_bgr else "RGB")
    image = _image(rng, 5, 4)
    rgb = np.asarray(image, dtype=np.float64).transpose(2, 0, 1)
    if is_bgr:
        expected = rgb[::-1] * 0.5 + np.array([-3.0, -2.0, -1.0]).reshape(3, 1, 1)
    else:
        expected = rgb * 0.5 + np.array([-1.0, -2.0, -3.0]).reshape(3, 1, 1)
    np.testing.assert_allclose(model.predict({"x": image})["y"], expected[None], rtol=1e-6)


def test_grayscale_image_with_gray_bias(make_builder):
    builder = _scale_model(make_builder, shape=(1, 1, 3, 3), alpha=1.0, beta=0.0)
    builder.set_pre_processing_parameters(image_input_names=["x"], gray_bias=-10.0, image_scale=2.0)
    model = load(builder.spec, backend="reference")
    image = _image(np.random.default_rng(3), 3, 3, "L")
    expected = np.asarray(image, dtype=np.float64)[None, None] * 2.0 - 10.0
    np.testing.assert_allclose(model.predict({"x": image})["y"], expected)


def test_image_size_is_checked_and_flexible_sizes_accepted(ct, make_builder):
    from coremltools.models.neural_network import flexible_shape_utils as flex

    builder = _scale_model(make_builder, alpha=1.0, beta=0.0)
    builder.set_pre_processing_parameters(image_input_names=["x"])
    model = load(builder.spec, backend="reference")
    with pytest.raises(ShapeMismatchError, match=r"Input image 'x' is 6x4 \(WxH\).*\[4, 5\]"):
        model.predict({"x": _image(np.random.default_rng(4), 6, 4)})
    with pytest.raises(InputError, match="pass a PIL.Image.Image, not ndarray"):
        model.predict({"x": np.zeros((1, 3, 4, 5))})
    spec = builder.spec
    size_range = flex.NeuralNetworkImageSizeRange()
    size_range.add_height_range((2, 10))
    size_range.add_width_range((3, 12))
    flex.update_image_size_range(spec, "x", size_range)
    model = load(spec, backend="reference")
    assert model.predict({"x": _image(np.random.default_rng(5), 12, 2)})["y"].shape == (1, 3, 2, 12)
    with pytest.raises(ShapeMismatchError, match="is 13x2"):
        model.predict({"x": _image(np.random.default_rng(5), 13, 2)})


def test_image_output_is_clipped_and_rounded(make_builder):
    builder = _scale_model(make_builder, shape=(1, 3, 2, 2), alpha=255.0, beta=0.0)
    spec = builder.spec
    out = spec.description.output[0]
    out.type.imageType.width, out.type.imageType.height = 2, 2
    out.type.imageType.colorSpace = 20  # RGB
    model = load(spec, backend="reference")
    x = np.array([-0.5, 0.0, 0.5, 0.2, 1.0, 1.5, 0.4, 0.6, 0.001, 0.999, 0.3, 0.7], dtype=np.float32).reshape(1, 3, 2, 2)
    image = model.predict({"x": x})["y"]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (2, 2)
    expected = np.clip(np.round(x[0] * np.float32(255)), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    np.testing.assert_array_equal(np.asarray(image), expected)


@pytest.mark.ops("innerProduct", "softmax")
def test_classifier_returns_label_and_probabilities(make_builder):
    rng = np.random.default_rng(6)
    builder = make_builder({"x": (4,)}, ["probs"], mode="classifier")
    w = rng.standard_normal((3, 4)).astype(np.float32)
    builder.add_inner_product("fc", w, None, 4, 3, False, "x", "logits")
    builder.add_expand_dims("ex", "logits", "logits3", axes=[-1, -2])
    builder.add_softmax("sm", "logits3", "probs")
    builder.set_class_labels(["cat", "dog", "fish"], predicted_feature_name="label", prediction_blob="probs")
    model = load(builder.spec, backend="reference")
    x = rng.standard_normal(4).astype(np.float32)
    out = model.predict({"x": x})
    logits = w.astype(np.float64) @ x
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert out["label"] == ["cat", "dog", "fish"][int(np.argmax(probs))]
    np.testing.assert_allclose([out["probs"][k] for k in ("cat", "dog", "fish")], probs, rtol=1e-5)


@pytest.mark.ops("activation")
def test_intermediate_blobs_are_returned(make_builder):
    builder = make_builder({"x": (2, 3)}, ["y"])
    builder.add_activation("a", "LINEAR", "x", "mid", params=[3.0, 0.0])
    builder.add_activation("b", "RELU", "mid", "y")
    model = load(builder.spec, backend="reference")
    x = np.array([[1.0, -2.0, 3.0], [-1.0, 0.5, 0.0]], dtype=np.float32)
    assert set(model.predict({"x": x})) == {"y"}
    out = model.predict({"x": x}, intermediate=True)
    np.testing.assert_allclose(out["mid"], 3 * x)
    np.testing.assert_allclose(out["y"], np.maximum(3 * x, 0))


def test_unsupported_layer_is_named_with_the_supported_list(make_builder):
    builder = make_builder({"x": (2, 3)}, ["y"])
    layer = builder.nn_spec.layers.add()
    layer.name, layer.input[:], layer.output[:] = "my_custom", ["x"], ["y"]
    layer.custom.className = "MyLayer"
    with pytest.raises(UnsupportedOpError, match=r"NeuralNetwork op 'custom' \(in custom layer 'my_custom'\)\. Supported: .*convolution"):
        load(builder.spec, backend="reference")


@pytest.mark.ops("reshapeStatic")
def test_legacy_rank5_output_takes_the_declared_shape(ct, make_builder):
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder

    builder = NeuralNetworkBuilder([("x", datatypes.Array(2, 3, 4))], [("y", datatypes.Array(2, 3, 4))])
    builder.add_activation("a", "LINEAR", "x", "y", params=[1.0, 1.0])
    model = load(builder.spec, backend="reference")
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    y = model.predict({"x": x})["y"]
    assert y.shape == (2, 3, 4)
    np.testing.assert_allclose(y, x + 1)


def test_regressor_and_pipeline(ct, make_builder):
    from coremltools.models import datatypes
    from coremltools.models.pipeline import Pipeline

    first = make_builder({"x": (3,)}, ["mid"], mode="regressor")
    first.add_activation("a", "LINEAR", "x", "mid", params=[2.0, 0.0])
    second = make_builder({"mid": (3,)}, ["y"])
    second.add_activation("b", "LINEAR", "mid", "y", params=[1.0, -1.0])
    x = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    np.testing.assert_allclose(load(first.spec, backend="reference").predict({"x": x})["mid"], 2 * x)
    pipeline = Pipeline([("x", datatypes.Array(3))], [("y", datatypes.Array(3))])
    pipeline.add_model(first.spec)
    pipeline.add_model(second.spec)
    model = load(pipeline.spec, backend="reference")
    np.testing.assert_allclose(model.predict({"x": x})["y"], 2 * x - 1)



@pytest.mark.ops("activation")
def test_pipeline_hands_images_from_stage_to_stage(make_builder):
    """A pipeline's stages get and give feature values: an image in, an image out, the array between them."""
    from coremltools.models import datatypes
    from coremltools.models.pipeline import Pipeline

    first = _scale_model(make_builder, shape=(1, 3, 2, 2), alpha=0.5, beta=0.0)
    first.set_pre_processing_parameters(image_input_names=["x"])
    second = make_builder({"y": (1, 3, 2, 2)}, ["out"])
    second.add_activation("double", "LINEAR", "y", "out", params=[2.0, 0.0])
    pipeline = Pipeline([("x", datatypes.Array(1, 3, 2, 2))], [("out", datatypes.Array(1, 3, 2, 2))])
    pipeline.add_model(first.spec)
    pipeline.add_model(second.spec)
    spec = pipeline.spec
    spec.description.input[0].CopyFrom(first.spec.description.input[0])
    for out in (spec.description.output[0], spec.pipeline.models[1].description.output[0]):
        out.type.imageType.width, out.type.imageType.height = 2, 2
        out.type.imageType.colorSpace = 20  # RGB
    model = load(spec, backend="reference")
    image = _image(np.random.default_rng(8), 2, 2)
    out = model.predict({"x": image}, intermediate=True)
    assert isinstance(out["out"], Image.Image) and out["out"].size == (2, 2)
    np.testing.assert_array_equal(np.asarray(out["out"]), np.asarray(image))
    np.testing.assert_allclose(out["y"], 0.5 * np.asarray(image, np.float32).transpose(2, 0, 1)[None])


def _fake_program_spec(ct):
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    spec.specificationVersion = 7
    spec.mlProgram.SetInParent()
    image = spec.description.input.add()
    image.name = "img"
    image.type.imageType.width, image.type.imageType.height = 3, 2
    image.type.imageType.colorSpace = 30  # BGR
    arr = spec.description.input.add()
    arr.name = "sigma"
    arr.type.multiArrayType.shape.append(1)
    arr.type.multiArrayType.dataType = 65552  # FLOAT16
    out = spec.description.output.add()
    out.name = "out"
    out.type.multiArrayType.dataType = 65568
    scalar = spec.description.output.add()
    scalar.name = "scalar"
    scalar.type.multiArrayType.dataType = 65568
    return spec


def test_ml_program_goes_to_the_mil_interpreter(ct, monkeypatch):
    seen = {}

    class FakeProgram:
        @classmethod
        def from_spec(cls, spec, weights_dir):
            seen["weights_dir"] = weights_dir
            return cls()

        def run(self, feeds, *, intermediate=False):
            seen["feeds"] = feeds
            return {"out": feeds["img"].sum(axis=1), "scalar": np.float32(2.5), "extra": 1.0}

    fake = types.ModuleType("modelbuild.runtime.mil")
    fake.Program = FakeProgram
    monkeypatch.setitem(sys.modules, "modelbuild.runtime.mil", fake)
    model = load(_fake_program_spec(ct), backend="reference", weights_dir="/somewhere")
    image = Image.fromarray(np.arange(18, dtype=np.uint8).reshape(2, 3, 3), mode="RGB")
    out = model.predict({"img": image, "sigma": np.array([0.5])})
    feeds = seen["feeds"]
    assert str(seen["weights_dir"]) == "/somewhere"
    assert feeds["img"].dtype == np.float32 and feeds["img"].shape == (1, 3, 2, 3)
    np.testing.assert_array_equal(feeds["img"][0], np.asarray(image, dtype=np.float32).transpose(2, 0, 1)[::-1])
    assert feeds["sigma"].dtype == np.float16
    assert set(out) == {"out", "scalar"}
    assert out["scalar"].shape == (1,) and out["scalar"][0] == 2.5  # MLMultiArray has no rank 0


def test_mean_image_preprocessing(make_builder):
    builder = _scale_model(make_builder, shape=(1, 3, 2, 2), alpha=1.0, beta=0.0)
    builder.set_pre_processing_parameters(image_input_names=["x"])
    spec = builder.spec
    step = spec.neuralNetwork.preprocessing[0]
    mean = np.arange(12, dtype=np.float32)
    step.meanImage.meanImage.extend(mean)
    model = load(spec, backend="reference")
    image = _image(np.random.default_rng(7), 2, 2)
    expected = np.asarray(image, dtype=np.float64).transpose(2, 0, 1) - mean.reshape(3, 2, 2)
    np.testing.assert_allclose(model.predict({"x": image})["y"], expected[None])


def test_feature_descriptions_and_summary(ct, make_builder):
    from coremltools.models.neural_network import flexible_shape_utils as flex

    builder = _scale_model(make_builder)
    builder.set_pre_processing_parameters(image_input_names=["x"], is_bgr=True)
    spec = builder.spec
    flex.add_enumerated_image_sizes(spec, "x", [flex.NeuralNetworkImageSize(4, 5), flex.NeuralNetworkImageSize(8, 10)])
    model = load(spec, backend="reference")
    desc = model.input_description["x"]
    assert (desc.kind, desc.color_space, desc.shape) == ("image", "BGR", (4, 5))
    assert desc.enumerated_shapes == ((4, 5), (8, 10)) and desc.is_flexible
    assert "x: image BGR 5x4 (WxH), one of [[4, 5], [8, 10]]" in model.describe()
    assert model.output_description["y"].kind == "multiArray"
    assert model.predict({"x": _image(np.random.default_rng(8), 10, 8)})["y"].shape == (1, 3, 8, 10)
