"""MIL types and values: protobuf `ValueType`/`Value` messages to numpy.

A tensor type becomes a `TensorType` (numpy dtype and a shape whose unknown
dimensions are None); a value becomes a numpy array (0-d for scalars), a str,
a list (MIL lists) or a dict. Weights stored outside the protobuf
(`BlobFileValue`, the .mlpackage's weights/weight.bin) are read with
coremltools' blob storage reader, which works on Linux.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelbuild.runtime.quiet import quiet_coremltools

quiet_coremltools()
from coremltools.proto import MIL_pb2  # noqa: E402  (after the quiet import)

_DT = MIL_pb2.DataType
NUMPY_DTYPES: dict[int, np.dtype] = {
    _DT.BOOL: np.dtype(np.bool_),
    _DT.STRING: np.dtype(object),
    _DT.FLOAT16: np.dtype(np.float16),
    _DT.FLOAT32: np.dtype(np.float32),
    _DT.FLOAT64: np.dtype(np.float64),
    _DT.INT4: np.dtype(np.int8),
    _DT.INT8: np.dtype(np.int8),
    _DT.INT16: np.dtype(np.int16),
    _DT.INT32: np.dtype(np.int32),
    _DT.INT64: np.dtype(np.int64),
    _DT.UINT1: np.dtype(np.uint8),
    _DT.UINT2: np.dtype(np.uint8),
    _DT.UINT3: np.dtype(np.uint8),
    _DT.UINT4: np.dtype(np.uint8),
    _DT.UINT6: np.dtype(np.uint8),
    _DT.UINT8: np.dtype(np.uint8),
    _DT.UINT16: np.dtype(np.uint16),
    _DT.UINT32: np.dtype(np.uint32),
    _DT.UINT64: np.dtype(np.uint64),
}
_SUB_BYTE_BITS = {_DT.INT4: 4, _DT.UINT1: 1, _DT.UINT2: 2, _DT.UINT3: 3, _DT.UINT4: 4, _DT.UINT6: 6}
_SIGNED_SUB_BYTE = {_DT.INT4}
_MIL_NAMES = {
    _DT.BOOL: "bool", _DT.STRING: "string", _DT.FLOAT16: "fp16", _DT.FLOAT32: "fp32",
    _DT.FLOAT64: "fp64", _DT.BFLOAT16: "bf16", _DT.INT4: "int4", _DT.INT8: "int8",
    _DT.INT16: "int16", _DT.INT32: "int32", _DT.INT64: "int64", _DT.UINT1: "uint1",
    _DT.UINT2: "uint2", _DT.UINT3: "uint3", _DT.UINT4: "uint4", _DT.UINT6: "uint6",
    _DT.UINT8: "uint8", _DT.UINT16: "uint16", _DT.UINT32: "uint32", _DT.UINT64: "uint64",
}
_BLOB_READERS = {
    _DT.FLOAT16: "read_fp16_data", _DT.FLOAT32: "read_float_data", _DT.INT4: "read_int4_data",
    _DT.INT8: "read_int8_data", _DT.INT16: "read_int16_data", _DT.INT32: "read_int32_data",
    _DT.UINT1: "read_uint1_data", _DT.UINT2: "read_uint2_data", _DT.UINT3: "read_uint3_data",
    _DT.UINT4: "read_uint4_data", _DT.UINT6: "read_uint6_data", _DT.UINT8: "read_uint8_data",
    _DT.UINT16: "read_uint16_data", _DT.UINT32: "read_uint32_data",
}


class ProgramFormatError(ValueError):
    """The ML Program protobuf holds something this runtime cannot read."""


@dataclass(frozen=True)
class TensorType:
    """A MIL tensor type: element type and shape (None for an unknown dimension)."""

    data_type: int
    shape: tuple[int | None, ...] | None  # None: unknown rank

    @property
    def dtype(self) -> np.dtype:
        try:
            return NUMPY_DTYPES[self.data_type]
        except KeyError:
            raise ProgramFormatError(
                f"The MIL element type {self.type_name} has no numpy equivalent in the reference "
                f"runtime; supported: {', '.join(_MIL_NAMES[t] for t in NUMPY_DTYPES)}."
            ) from None

    @property
    def type_name(self) -> str:
        return _MIL_NAMES.get(self.data_type, f"type#{self.data_type}")

    def __str__(self) -> str:
        if self.shape is None:
            return f"tensor<{self.type_name}, *>"
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"tensor<{self.type_name}, [{dims}]>"

    def fits(self, shape: tuple[int, ...]) -> bool:
        """Whether a concrete `shape` matches this type's known dimensions."""
        if self.shape is None:
            return True
        return len(shape) == len(self.shape) and all(
            want is None or want == got for want, got in zip(self.shape, shape)
        )


@dataclass(frozen=True)
class OtherType:
    """A non-tensor MIL type (list, tuple, dictionary, state), kept by its description."""

    kind: str

    def __str__(self) -> str:
        return self.kind


@dataclass(frozen=True)
class StateType:
    """A MIL state (iOS18): a tensor that keeps its value between predictions."""

    wrapped: TensorType

    def __str__(self) -> str:
        return f"state<{self.wrapped}>"


