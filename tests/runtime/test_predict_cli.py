"""`python -m modelbuild predict`: images, .npy files and numbers in; PNG and .npy out."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modelbuild.runtime.predict_cli import PredictCliError, predict_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def model_path(make_builder, ct, tmp_path) -> Path:
    """y = x * sigma on an RGB image input (scale 1/255) with an RGB image output of x * 255."""
    builder = make_builder({"x": (1, 3, 4, 6), "sigma": (1,)}, ["y", "image_out"])
    builder.add_broadcast_to_static("bcast", "sigma", "sigma_b", output_shape=[1, 3, 4, 6])
    builder.add_multiply_broadcastable("mul", ["x", "sigma_b"], "y")
    builder.add_activation("to255", "LINEAR", "x", "image_out", params=[255.0, 0.0])
    builder.set_pre_processing_parameters(image_input_names=["x"], image_scale=1 / 255.0)
    spec = builder.spec
    out = spec.description.output[1]
    out.type.imageType.width, out.type.imageType.height, out.type.imageType.colorSpace = 6, 4, 20
    path = tmp_path / "model.mlmodel"
    ct.utils.save_spec(spec, str(path))
    return path


def _image(tmp_path: Path) -> tuple[Path, np.ndarray]:
    pixels = np.random.default_rng(0).integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    path = tmp_path / "img.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


@pytest.mark.ops("broadcastToStatic", "multiplyBroadcastable", "activation")
def test_predict_command_writes_png_and_npy(model_path, tmp_path):
    image_path, pixels = _image(tmp_path)
    out_dir = tmp_path / "out"
    report = predict_command(model_path, [f"x={image_path}", "sigma=0.5"], out_dir, backend="reference")
    assert "y: array float64 [1, 3, 4, 6]" in report and "image_out: image RGB 6x4" in report
    y = np.load(out_dir / "y.npy")
    np.testing.assert_allclose(y, pixels.transpose(2, 0, 1)[None] / 255.0 * 0.5, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(Image.open(out_dir / "image_out.png")), pixels)


def test_predict_command_accepts_npy_and_reports_bad_inputs(model_path, tmp_path):
    image_path, _ = _image(tmp_path)
    np.save(tmp_path / "sigma.npy", np.array([2.0], dtype=np.float32))
    report = predict_command(model_path, [f"x={image_path}", f"sigma={tmp_path / 'sigma.npy'}"], None, "reference")
    assert "(neuralNetwork, reference backend)" in report
    with pytest.raises(PredictCliError, match="is not NAME=VALUE"):
        predict_command(model_path, ["x"], None, "reference")
    with pytest.raises(PredictCliError, match="the model has no input 'z'; its inputs are 'x', 'sigma'"):
        predict_command(model_path, ["z=1"], None, "reference")
    with pytest.raises(PredictCliError, match="expected an image file .* a .npy file or a number"):
        predict_command(model_path, [f"x={image_path}", "sigma=abc"], None, "reference")
    with pytest.raises(PredictCliError, match=r"missing input\(s\) 'sigma'"):
        predict_command(model_path, [f"x={image_path}"], None, "reference")



@pytest.mark.ops("read_state", "coreml_update_state")
def test_predict_command_runs_a_stateful_model_from_a_fresh_state(ct, tmp_path):
    from coremltools.converters.mil.mil import types

    from modelbuild.runtime.mil.testing import mb, to_mlmodel

    @mb.program(input_specs=[mb.StateTensorSpec((3,), dtype=types.fp16), mb.TensorSpec((3,), dtype=types.fp16)],
                opset_version=ct.target.iOS18)
    def program(total, x):
        updated = mb.add(x=mb.add(x=mb.read_state(input=total), y=x), y=np.float16(1))
        return mb.coreml_update_state(state=total, value=updated)

    path = tmp_path / "stateful.mlpackage"
    to_mlmodel(program, target="iOS18").save(str(path))
    x = np.array([1.0, 2.0, -4.0], np.float16)
    np.save(tmp_path / "x.npy", x)
    report = predict_command(path, [f"x={tmp_path / 'x.npy'}"], tmp_path / "out", "reference")
    assert "from a fresh state (zeros): 'total'" in report
    (output,) = (tmp_path / "out").glob("*.npy")
    np.testing.assert_array_equal(np.load(output), x + 1)

def test_python_dash_m_modelbuild_predict(model_path, tmp_path):
    image_path, _ = _image(tmp_path)
    out_dir = tmp_path / "cli_out"
    done = subprocess.run(
        [sys.executable, "-m", "modelbuild", "predict", str(model_path), "--input", f"x={image_path}",
         "--input", "sigma=0.1", "-o", str(out_dir), "--backend", "reference"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (out_dir / "y.npy").exists() and (out_dir / "image_out.png").exists()
    assert "Failed to load" not in done.stdout + done.stderr
    bad = subprocess.run([sys.executable, "-m", "modelbuild", "predict", str(tmp_path / "nope.mlmodel")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "No Core ML model at" in bad.stderr
