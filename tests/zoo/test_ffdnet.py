"""FFDNet: its rank-5 pixel (un)shuffle, the official weights, and real denoising in torch and ONNX."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from projects import REPO, SHARED_WEIGHTS

from modelbuild.metrics import add_gaussian_noise, psnr
from modelbuild.recipe.schema import Weights
from modelbuild.torch_model import load_weights
from modelbuild.zoo.ffdnet import FFDNet, depth_to_space, space_to_depth

OFFICIAL_RENAME = {"intermediate_dncnn.itermediate_dncnn.": "body."}
needs_weights = pytest.mark.skipif(not (SHARED_WEIGHTS / "net_rgb.pth").is_file(),
                                   reason="official FFDNet weights are not in ../shared/weights/ffdnet")


@pytest.mark.parametrize("shape", [(1, 3, 8, 6), (2, 1, 4, 10)])
def test_space_to_depth_is_pixel_unshuffle(shape):
    x = torch.rand(shape)
    assert torch.equal(space_to_depth(x), F.pixel_unshuffle(x, 2))
    assert torch.equal(depth_to_space(space_to_depth(x)), x)
    assert torch.equal(depth_to_space(x.repeat(1, 4, 1, 1)), F.pixel_shuffle(x.repeat(1, 4, 1, 1), 2))


def test_output_is_input_minus_predicted_noise_clamped():
    torch.manual_seed(0)
    model = FFDNet(channels=1, features=4, layers=3).eval()
    x, sigma = torch.rand(1, 1, 8, 8), torch.tensor([0.1])
    features = torch.cat([sigma.reshape(1, 1, 1, 1).expand(1, 1, 4, 4), F.pixel_unshuffle(x, 2)], 1)
    expected = torch.clamp(x - F.pixel_shuffle(model.body(features), 2), 0, 1)
    assert torch.allclose(model(x, sigma), expected)


def test_rejects_unknown_channel_count():
    with pytest.raises(ValueError, match="FFDNet channels must be 1 \\(grayscale\\) or 3 \\(colour\\), not 2"):
        FFDNet(channels=2)


@needs_weights
@pytest.mark.parametrize("channels, file", [(3, "net_rgb.pth"), (1, "net_gray.pth")])
def test_official_weights_load_strictly(channels, file):
    model = FFDNet(channels=channels)
    load_weights(model, SHARED_WEIGHTS / file, Weights(path=file, strip_prefix="module.", rename=OFFICIAL_RENAME))
    assert model.body[0].weight.shape[0] == (96 if channels == 3 else 64)


def official_rgb_model() -> FFDNet:
    """The colour FFDNet with the official IPOL weights, in eval mode."""
    model = FFDNet(channels=3)
    load_weights(model, SHARED_WEIGHTS / "net_rgb.pth",
                 Weights(path="net_rgb.pth", strip_prefix="module.", rename=OFFICIAL_RENAME))
    return model.eval()


@needs_weights
@pytest.mark.slow
def test_torch_and_onnx_denoise_the_astronaut_equally_well(tmp_path):
    import onnxruntime

    clean = np.asarray(Image.open(REPO / "samples" / "astronaut.png").convert("RGB"), np.float32) / 255.0
    clean = clean.transpose(2, 0, 1)[None]
    sigma = 25 / 255
    noisy = add_gaussian_noise(clean, sigma, seed=0)
    model = official_rgb_model()
    x, s = torch.from_numpy(noisy), torch.tensor([sigma], dtype=torch.float32)
    with torch.no_grad():
        denoised_torch = model(x, s).numpy()
    torch.onnx.export(model, (x, s), str(tmp_path / "ffdnet.onnx"), input_names=["x", "sigma"],
                      output_names=["y"], opset_version=17, dynamo=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "ffdnet.onnx"), providers=["CPUExecutionProvider"])
    denoised_onnx = session.run(["y"], {"x": noisy, "sigma": s.numpy()})[0]

    noisy_db = psnr(np.clip(noisy, 0, 1), clean)
    torch_db, onnx_db = psnr(denoised_torch, clean), psnr(denoised_onnx, clean)
    print(f"\nastronaut sigma 25: noisy {noisy_db:.2f} dB -> torch {torch_db:.2f} dB, onnxruntime {onnx_db:.2f} dB")
    assert 20.0 < noisy_db < 22.0
    assert torch_db > noisy_db + 11.0
    assert abs(torch_db - onnx_db) < 0.01


@pytest.mark.parametrize("height, width", [(33, 46), (31, 31), (32, 32)])
def test_pad_odd_repeats_the_last_row_and_column_then_crops(height, width):
    torch.manual_seed(0)
    model = FFDNet(channels=3, features=8, layers=3, pad_odd=True).eval()
    x, sigma = torch.rand(1, 3, height, width), torch.tensor([0.1])
    padded = x  # the IPOL reference: pad only what is odd, denoise, crop back
    if height % 2:
        padded = torch.cat([padded, padded[:, :, -1:, :]], dim=2)
    if width % 2:
        padded = torch.cat([padded, padded[:, :, :, -1:]], dim=3)
    plain = FFDNet(channels=3, features=8, layers=3).eval()
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(model(x, sigma), plain(padded, sigma)[:, :, :height, :width])
