"""ONNX repairs applied automatically before onnx2coreml, when the pattern they fix is present.

Each repair is a registered ONNX surgery step (so a recipe can also list it in `onnx.surgery`)
plus a test of whether the graph needs it. `repair_for_onnx2coreml(model)` applies those that are
needed, in order, and notes each in the conversion log (`modelbuild.coreml.conversion_log`):

- `onnx::bool_as_int32` when a Gather, GatherElements, ScatterElements, Equal, Max, ReduceMax (or
  kin) reads bool data (onnx2coreml lowers them to MIL ops that take no bool; transformers 5's
  attention-mask creation gathers from a bool mask).
- `onnx::fold_constants` when onnx2coreml has no lowering for some ops and folding the graph's
  constant subgraphs (shapes included: onnx2coreml converts at fixed shapes; repeated while it
  folds more, since a folded Pad makes the next shape static) removes every one of them
  (torchvision swin_t: 90 Range nodes computing the shifted-window masks).
- `onnx::broadcast_where_branches` when a Where's condition is larger than its two value inputs
  (coremltools 9 declares MIL select's result with the values' shape: transformers 5's BERT
  attention mask came out as a scalar in an ML Program).

The last two need static shapes: not with flexible inputs, where they would bake the default size in.

The ONNX file on disk is left as exported: the repairs change the converter's copy only.
"""
from __future__ import annotations

from typing import Any

from modelbuild.coreml.conversion_log import note
from modelbuild.surgery import SurgeryError
from modelbuild.surgery.onnx_broadcast import BroadcastWhereBranches, narrow_where_nodes, where_shapes_known
from modelbuild.surgery.onnx_dtypes import BoolAsInt32, bool_data_nodes
from modelbuild.surgery.onnx_folding import FoldConstants

_MAX_FOLDING_ROUNDS = 10


def repair_for_onnx2coreml(model: Any, flexible: bool = False) -> Any:
    """`model` with the repairs it needs for onnx2coreml applied (the same object when it needs none)."""
    found = bool_data_nodes(model)
    if found:
        model = BoolAsInt32().apply(model)
        names = ", ".join(f"{node.name or node.output[0]!r} ({node.op_type})" for node, _ in found[:3])
        note(f"applied onnx::bool_as_int32 to {len(found)} node(s) on bool data ({names}"
             f"{', ...' if len(found) > 3 else ''}): onnx2coreml lowers them to MIL ops that take no bool")
    if not flexible:
        model = _fold_if_it_removes_unsupported_ops(model)
        model = _broadcast_narrow_wheres(model)
    return model


def _broadcast_narrow_wheres(model: Any) -> Any:
    """Broadcast the value inputs of Wheres whose condition is larger; fold first if their shapes are unknown."""
    found = narrow_where_nodes(model)
    if not found and not where_shapes_known(model):
        folded = folded_constants(model)
        found = narrow_where_nodes(folded) if folded is not None else []
        if found:
            note(f"applied onnx::fold_constants: {len(model.graph.node) - len(folded.graph.node)} node(s) computed "
                 "constants at the converted input shapes, and the shapes of Where's inputs were not static")
            model = folded
    if not found:
        return model
    names = ", ".join(repr(node.name or node.output[0]) for node, _ in found[:3])
    note(f"applied onnx::broadcast_where_branches to {len(found)} Where node(s) ({names}"
         f"{', ...' if len(found) > 3 else ''}): coremltools types MIL select from its value inputs only")
    return BroadcastWhereBranches().apply(model)


def unsupported_ops(model: Any) -> dict[str, list[str]]:
    """onnx2coreml's op key -> node names, for the ops it has no lowering for (after its own cleanup passes)."""
    import onnx2coreml

    return dict(onnx2coreml.analyze(model).unsupported)


def folded_constants(model: Any) -> Any | None:
    """`onnx::fold_constants` with shapes, repeated while it folds more (a folded Pad makes the next shape
    static); None when folding fails."""
    folded = model
    for _ in range(_MAX_FOLDING_ROUNDS):
        try:
            again = FoldConstants(fold_shapes=True).apply(folded)
        except SurgeryError:
            return None
        if len(again.graph.node) == len(folded.graph.node):
            break
        folded = again
    return folded


def _fold_if_it_removes_unsupported_ops(model: Any) -> Any:
    missing = unsupported_ops(model)
    if not missing:
        return model
    folded = folded_constants(model)
    if folded is None or unsupported_ops(folded):
        return model  # folding does not make it convertible: the failure names the ops left
    counts = ", ".join(f"{len(nodes)} {key}" for key, nodes in sorted(missing.items()))
    note(f"applied onnx::fold_constants: onnx2coreml has no lowering for {counts} node(s), "
         "all of which compute constants at the converted input shapes")
    return folded
