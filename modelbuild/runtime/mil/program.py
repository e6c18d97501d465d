"""An ML Program (MIL protobuf) parsed into Python objects, and the loop that runs it.

`Program.from_spec(spec, weights_dir)` reads the functions of `spec.mlProgram`;
`Program.run(feeds)` evaluates the function "main" op by op with the kernels of
`MIL_OPS` for the opset the function declares (CoreML5 = iOS15 ... CoreML8 =
iOS18: the same op name may mean different things in two opsets). Ops that
depend only on constants (`const` and the `constexpr_*` weight decompression
ops) are evaluated once, when the program is loaded, and what a kernel makes of
a constant input (an fp16 weight as a float32 tensor) is kept from one run to
the next (`OpContext.prepared`). During a run, values no later op reads are
dropped (unless every intermediate value was asked for), so memory is reused.

Dtypes: every op result is converted to the element type its output var
declares, so an fp16 program holds fp16 tensors throughout. Kernels that
accumulate (conv, matmul, reductions, normalisation) compute fp16 inputs in
fp32; elementwise kernels use numpy's float16 arithmetic, which computes each
element in fp32 and rounds it. Either way each op's result is rounded to fp16,
as Core ML does between ops on fp16 hardware.

Shapes: feeds must fit the declared input shapes (unknown dims are free), and an
op result must equal its declared output shape when that is fully known;
kernels check their inputs as Core ML does. A disagreement raises
`ShapeMismatchError` naming the op, its output type and the shapes involved.
"""
from __future__ import annotations

import inspect
from collections import ChainMap
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, MutableMapping, Sequence

import numpy as np

from modelbuild.runtime.quiet import quiet_coremltools

quiet_coremltools()
from coremltools.proto import MIL_pb2  # noqa: E402  (after the quiet import)

from modelbuild.runtime.registry import ShapeMismatchError

from .casting import astype
from .kernel import MIL_OPS, OpContext
from .opsets import Opset
from .values import (BlobStore, OtherType, ProgramFormatError, StateType, TensorType, parse_type,
                     parse_value)

_LOAD_TIME_OPS_PREFIX = "constexpr_"


@dataclass(frozen=True)
class Var:
    """A named, typed value of the program."""

    name: str
    type: TensorType | StateType | OtherType


@dataclass
class Operation:
    """One MIL op: its inputs are lists of bindings, each a var name (str) or a constant value."""

    type: str
    inputs: dict[str, list[tuple[str, Any]]]
    outputs: list[Var]
    blocks: list[Block] = field(default_factory=list)
    constant_inputs: frozenset[str] = frozenset()  # inputs bound to values or const/constexpr vars
    prepared: dict[str, Any] = field(default_factory=dict, repr=False)  # see OpContext.prepared

    def context(self, run_block: Any = None) -> OpContext:
        return OpContext(
            self.type, [v.name for v in self.outputs], [v.type for v in self.outputs],
            self.blocks, run_block, self.constant_inputs, self.prepared,
        )


@dataclass
class Block:
    """A list of ops, the names of its inputs (nested blocks only) and of its outputs."""

    inputs: list[Var]
    operations: list[Operation]
    outputs: list[str]


@dataclass
class Function:
    """A MIL function: typed inputs, the opset its ops follow and the block of that opset."""

    name: str
    inputs: list[Var]
    opset: Opset
    block: Block


