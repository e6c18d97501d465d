"""branch and loop layers (with loopBreak / loopContinue) over a shared blob scope."""
from __future__ import annotations

import numpy as np
import pytest


def _nested(nn_spec):
    from coremltools.models.neural_network import NeuralNetworkBuilder

    return NeuralNetworkBuilder(nn_spec=nn_spec, disable_rank5_shape_mapping=True)


@pytest.mark.ops("branch", "copy", "activation")
@pytest.mark.parametrize("condition, expected_scale", [(1.0, 2.0), (0.0, -1.0), (1e-7, -1.0)])
def test_branch_runs_if_or_else(run_layer, condition, expected_scale):
    def add(builder):
        layer = builder.add_branch("branch", "cond")
        then = _nested(layer.branch.ifBranch)
        then.add_activation("double", "LINEAR", "x", "y", params=[2.0, 0.0])
        otherwise = _nested(layer.branch.elseBranch)
        otherwise.add_activation("negate", "LINEAR", "x", "y", params=[-1.0, 0.0])

    x = np.array([1.0, -2.0, 3.0], dtype=np.float32)
    y = run_layer(add, {"x": x, "cond": np.array([condition])})
    np.testing.assert_allclose(y, expected_scale * x)


@pytest.mark.ops("loop", "copy", "add")
def test_for_loop_with_iteration_count_from_an_input(run_layer):
    def add(builder):
        builder.add_copy("start", "x", "acc")
        layer = builder.add_loop("loop", input_name="n")
        body = _nested(layer.loop.bodyNetwork)
        body.add_elementwise("plus", ["acc", "x"], "acc_next", "ADD")
        body.add_copy("carry", "acc_next", "acc")
        builder.add_copy("out", "acc", "y")

    x = np.array([1.0, 2.0], dtype=np.float32)
    np.testing.assert_allclose(run_layer(add, {"x": x, "n": np.array([3.0])}), 4 * x)


@pytest.mark.ops("loop", "loopBreak", "loopContinue", "branch", "greaterThan", "add", "copy")
def test_while_loop_with_condition_break_and_continue(run_layer):
    """acc += 1 while acc < 10; iterations where acc > 5 break out; a continue skips nothing after it."""
    def add(builder):
        builder.add_copy("start", "x", "acc")
        layer = builder.add_loop("loop", condition="keep", max_iterations=0)
        condition = _nested(layer.loop.conditionNetwork)
        condition.add_greater_than("lt", ["limit", "acc"], "keep")
        body = _nested(layer.loop.bodyNetwork)
        body.add_elementwise("inc", ["acc"], "acc_next", "ADD", alpha=1.0)
        body.add_copy("carry", "acc_next", "acc")
        body.add_greater_than("big", ["acc"], "is_big", alpha=5.0)
        branch = body.add_branch("maybe_break", "is_big")
        _nested(branch.branch.ifBranch).add_loop_break("stop")
        _nested(branch.branch.elseBranch).add_loop_continue("next")
        body.add_elementwise("never", ["acc"], "acc_bad", "ADD", alpha=100.0)
        body.add_copy("never_copy", "acc_bad", "acc")
        builder.add_copy("out", "acc", "y")

    y = run_layer(add, {"x": np.array([0.0]), "limit": np.array([10.0])})
    np.testing.assert_allclose(y, [6.0])
