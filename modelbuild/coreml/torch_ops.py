"""torch-op converters modelbuild adds to coremltools 9, active only during modelbuild's conversions.

- `new_ones` (`tensor.new_ones(size, dtype=...)`): coremltools has new_zeros and new_full but no
  new_ones; transformers 5 calls it when it builds an attention mask from an `attention_mask` input
  (`masking_utils.and_masks`).
- `upsample_bilinear2d` / `upsample_nearest2d` to a size computed at run time (flexible input
  shapes, `F.interpolate(x, size=other.shape[-2:])`): coremltools emits a torch-dialect op that
  its pass `torch::torch_upsample_to_core_upsample` must map to a constant scale factor, and
  raises "Unable to map torch_upsample_bilinear to core upsample" when the size is not the input's
  own size times a constant. Here, after coremltools' own converter ran, such an op is lowered
  instead. Bilinear: from iOS17 to the `resize` op (which takes the target size as a tensor),
  before that (no such op) to gathers of the two neighbouring rows, then columns, and a lerp,
  with PyTorch's source positions (align_corners or half-pixel). Nearest, any target: index
  arithmetic and two gathers, output i reading input min(floor(i * in / out), in - 1), PyTorch's
  'nearest' rule. Other interpolations (1-D, 3-D) keep coremltools' failure, which
  `modelbuild.coreml.diagnosis` explains.

`extra_torch_ops()` registers them with coremltools' `register_torch_op(override=True)` and
puts coremltools' own converters back when the block ends; the upsample converters call
coremltools' own first, so every size coremltools handles keeps its lowering.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from modelbuild.coreml.conversion_log import note

_TORCH_UPSAMPLE_OPS = ("torch_upsample_bilinear", "torch_upsample_nearest_neighbor")


@contextlib.contextmanager
def extra_torch_ops() -> Iterator[None]:
    """Register modelbuild's converters for the duration of the block, then restore coremltools' own."""
    from coremltools.converters.mil.frontend.torch.torch_op_registry import _TORCH_OPS_REGISTRY, register_torch_op

    mapping = _TORCH_OPS_REGISTRY.name_to_func_mapping
    converters = _converters(mapping)
    saved = {name: mapping.get(name) for name in converters}
    try:
        for name, converter in converters.items():
            register_torch_op(_named(converter, name), override=True)
        yield
    finally:
        for name, original in saved.items():
            if original is None:
                mapping.pop(name, None)
            else:
                mapping[name] = original


def _converters(mapping: dict[str, Callable]) -> dict[str, Callable]:
    """name -> converter; the upsample ones wrap coremltools' converter registered under that name."""
    converters: dict[str, Callable] = {"new_ones": _new_ones}
    for name in ("upsample_bilinear2d", "upsample_bilinear2d.vec", "upsample_nearest2d", "upsample_nearest2d.vec"):
        if name in mapping:
            converters[name] = _dynamic_size_upsample(mapping[name])
    return converters


def _named(converter: Callable, name: str) -> Callable:
    """`converter` under the name register_torch_op registers it for (the function's __name__)."""

    def named(context: Any, node: Any) -> None:
        converter(context, node)

    named.__name__ = name
    return named


def _new_ones(context: Any, node: Any) -> None:
    """aten::new_ones(self, size, dtype, layout, device, pin_memory): ones of `size`, of dtype or self's dtype."""
    import numpy as np
    from coremltools.converters.mil.frontend.torch.ops import _get_inputs
    from coremltools.converters.mil.frontend.torch.utils import NUM_TO_NUMPY_DTYPE
    from coremltools.converters.mil.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    inputs = _get_inputs(context, node, min_expected=2)
    x, size = inputs[0], inputs[1]
    dtype_code = inputs[2].val if len(inputs) > 2 and inputs[2] is not None else None
    dtype = np.dtype(NUM_TO_NUMPY_DTYPE[int(dtype_code)] if dtype_code is not None
                     else types.nptype_from_builtin(x.dtype))
    dtype = {np.dtype(np.int64): np.dtype(np.int32), np.dtype(np.float64): np.dtype(np.float32)}.get(dtype, dtype)
    if isinstance(size, list):
        size = mb.concat(values=size, axis=0) if size else mb.const(val=np.zeros(0, np.int32))
    if size.val is not None:
        result = mb.const(val=np.ones(tuple(int(s) for s in np.asarray(size.val).reshape(-1)), dtype), name=node.name)
    else:
        ones = mb.fill(shape=mb.cast(x=size, dtype="int32"), value=1.0)
        result = mb.cast(x=ones, dtype=types.builtin_to_string(types.numpy_type_to_builtin_type(dtype)),
                         name=node.name)
    context.add(result)


def _dynamic_size_upsample(original: Callable) -> Callable:
    """coremltools' converter, then a lowering of its torch-dialect op when no constant scale explains the size."""

    def convert(context: Any, node: Any) -> None:
        original(context, node)
        op = context[node.name].op
        if op is None or op.op_type not in _TORCH_UPSAMPLE_OPS or _has_constant_scale(op):
            return
        from coremltools.converters.mil._deployment_compatibility import AvailableTarget
        from coremltools.converters.mil.mil.block import is_current_opset_version_compatible_with

        x, height, width = op.x, op.output_height, op.output_width
        align_corners = op.op_type == "torch_upsample_bilinear" and bool(op.align_corners.val)
        op.enclosing_block.remove_ops([op])
        if op.op_type == "torch_upsample_nearest_neighbor":
            result, how = _resize_nearest(x, height, width, node.name), "index arithmetic and gathers"
        elif is_current_opset_version_compatible_with(AvailableTarget.iOS17):
            result, how = _resize_bilinear(x, height, width, align_corners, node.name), "resize"
        else:  # no MIL op resizes bilinearly to a tensor-valued size before iOS17
            result, how = _bilinear_by_gathers(x, height, width, align_corners, node.name), "gathers and lerps"
        context.add(result, torch_name=node.name, override=True)
        note(f"lowered {node.kind} {node.name!r} (output size computed at run time) to {how}")

    return convert


