"""Tolerance checks: NaN figures fail every check, identical outputs (infinite PSNR) pass."""
from __future__ import annotations

import math

import pytest

from modelbuild.recipe.schema import Tolerance
from modelbuild.validation.tolerances import FLOAT16_DEFAULT, FLOAT32_DEFAULT, checks


@pytest.mark.parametrize("tolerance", [FLOAT16_DEFAULT, FLOAT32_DEFAULT, Tolerance(max_abs=1.0)])
def test_nan_figures_fail(tolerance):
    figures = {"max_abs": math.nan, "max_rel": math.nan, "psnr": math.nan, "scale": 5194.4}
    found = checks(tolerance, figures)
    assert found and not any(check.passed for check in found)


def test_identical_outputs_pass_a_psnr_limit():
    found = checks(FLOAT16_DEFAULT, {"max_abs": 0.0, "max_rel": 0.0, "psnr": math.inf, "scale": 1.0})
    assert [check.passed for check in found] == [True]