class Program:
    """An executable ML Program; see the module docstring."""

    def __init__(self, functions: dict[str, Function], blobs: BlobStore) -> None:
        self.functions = functions
        self._blobs = blobs
        self._constants: dict[str, dict[str, Any]] = {
            name: self._fold_constants(function) for name, function in functions.items()
        }
        for name, function in functions.items():
            _mark_constant_inputs(function.block, self._constants[name])
        self._releases = {name: _releases(function.block) for name, function in functions.items()}

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: Any, weights_dir: Path | str | None = None) -> Program:
        """Parse the ML Program of a `Model_pb2.Model` spec (or a bare `MIL_pb2.Program`)."""
        program = spec if isinstance(spec, MIL_pb2.Program) else None
        if program is None:
            if spec.WhichOneof("Type") != "mlProgram":
                raise ProgramFormatError(
                    f"The model is of type {spec.WhichOneof('Type')!r}, not an ML Program "
                    "(mlProgram); NeuralNetwork models run through the NeuralNetwork runtime."
                )
            program = spec.mlProgram
        blobs = BlobStore(Path(weights_dir) if weights_dir is not None else None)
        functions = {
            name: _parse_function(name, function, blobs)
            for name, function in program.functions.items()
        }
        return cls(functions, blobs)

    def _fold_constants(self, function: Function) -> dict[str, Any]:
        """Evaluate const and constexpr_* ops (weights) once."""
        env: dict[str, Any] = {}
        for op in function.block.operations:
            if op.type == "const" or op.type.startswith(_LOAD_TIME_OPS_PREFIX):
                self._run_op(op, env, function.opset)
        return env

    def constants(self, function: str = "main") -> dict[str, Any]:
        """The values of a function's const and constexpr_* ops (its weights), by var name."""
        return dict(self._constants[function])

    # -- running ---------------------------------------------------------------------------
    def function(self, name: str = "main") -> Function:
        try:
            return self.functions[name]
        except KeyError:
            raise KeyError(
                f"The program has no function {name!r}; it has: {', '.join(sorted(self.functions))}."
            ) from None

    @property
    def inputs(self) -> list[Var]:
        """The inputs of the function "main"."""
        return self.function("main").inputs

    def make_state(self, function: str = "main") -> dict[str, np.ndarray]:
        """Fresh (zero) arrays for the function's state inputs; pass them in `run`'s feeds,
        where `coreml_update_state` updates them in place, as Core ML's MLState."""
        return {
            var.name: np.zeros(_known_shape(var), var.type.wrapped.dtype)
            for var in self.function(function).inputs
            if isinstance(var.type, StateType)
        }

    @property
    def outputs(self) -> list[str]:
        """The output names of the function "main"."""
        return self.function("main").block.outputs

    def run(
        self, feeds: Mapping[str, Any], *, intermediate: bool = False, function: str = "main"
    ) -> dict[str, Any]:
        """Evaluate `function` on `feeds`; return its outputs (and every op output if `intermediate`)."""
        fn = self.function(function)
        env: dict[str, Any] = dict(self._constants[function])
        for var in fn.inputs:
            env[var.name] = _conform_feed(var, feeds)
        unknown = set(feeds) - {var.name for var in fn.inputs}
        if unknown:
            raise ValueError(
                f"Unknown input(s) {', '.join(sorted(unknown))}; the function {function!r} takes "
                f"{', '.join(var.name for var in fn.inputs)}."
            )
        computed: dict[str, Any] = {}
        for op, released in zip(fn.block.operations, self._releases[function]):
            if op.type == "const" or op.type.startswith(_LOAD_TIME_OPS_PREFIX):
                continue
            values = self._run_op(op, env, fn.opset)
            if intermediate:
                computed.update(zip((v.name for v in op.outputs), values))
            else:  # free what no later op reads: its memory is reused, not paged in anew
                for name in released:
                    env.pop(name, None)
        outputs = {name: env[name] for name in fn.block.outputs}
        return {**computed, **outputs} if intermediate else outputs

    def _run_op(self, op: Operation, env: MutableMapping[str, Any], opset: Opset) -> list[Any]:
        context = op.context(lambda block, inputs: self._run_block(block, env, inputs, opset))
        kernel = MIL_OPS.get(op.type, where=context.describe(), opset=opset)
        variadic = getattr(kernel, "variadic_inputs", frozenset())
        kwargs = {}
        for name, bindings in op.inputs.items():
            values = [env[ref] if kind == "name" else ref for kind, ref in bindings]
            kwargs[name] = values if name in variadic or len(values) != 1 else values[0]
        _check_inputs(context, kernel, kwargs, opset)
        try:
            result = kernel(context, **kwargs)
        except Exception as error:  # keep the type; say where it happened
            if not str(error).startswith(context.describe()):
                error.add_note(f"(while running the {context.describe()})")
            raise
        results = list(result) if isinstance(result, tuple) else [result]
        if len(results) != len(op.outputs):
            raise RuntimeError(
                f"{context.describe()}: the kernel returned {len(results)} values for "
                f"{len(op.outputs)} outputs."
            )
        conformed = [_conform_output(context, var, value, kwargs) for var, value in zip(op.outputs, results)]
        for var, value in zip(op.outputs, conformed):
            env[var.name] = value
        return conformed

    def _run_block(
        self, block: Block, env: MutableMapping[str, Any], inputs: Sequence[Any], opset: Opset
    ) -> list[Any]:
        scope: MutableMapping[str, Any] = ChainMap({}, env)
        if len(inputs) != len(block.inputs):
            raise RuntimeError(f"A nested block takes {len(block.inputs)} inputs, not {len(inputs)}.")
        for var, value in zip(block.inputs, inputs):
            scope[var.name] = value
        for op in block.operations:
            self._run_op(op, scope, opset)
        return [scope[name] for name in block.outputs]


