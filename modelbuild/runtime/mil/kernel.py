"""The ML Program op registry and what a kernel receives besides its inputs.

A kernel is a function `kernel(op, *, input_a, input_b=default, ...)`: MIL op
inputs (there is no separate attribute kind in MIL) arrive as keyword arguments,
numpy arrays (0-d for scalars) or Python strings; the kernel returns one value
or a tuple (ops with several outputs). `op` is an `OpContext`: the op's type,
output names and declared output types, for error messages and for ops whose
result type is declared rather than inferred (cast, fill, shape, ...), and
`op.prepared(name, value, prepare)`, which keeps a constant input converted
(a weight as a float32 torch tensor) from one run to the next.

Register a kernel with `@MIL_OPS.register("name", ...)`; it serves every
opset from iOS15 on. An op that Core ML added later, or whose meaning changed
in a later opset, registers `since=` that opset (`opsets.py`), as coremltools
registers its op classes with `opset_version=`: the program's function opset
picks the kernel. Versions that only widen dtypes, or add an input whose
default keeps the old meaning, share the older kernel. Kernels of one op that
do differ share their code through a parameter of a common implementation.
Mark the inputs that take a variable number of arguments (concat's `values`)
with `@variadic("values")` so that they always arrive as a list.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from modelbuild.runtime.registry import OpRegistry, ShapeMismatchError

from .opsets import IOS15
from .values import OtherType, TensorType

if TYPE_CHECKING:
    from .program import Block

Kernel = Callable[..., Any]
MIL_OPS: OpRegistry[Kernel] = OpRegistry("ML Program", first=IOS15)


def variadic(*names: str) -> Callable[[Kernel], Kernel]:
    """Decorator: the named inputs are tuples in MIL and always reach the kernel as lists."""

    def mark(kernel: Kernel) -> Kernel:
        kernel.variadic_inputs = frozenset(names)  # type: ignore[attr-defined]
        return kernel

    return mark


class OpContext:
    """What a kernel may know about the op it computes, and how it reports a bad input."""

    def __init__(
        self,
        op_type: str,
        output_names: Sequence[str],
        output_types: Sequence[TensorType | OtherType],
        blocks: Sequence[Block] = (),
        run_block: Callable[..., list[Any]] | None = None,
        constant_inputs: frozenset[str] = frozenset(),
        prepared: dict[str, Any] | None = None,
    ) -> None:
        self.type = op_type
        self.output_names = list(output_names)
        self.output_types = list(output_types)
        self.blocks = list(blocks)
        self._run_block = run_block
        self._constant_inputs = constant_inputs
        self._prepared = {} if prepared is None else prepared

    @property
    def name(self) -> str:
        return self.output_names[0] if self.output_names else "<no output>"

    def describe(self) -> str:
        """`conv op 'conv_0' (tensor<fp32, [1, 4, 8, 8]>)`: the op as error messages name it."""
        types = ", ".join(str(t) for t in self.output_types)
        return f"{self.type} op {self.name!r} ({types})"

    def output_dtype(self, index: int = 0) -> np.dtype:
        declared = self.output_types[index]
        if not isinstance(declared, TensorType):
            raise TypeError(f"{self.describe()}: output {index} is a {declared}, not a tensor.")
        return declared.dtype

    def shape_error(self, message: str, **shapes: Any) -> ShapeMismatchError:
        """A ShapeMismatchError naming this op, `message` and the named input shapes."""
        listed = ", ".join(f"{key} {tuple(np.shape(value))}" for key, value in shapes.items())
        return ShapeMismatchError(
            f"{self.describe()}: {message}" + (f" (input shapes: {listed})." if listed else ".")
        )

    def value_error(self, message: str) -> ValueError:
        """A ValueError for an input value (not shape) this op refuses, naming the op."""
        return ValueError(f"{self.describe()}: {message}")

    def prepared(self, name: str, value: Any, prepare: Callable[[Any], Any]) -> Any:
        """`prepare(value)` for input `name`; computed once per loaded program when that input is a
        constant (a weight converted to float32 once, not at every predict). One form per input."""
        if name not in self._constant_inputs:
            return prepare(value)
        if name not in self._prepared:
            self._prepared[name] = prepare(value)
        return self._prepared[name]

    def run_block(self, index: int, inputs: Sequence[Any] = ()) -> list[Any]:
        """Run nested block `index` (cond branches, loop bodies) and return its outputs."""
        if self._run_block is None:
            raise RuntimeError(f"{self.describe()} has no evaluator for nested blocks.")
        return self._run_block(self.blocks[index], list(inputs))
