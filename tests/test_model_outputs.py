"""Picking the recipe's outputs out of tensors, tuples, dicts, namedtuples and dataclasses."""
from __future__ import annotations

import dataclasses
from collections import OrderedDict, namedtuple

import pytest
import torch

from modelbuild.model_outputs import OutputSelectionError, select_outputs, tensor_paths
from modelbuild.recipe.schema import Recipe

Pair = namedtuple("Pair", ["main", "extra"])


@dataclasses.dataclass
class Output:
    logits: torch.Tensor
    hidden: tuple | None = None
    loss: float | None = None


class Returns(torch.nn.Module):
    """A model whose forward returns `make(x)`."""

    def __init__(self, make):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(2.0))
        self.make = make

    def forward(self, x):
        return self.make(x * self.scale)


def _recipe(outputs: dict) -> Recipe:
    return Recipe.model_validate({"name": "r", "model": {"factory": "m:f"}, "inputs": {"x": {"shape": [1, 3]}},
                                  "outputs": outputs})


def _run(make, outputs: dict):
    x = torch.ones(1, 3)
    return select_outputs(Returns(make), _recipe(outputs))(x)


def test_a_plain_tensor_or_tuple_passes_through():
    assert torch.equal(_run(lambda y: y, {"y": {}}), torch.full((1, 3), 2.0))
    first, second = _run(lambda y: (y, y + 1), {"a": {}, "b": {}})
    assert torch.equal(second, torch.full((1, 3), 3.0))


def test_dict_outputs_are_found_by_name_or_path():
    segmentation = lambda y: OrderedDict(out=y, aux=y * 10)  # noqa: E731 - torchvision's segmentation models
    assert torch.equal(_run(segmentation, {"out": {}}), torch.full((1, 3), 2.0))
    assert torch.equal(_run(segmentation, {"mask": {"path": "aux"}}), torch.full((1, 3), 20.0))
    out, aux = _run(segmentation, {"aux": {}, "out": {}})
    assert out[0, 0] == 20 and aux[0, 0] == 2  # recipe order, picked by name


def test_nested_paths_through_dataclasses_namedtuples_and_sequences():
    nested = lambda y: Output(logits=y, hidden=(y + 1, Pair(y + 2, y + 3)))  # noqa: E731
    assert _run(nested, {"h": {"path": "hidden.1.extra"}})[0, 0] == 5
    assert _run(nested, {"logits": {}})[0, 0] == 2


def test_unnamed_dict_output_lists_what_the_model_returns():
    with pytest.raises(OutputSelectionError) as caught:
        _run(lambda y: {"out": y, "aux": y}, {"mask": {}})
    assert str(caught.value) == ("outputs.mask: the model returns a dict (keys out, aux) with no 'mask'; name the "
                                 "output after one of its tensors (out, aux) or give outputs.mask.path")


def test_a_wrong_path_names_where_it_stopped():
    with pytest.raises(OutputSelectionError, match=r"outputs.y.path 'hidden.5': hidden has no '5'; it has 0, 1"):
        _run(lambda y: Output(logits=y, hidden=(y, y)), {"y": {"path": "hidden.5"}})


def test_a_non_tensor_leaf_is_refused_with_its_path():
    with pytest.raises(OutputSelectionError) as caught:
        _run(lambda y: Output(logits=y, loss=0.5), {"loss": {}})
    assert str(caught.value) == "outputs.loss: 'loss' is a float, not a tensor; tensors the model returns: logits"


def test_a_tuple_of_another_length_needs_paths():
    with pytest.raises(OutputSelectionError, match="the model returns 3 values, the recipe names 2; give each"):
        _run(lambda y: (y, y, y), {"a": {}, "b": {}})
    assert _run(lambda y: (y, y + 1, y + 2), {"c": {"path": "2"}})[0, 0] == 4


def test_selection_keeps_graph_names_and_traces():
    model = select_outputs(Returns(lambda y: {"out": y, "aux": y}), _recipe({"out": {}}))
    traced = torch.jit.trace(model, (torch.ones(1, 3),))
    assert isinstance(traced(torch.ones(1, 3)), torch.Tensor)
    assert [name for name, _ in model.named_parameters()] == ["scale"]  # no wrapper module in the names


def test_tensor_paths_walks_every_structure():
    y = torch.zeros(1)
    assert tensor_paths(Output(logits=y, hidden=(y, Pair(y, None)))) == ["logits", "hidden.0", "hidden.1.main"]