def _names_read(op: Operation) -> set[str]:
    """The var names `op` reads, its nested blocks' included."""
    names = {ref for bindings in op.inputs.values() for kind, ref in bindings if kind == "name"}
    for block in op.blocks:
        names.update(block.outputs)
        for inner in block.operations:
            names |= _names_read(inner)
    return names


def _releases(block: Block) -> list[tuple[str, ...]]:
    """Per op of `block`, the names no later op reads (the block's outputs never among them):
    those it is the last to read and those of its outputs nobody reads."""
    last_reader: dict[str, int] = {}
    for index, op in enumerate(block.operations):
        for var in op.outputs:
            last_reader[var.name] = index
        for name in _names_read(op):
            last_reader[name] = index
    released: list[list[str]] = [[] for _ in block.operations]
    for name, index in last_reader.items():
        if name not in block.outputs:
            released[index].append(name)
    return [tuple(names) for names in released]


def _mark_constant_inputs(block: Block, constants: Mapping[str, Any]) -> None:
    """Set each op's `constant_inputs`: the inputs whose every binding is a value or a constant var."""
    for op in block.operations:
        op.constant_inputs = frozenset(
            name for name, bindings in op.inputs.items()
            if all(kind == "value" or ref in constants for kind, ref in bindings)
        )
        for nested in op.blocks:
            _mark_constant_inputs(nested, constants)


@lru_cache(maxsize=None)
def _input_names(kernel: Any) -> frozenset[str]:
    """The MIL inputs a kernel takes: its keyword-only parameters."""
    return frozenset(p.name for p in inspect.signature(kernel).parameters.values() if p.kind is p.KEYWORD_ONLY)


def _check_inputs(context: OpContext, kernel: Any, kwargs: Mapping[str, Any], opset: Opset) -> None:
    """Refuse inputs the op does not have in this opset (an iOS17 input in an iOS16 program, say)."""
    accepted = _input_names(kernel)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ProgramFormatError(
            f"{context.describe()}: {', '.join(unknown)} {'is not an input' if len(unknown) == 1 else 'are not inputs'} "
            f"of {context.type} in opset {opset}, the opset of its program; it takes {', '.join(sorted(accepted))}."
        )


def _known_shape(var: Var) -> tuple[int, ...]:
    shape = var.type.wrapped.shape if isinstance(var.type, StateType) else None
    if shape is None or None in shape:
        raise ProgramFormatError(f"The state {var.name!r} ({var.type}) has no fixed shape.")
    return tuple(int(d) for d in shape)


