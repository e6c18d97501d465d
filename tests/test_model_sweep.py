"""A fast subset of the model-coverage sweep (benchmarks/model_sweep.py runs all 35 models, 3 routes each):
real architectures built from their recipes with no wrapper, one route each, validated against PyTorch."""
from __future__ import annotations

import pytest

import model_sweep

pytestmark = pytest.mark.slow

SUBSET = {  # model -> route: one of each family and each route
    "tv-squeezenet1-1": "nn",
    "tv-mobilenet-v3-small": "program_fp16",
    "tv-lraspp-mobilenet-v3-large": "program",  # a dict output
    "timm-regnetx-002": "nn",
    "hf-distilbert": "program",  # int64 token ids, a ModelOutput
    "hf-gpt2": "nn",
}


@pytest.mark.parametrize("model", list(SUBSET))
def test_model_builds_and_validates(model, tmp_path):
    route = SUBSET[model]
    results, _ = model_sweep.build(model_sweep.RECIPES / f"{model}.yaml", [route], tmp_path, timeout=900)
    result = results[route]
    assert result.status == "pass", f"{model} {route}: {result.cell()}"
    assert "max rel" in result.detail
