"""The HTML report renders in a real browser: headless Chromium loads every inline picture and paints it."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from projects import run_doit

from modelbuild.validation.html import png_data_uri

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed "
                                                   "(.ci/run installs Debian's chromium)")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROBE = ("<script>window.addEventListener('load', () => { const imgs = [...document.images]; "
         "document.title = 'images ' + imgs.filter(i => i.complete && i.naturalWidth > 0).length + '/' + imgs.length; });"
         "</script></body>")


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def report_page(tiny_project, monkeypatch):
    code, _ = run_doit(tiny_project, monkeypatch)
    assert code == 0
    return tiny_project / "artifacts" / "tiny" / "report.html"


def test_every_inline_picture_loads(report_page, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text(report_page.read_text().replace("</body>", PROBE))
    dom = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()).stdout
    loaded, total = map(int, re.search(r"<title>images (\d+)/(\d+)</title>", dom).groups())
    assert total >= 4 and loaded == total
    assert "Validation of tiny: " in dom and "passed" in dom


def test_screenshot_shows_the_page(report_page, tmp_path):
    shot = tmp_path / "report.png"
    chromium(tmp_path, "--window-size=1200,1600", f"--screenshot={shot}", report_page.as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB"), np.float32)
    assert pixels.shape == (1600, 1200, 3)
    assert pixels.std() > 10  # text, tables and pictures, not a blank page
    green = (pixels[..., 1] > 100) & (pixels[..., 0] < 60) & (pixels[..., 2] < 90)
    assert green[:120].any()  # the green "passed" in the heading


def test_data_uri_round_trips():
    picture = (np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5)
    import base64
    import io

    data = base64.b64decode(png_data_uri(picture).split(",", 1)[1])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), picture)