def _conform_feed(var: Var, feeds: Mapping[str, Any]) -> Any:
    if var.name not in feeds:
        hint = " (states come from Program.make_state())" if isinstance(var.type, StateType) else ""
        raise KeyError(f"Missing input {var.name!r} ({var.type}){hint}.")
    value = feeds[var.name]
    if isinstance(var.type, StateType):  # updated in place: no copy, no conversion
        wanted = var.type.wrapped
        if not isinstance(value, np.ndarray) or value.dtype != wanted.dtype or not wanted.fits(value.shape):
            raise ShapeMismatchError(
                f"State {var.name!r} must be a numpy array of type {wanted}, not "
                f"{type(value).__name__} {getattr(value, 'dtype', '')}{np.shape(value)}."
            )
        return value
    if not isinstance(var.type, TensorType):
        return value
    array = astype(value, var.type.dtype)
    if not var.type.fits(array.shape):
        raise ShapeMismatchError(
            f"Input {var.name!r} is declared {var.type} but the feed has shape {array.shape}."
        )
    return array


def _conform_output(context: OpContext, var: Var, value: Any, inputs: Mapping[str, Any]) -> Any:
    """`value` as the declared type of `var`: converted to its dtype, shape checked."""
    if not isinstance(var.type, TensorType) or not isinstance(value, (np.ndarray, np.generic, int, float, bool)):
        return value  # lists, dicts, strings
    if isinstance(value, int) and not isinstance(value, bool) and var.type.shape == ():
        return value  # an int class label (classify) stays a Python int, like a str label
    array = np.asarray(value)
    if var.type.data_type != MIL_pb2.DataType.STRING:
        array = astype(array, var.type.dtype)
    # Only fully known output types are checked: for data-dependent shapes coremltools' symbolic
    # type inference may even get the rank wrong (fill from a shape tensor says [?]) and Core ML
    # runs such programs all the same.
    declared = var.type.shape
    if declared is not None and None not in declared and not var.type.fits(array.shape):
        shapes = {k: v for k, v in inputs.items() if isinstance(v, np.ndarray) and v.ndim}
        raise context.shape_error(
            f"output {var.name!r} is declared {var.type} but its inputs give shape {array.shape}",
            **shapes,
        )
    return array


# -- protobuf parsing ----------------------------------------------------------------------
def _parse_function(name: str, function: MIL_pb2.Function, blobs: BlobStore) -> Function:
    opset = function.opset
    if opset not in function.block_specializations:
        raise ProgramFormatError(
            f"Function {name!r} declares opset {opset!r} but has blocks for "
            f"{', '.join(function.block_specializations)}."
        )
    try:
        parsed = Opset.parse(opset)
    except ValueError as error:
        raise ProgramFormatError(f"Function {name!r}: {error}") from None
    inputs = [Var(i.name, parse_type(i.type)) for i in function.inputs]
    return Function(name, inputs, parsed, _parse_block(function.block_specializations[opset], blobs))


def _parse_block(block: MIL_pb2.Block, blobs: BlobStore) -> Block:
    return Block(
        inputs=[Var(i.name, parse_type(i.type)) for i in block.inputs],
        operations=[_parse_operation(op, blobs) for op in block.operations],
        outputs=list(block.outputs),
    )


def _parse_operation(op: MIL_pb2.Operation, blobs: BlobStore) -> Operation:
    inputs: dict[str, list[tuple[str, Any]]] = {}
    for param, argument in op.inputs.items():
        inputs[param] = [
            ("name", b.name) if b.WhichOneof("binding") == "name" else ("value", parse_value(b.value, blobs))
            for b in argument.arguments
        ]
    for param, value in op.attributes.items():  # const's "val"; iOS16 constexpr_* parameters
        if param != "name":
            inputs[param] = [("value", parse_value(value, blobs))]
    return Operation(
        type=op.type,
        inputs=inputs,
        outputs=[Var(o.name, parse_type(o.type)) for o in op.outputs],
        blocks=[_parse_block(b, blobs) for b in op.blocks],
    )