def _has_constant_scale(op: Any) -> bool:
    """Would coremltools' pass torch::torch_upsample_to_core_upsample map this op (same patterns, same order)?"""
    from coremltools.converters.mil.frontend.torch.ssa_passes import torch_upsample_to_core_upsample as upsample_pass

    pattern_1 = upsample_pass._try_get_upsample_factor_pattern_1
    pattern_2 = upsample_pass._try_get_upsample_factor_pattern_2
    if pattern_1(op.output_height.op) is not None and pattern_1(op.output_width.op) is not None:
        return True
    return (pattern_2(op.output_height.op, 2, op.x) is not None
            and pattern_2(op.output_width.op, 3, op.x) is not None)


def _resize_bilinear(x: Any, height: Any, width: Any, align_corners: bool, name: str) -> Any:
    """iOS17 resize: STRICT_ALIGN_CORNERS is align_corners=True, UNALIGN_CORNERS PyTorch's half-pixel rule."""
    import numpy as np
    from coremltools.converters.mil.mil import Builder as mb

    size = mb.stack(values=[mb.cast(x=height, dtype="int32"), mb.cast(x=width, dtype="int32")], axis=0)
    return mb.resize(x=x, shape=size, resized_dims=np.uint32(2), interpolation_mode="LINEAR",
                     sampling_mode="STRICT_ALIGN_CORNERS" if align_corners else "UNALIGN_CORNERS", name=name)


def _bilinear_by_gathers(x: Any, height: Any, width: Any, align_corners: bool, name: str) -> Any:
    """Interpolate along H, then W: out[i] = lerp(x[i0], x[i1], src - i0), src computed as PyTorch does."""
    from coremltools.converters.mil.mil import Builder as mb

    sizes = mb.shape(x=x)
    result = x
    for axis, size_out in ((x.rank - 2, height), (x.rank - 1, width)):
        first, second, weight = _linear_sources(mb.gather(x=sizes, indices=axis, axis=0), size_out, align_corners)
        if axis == x.rank - 2:
            weight = mb.expand_dims(x=weight, axes=[-1])
        low = mb.gather(x=result, indices=first, axis=axis)
        high = mb.gather(x=result, indices=second, axis=axis)
        named = {"name": name} if axis == x.rank - 1 else {}
        result = mb.add(x=low, y=mb.mul(x=mb.sub(x=high, y=low), y=weight), **named)
    return result


def _linear_sources(size_in: Any, size_out: Any, align_corners: bool) -> tuple[Any, Any, Any]:
    """Per output position: the two input indices and the weight of the second.

    align_corners: src = i * (in - 1) / (out - 1) (0 when out is 1); else src = max((i + 0.5) * in / out - 0.5, 0)
    (ATen's area_pixel_compute_source_index); first = floor(src), second = min(first + 1, in - 1).
    """
    from coremltools.converters.mil.mil import Builder as mb

    size_out = mb.cast(x=size_out, dtype="int32")
    size_in_float, size_out_float = mb.cast(x=size_in, dtype="fp32"), mb.cast(x=size_out, dtype="fp32")
    positions = mb.cast(x=mb.range_1d(start=0, end=size_out, step=1), dtype="fp32")
    if align_corners:
        scale = mb.real_div(x=mb.sub(x=size_in_float, y=1.0), y=mb.maximum(x=mb.sub(x=size_out_float, y=1.0), y=1.0))
        sources = mb.mul(x=positions, y=scale)
    else:
        scale = mb.real_div(x=size_in_float, y=size_out_float)
        sources = mb.maximum(x=mb.sub(x=mb.mul(x=mb.add(x=positions, y=0.5), y=scale), y=0.5), y=0.0)
    first_float = mb.floor(x=sources)
    first = mb.cast(x=first_float, dtype="int32")
    second = mb.minimum(x=mb.add(x=first, y=1), y=mb.sub(x=size_in, y=1))
    return first, second, mb.sub(x=sources, y=first_float)


def _resize_nearest(x: Any, height: Any, width: Any, name: str) -> Any:
    """Gather rows, then columns: output i reads input min(floor(i * (in / out)), in - 1), in float32 as PyTorch."""
    from coremltools.converters.mil.mil import Builder as mb

    sizes = mb.shape(x=x)
    rows = _nearest_indices(mb.gather(x=sizes, indices=x.rank - 2, axis=0), height)
    columns = _nearest_indices(mb.gather(x=sizes, indices=x.rank - 1, axis=0), width)
    picked_rows = mb.gather(x=x, indices=rows, axis=x.rank - 2)
    return mb.gather(x=picked_rows, indices=columns, axis=x.rank - 1, name=name)


def _nearest_indices(size_in: Any, size_out: Any) -> Any:
    from coremltools.converters.mil.mil import Builder as mb

    size_out = mb.cast(x=size_out, dtype="int32")
    scale = mb.real_div(x=mb.cast(x=size_in, dtype="fp32"), y=mb.cast(x=size_out, dtype="fp32"))
    positions = mb.cast(x=mb.range_1d(start=0, end=size_out, step=1), dtype="fp32")
    indices = mb.cast(x=mb.floor(x=mb.mul(x=positions, y=scale)), dtype="int32")
    return mb.minimum(x=indices, y=mb.sub(x=size_in, y=1))