def parse_type(value_type: MIL_pb2.ValueType) -> TensorType | StateType | OtherType:
    """The `TensorType` (or a `StateType`, or an `OtherType`) of a protobuf ValueType."""
    kind = value_type.WhichOneof("type")
    if kind == "tensorType":
        tensor = value_type.tensorType
        if tensor.rank < 0:
            return TensorType(tensor.dataType, None)
        dims = tuple(
            d.constant.size if d.WhichOneof("dimension") == "constant" else None
            for d in tensor.dimensions
        )
        return TensorType(tensor.dataType, dims)
    if kind == "stateType":
        wrapped = parse_type(value_type.stateType.wrappedType)
        if isinstance(wrapped, TensorType):
            return StateType(wrapped)
    if kind == "listType":
        return OtherType(f"list<{parse_type(value_type.listType.type)}>")
    return OtherType(str(kind))


class BlobStore:
    """Reads `BlobFileValue` weights from the files of a weights directory."""

    def __init__(self, weights_dir: Path | None) -> None:
        self.weights_dir = Path(weights_dir) if weights_dir is not None else None
        self._readers: dict[Path, Any] = {}

    def read(self, blob: MIL_pb2.Value.BlobFileValue, tensor_type: TensorType) -> np.ndarray:
        if self.weights_dir is None:
            raise ProgramFormatError(
                f"The program stores weights in {blob.fileName!r} but no weights directory was "
                "given; pass the .mlpackage's Data/com.apple.CoreML/weights folder."
            )
        path = self.weights_dir / blob.fileName.rsplit("/", 1)[-1]
        method = _BLOB_READERS.get(tensor_type.data_type)
        if method is None:
            raise ProgramFormatError(
                f"Weights of element type {tensor_type.type_name} in {path} cannot be read; "
                f"supported: {', '.join(_MIL_NAMES[t] for t in _BLOB_READERS)}."
            )
        if path not in self._readers:
            if not path.is_file():
                raise ProgramFormatError(f"The weights file {path} does not exist.")
            from coremltools.libmilstoragepython import _BlobStorageReader

            self._readers[path] = _BlobStorageReader(str(path))
        data = np.asarray(getattr(self._readers[path], method)(blob.offset))
        if tensor_type.data_type == _DT.FLOAT16:
            data = data.view(np.float16)
        return data.astype(tensor_type.dtype, copy=False).reshape(_concrete(tensor_type))


def _concrete(tensor_type: TensorType) -> tuple[int, ...]:
    if tensor_type.shape is None or None in tensor_type.shape:
        raise ProgramFormatError(f"A constant of type {tensor_type} must have a fully known shape.")
    return tuple(int(d) for d in tensor_type.shape)


def _unpack_bits(raw: bytes, nbits: int, count: int, signed: bool) -> np.ndarray:
    """Sub-byte values packed from the least significant bit upwards."""
    bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[: count * nbits]
    values = bits.reshape(count, nbits).astype(np.int32) @ (1 << np.arange(nbits, dtype=np.int32))
    if signed:
        values = np.where(values >= 1 << (nbits - 1), values - (1 << nbits), values)
    return values


def _tensor_from_immediate(tensor: MIL_pb2.TensorValue, tensor_type: TensorType) -> Any:
    shape = _concrete(tensor_type)
    field = tensor.WhichOneof("value")
    if field == "bytes":
        raw = tensor.bytes.values
        if tensor_type.data_type in _SUB_BYTE_BITS:
            flat = _unpack_bits(
                raw, _SUB_BYTE_BITS[tensor_type.data_type], int(np.prod(shape, dtype=np.int64)),
                tensor_type.data_type in _SIGNED_SUB_BYTE,
            )
        else:
            flat = np.frombuffer(raw, tensor_type.dtype)
    elif field is None:
        flat = np.zeros(0, tensor_type.dtype)
    else:
        flat = list(getattr(tensor, field).values)
        if tensor_type.data_type == _DT.STRING:
            if not shape:
                return str(flat[0])
            return np.array(flat, dtype=object).reshape(shape)
    return np.asarray(flat).astype(tensor_type.dtype).reshape(shape)


def parse_value(value: MIL_pb2.Value, blobs: BlobStore) -> Any:
    """The numpy (or Python) value of a protobuf Value: immediate, list or blob file."""
    value_type = parse_type(value.type)
    which = value.WhichOneof("value")
    if which == "blobFileValue":
        if not isinstance(value_type, TensorType):
            raise ProgramFormatError(f"A weights blob must hold a tensor, not a {value_type}.")
        return blobs.read(value.blobFileValue, value_type)
    immediate = value.immediateValue
    kind = immediate.WhichOneof("value")
    if kind == "tensor":
        return _tensor_from_immediate(immediate.tensor, value_type)
    if kind == "list":
        return [parse_value(item, blobs) for item in immediate.list.values]
    if kind == "tuple":
        return tuple(parse_value(item, blobs) for item in immediate.tuple.values)
    if kind == "dictionary":
        return {
            _hashable(parse_value(entry.key, blobs)): parse_value(entry.value, blobs)
            for entry in immediate.dictionary.values
        }
    raise ProgramFormatError(f"The MIL value kind {kind!r} (type {value_type}) is not supported.")


def _hashable(key: Any) -> Any:
    return key.item() if isinstance(key, np.ndarray) else key
