"""Combinations that cannot work are refused with a CoreMLBuildError that says what would."""
from __future__ import annotations

import re

import pytest
import torch

from modelbuild.coreml import CoreMLBuildError, FeatureSpec, ImageInput, ImageOutput, convert

SHAPE = (1, 3, 32, 32)
INPUTS = [FeatureSpec("noisy", SHAPE), FeatureSpec("sigma", (1,))]
OUTPUTS = [FeatureSpec("denoised", SHAPE)]


def _convert(ffdnet, **overrides):
    arguments = dict(frontend="torch", torch_model=ffdnet, inputs=INPUTS, outputs=OUTPUTS,
                     format="neuralnetwork", minimum_deployment_target="iOS13")
    arguments.update(overrides)
    return convert(**arguments)


@pytest.mark.parametrize("overrides,message", [
    ({"minimum_deployment_target": "iOS15"},
     "Format 'neuralnetwork' cannot target iOS15: coremltools writes NeuralNetwork models only for "
     "iOS14/macOS11 and older. Use format 'mlprogram' for iOS15, or a NeuralNetwork target among iOS13, iOS14,"),
    ({"format": "mlprogram", "minimum_deployment_target": "iOS14"},
     "Format 'mlprogram' cannot target iOS14: ML Programs need iOS15/macOS12 or newer. Use format "
     "'neuralnetwork' for iOS14, or an ML Program target among iOS15, iOS16,"),
    ({"minimum_deployment_target": "iOS 17"},
     "Unknown minimum deployment target 'iOS 17'; expected one of iOS13, iOS14, iOS15,"),
    ({"minimum_deployment_target": "macOS10_13"}, "Unknown minimum deployment target 'macOS10_13'"),
    ({"format": "mlpackage"}, "Unknown Core ML model format 'mlpackage'; expected one of neuralnetwork, mlprogram."),
    ({"frontend": "tensorflow"}, "Unknown Core ML frontend 'tensorflow'; expected one of onnx, torch."),
    ({"compute_precision": "fp16"}, "Unknown compute precision 'fp16'; expected one of float32, float16."),
    ({"frontend": "onnx"}, "Frontend 'onnx' needs onnx_path, the ONNX file to convert; none was given."),
    ({"torch_model": "model.pt"}, "Frontend 'torch' needs torch_model, a torch.nn.Module in eval mode; got str."),
    ({"inputs": [FeatureSpec("noisy image", SHAPE), INPUTS[1]]},
     "Core ML input name 'noisy image' is not valid: names must match [A-Za-z_][A-Za-z0-9_]*"),
    ({"outputs": [FeatureSpec("denoised", (1, 3, 0, 32))]},
     "Output 'denoised' has shape (1, 3, 0, 32): give a static shape of positive integers."),
    ({"inputs": [FeatureSpec("noisy", SHAPE, image=ImageInput(color_layout="GRAYSCALE", bias=(0.0,))), INPUTS[1]]},
     "Image input 'noisy' has shape (1, 3, 32, 32); a GRAYSCALE image must be a tensor of shape (1, 1, height, width)."),
    ({"inputs": [FeatureSpec("noisy", SHAPE, image=ImageInput(bias=(0.1, 0.2))), INPUTS[1]]},
     "An image bias of 2 values (0.1, 0.2) does not fit color layout 'RGB': give 3 value(s), one per channel"),
    ({"inputs": [FeatureSpec("noisy", SHAPE, image=ImageOutput()), INPUTS[1]]},
     "Input 'noisy' declares ImageOutput; an input image must be declared with ImageInput."),
    ({"outputs": [FeatureSpec("denoised", SHAPE, image=ImageOutput(scale=0.0))]},
     "Image output 'denoised' has scale 0.0; give a finite, non-zero number."),
    ({"inputs": INPUTS[:1]},
     "torch.jit.trace failed on FFDNet with inputs of shapes [(1, 3, 32, 32)]: FFDNet.forward() missing 1 "
     "required positional argument: 'sigma'"),
    ({"outputs": [FeatureSpec("denoised", (1, 3, 64, 64))]},
     "Output 'denoised' was declared with shape (1, 3, 64, 64) but the converted model's output"),
    ({"outputs": [FeatureSpec("sigma", SHAPE)]},
     "Inputs ['noisy', 'sigma'] and outputs ['sigma'] share a name"),
])
def test_refused(ffdnet, overrides, message):
    with pytest.raises(CoreMLBuildError, match=re.escape(message)):
        _convert(ffdnet, **overrides)


def test_training_mode_refused():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.Dropout()).train()
    with pytest.raises(CoreMLBuildError, match=r"needs the model in eval mode \(Sequential is in training mode\)"):
        convert(frontend="torch", torch_model=model, inputs=[FeatureSpec("x", SHAPE)],
                outputs=[FeatureSpec("y", SHAPE)], format="mlprogram", minimum_deployment_target="iOS15")


def test_op_that_needs_a_newer_target_is_refused_with_the_reason():
    """The torch frontend lowers pixel_unshuffle to an iOS16 op: iOS15 cannot hold it."""
    model = torch.nn.PixelUnshuffle(2).eval()
    with pytest.raises(CoreMLBuildError, match=r"torch.*mlprogram for iOS15.*(iOS16|pixel_unshuffle)"):
        convert(frontend="torch", torch_model=model, inputs=[FeatureSpec("x", (1, 1, 4, 4))],
                outputs=[FeatureSpec("y", (1, 4, 2, 2))], format="mlprogram", minimum_deployment_target="iOS15")


def test_missing_onnx_file_is_named(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(CoreMLBuildError, match=re.escape(f"{str(missing)!r} does not exist")):
        convert(frontend="onnx", onnx_path=missing, inputs=INPUTS, outputs=OUTPUTS,
                format="mlprogram", minimum_deployment_target="iOS15")


def test_onnx_input_count_mismatch_names_both_sides(ffdnet_onnx):
    with pytest.raises(CoreMLBuildError, match=re.escape(
            "The converted model has 2 input(s) ['input.1', 'x'] but 1 were declared ['noisy']; declare them all")):
        convert(frontend="onnx", onnx_path=ffdnet_onnx, inputs=INPUTS[:1], outputs=OUTPUTS,
                format="neuralnetwork", minimum_deployment_target="iOS13")
