"""`onnx::fold_constants`: evaluate constant subgraphs with onnx's reference evaluator.

No simplifier dependency (onnxslim/onnxsim): every node whose inputs are all
known constants is run once by `onnx.reference.ReferenceEvaluator` and its
outputs become initializers; optionally `Shape`/`Size` of values whose shape is
fully static (after onnx shape inference) count as constants too, which is what
collapses torch's shape-computing subgraphs. Dead nodes are removed at the end.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from modelbuild.surgery import onnx_graph
from modelbuild.surgery.registry import ONNX_STEPS, SurgeryError, SurgeryStep

if TYPE_CHECKING:
    import onnx

# Ops whose output changes from run to run, or that hold subgraphs: never folded.
_NOT_FOLDABLE = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
                 "Bernoulli", "If", "Loop", "Scan", "SequenceConstruct", "Optional"}


@ONNX_STEPS.register
class FoldConstants(SurgeryStep):
    """Fold constant subgraphs into initializers and drop the nodes left unused.

    Given: n = Constant(1); u = Unsqueeze(n, [0]); m = Constant([-1]); t = Concat(u, m); y = Reshape(x, t)
           (with fold_shapes, also s = Shape(x) for an x of static shape [1, 8, 1, 1])
    Result: y = Reshape(x, t)   with t = [1, -1] an initializer (and s the initializer [1, 8, 1, 1])
    Values that are graph outputs are kept as computed; the folding never changes what the
    model returns, only how much of it is computed at run time.
    """

    step: Literal["onnx::fold_constants"] = "onnx::fold_constants"
    fold_shapes: bool = Field(
        True,
        description="Treat Shape/Size of values whose shape onnx shape inference knows statically as "
                    "constants (collapses Shape -> Gather -> Unsqueeze -> Concat chains).",
    )
    max_elements: int = Field(
        1_000_000, ge=1,
        description="Do not store a folded tensor with more elements than this (Expand/Tile/ConstantOfShape "
                    "can turn a few bytes into megabytes); such nodes stay in the graph.",
    )

    def apply(self, model: onnx.ModelProto) -> onnx.ModelProto:
        import numpy as np
        import onnx
        from onnx import numpy_helper
        from onnx.reference import ReferenceEvaluator

        model = onnx_graph.copy_model(model)
        graph = model.graph
        opsets = {o.domain or "": o.version for o in model.opset_import}
        shapes = onnx_graph.static_shapes(model) if self.fold_shapes else {}
        graph_inputs = {v.name for v in graph.input}
        graph_outputs = {v.name for v in graph.output}
        known: dict[str, Any] = {
            t.name: numpy_helper.to_array(t) for t in graph.initializer if t.name not in graph_inputs
        }
        known[""] = None  # an omitted optional input
        folded = []
        for node in list(graph.node):
            if node.domain not in ("", "ai.onnx") or node.op_type in _NOT_FOLDABLE:
                continue
            if set(node.output) & graph_outputs:
                continue
            values = self._evaluate(node, known, shapes, opsets, ReferenceEvaluator)
            if values is None or any(np.asarray(v).size > self.max_elements for v in values):
                continue
            for name, value in zip(node.output, values):
                known[name] = np.asarray(value)
            folded.append(node)
        for node in folded:
            graph.node.remove(node)
        used = onnx_graph.used_names(graph)
        for name in (name for node in folded for name in node.output if name in used):
            graph.initializer.append(numpy_helper.from_array(known[name], name))
        onnx_graph.remove_dead_nodes(graph)
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise SurgeryError(f"Constant folding produced an invalid ONNX model: {exc}") from exc
        return model

    @staticmethod
    def _evaluate(node: Any, known: dict[str, Any], shapes: dict[str, tuple[int, ...]],
                  opsets: dict[str, int], evaluator: Any) -> list[Any] | None:
        """The node's output values if they can be computed now, else None."""
        import numpy as np

        if node.op_type in ("Shape", "Size") and node.input[0] in shapes:
            shape = np.array(shapes[node.input[0]], dtype=np.int64)
            if node.op_type == "Size":
                return [np.array(np.prod(shape), dtype=np.int64)]
            attrs = {a.name: a.i for a in node.attribute}
            start, end = attrs.get("start", 0), attrs.get("end", len(shape))
            return [shape[start:end]]
        if not all(name in known for name in node.input):
            return None
        feeds = {name: known[name] for name in node.input if name}
        try:
            return list(evaluator(node, opsets=opsets).run(None, feeds))
        except Exception:  # an op the reference evaluator lacks: leave it to the runtime
            return None
