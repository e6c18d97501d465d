"""Check an ML Program's weight files against the blob references in its program.

An .mlpackage keeps large constants in `weights/weight.bin`: a 64-byte storage header (blob
count, version 2), then per blob a 64-byte record (sentinel 0xDEADBEEF, element type, size in
bytes, offset of the data) followed by the data. The program refers to each record by file
name and offset. A truncated or overwritten file would otherwise surface as "index out of
bounds" deep inside a prediction; `blob_problems` names the file, the offset and what is wrong.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, Iterator

SENTINEL = 0xDEADBEEF
HEADER_BYTES = 64
RECORD_BYTES = 64


def blob_references(message: Any) -> Iterator[tuple[str, int]]:
    """(file name, offset) of every BlobFileValue in a protobuf message, depth first."""
    if type(message).__name__ == "BlobFileValue":
        yield message.fileName, int(message.offset)
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.is_repeated:  # a list, or a map whose values are messages
            items = value.values() if field.message_type.GetOptions().map_entry else value
            for item in items:
                yield from blob_references(item)
        else:
            yield from blob_references(value)


def blob_problems(spec: Any, weights_dir: Path | None) -> list[str]:
    """What is wrong with the weight files an ML Program spec refers to (empty when they are intact)."""
    if spec.WhichOneof("Type") != "mlProgram":
        return []
    problems: list[str] = []
    for file_name, offset in sorted(set(blob_references(spec.mlProgram))):
        if weights_dir is None:
            return [f"the program stores weights in {file_name} but the package has no weights folder"]
        path = Path(weights_dir) / file_name.rsplit("/", 1)[-1]
        problem = _record_problem(path, offset)
        if problem:
            problems.append(f"{path.name} at offset {offset}: {problem}")
    return problems


def _record_problem(path: Path, offset: int) -> str | None:
    """What is wrong with the blob record at `offset` of `path` (reads 128 bytes, not the whole file)."""
    try:
        with open(path, "rb") as stream:
            size_of_file = stream.seek(0, 2)
            stream.seek(0)
            header = stream.read(HEADER_BYTES)
            stream.seek(offset)
            record = stream.read(RECORD_BYTES)
    except OSError:
        return "the file is missing or unreadable"
    if len(header) < HEADER_BYTES or struct.unpack_from("<I", header, 4)[0] != 2:
        return "the file has no valid storage header (version 2)"
    if len(record) < RECORD_BYTES:
        return f"the blob record lies past the end of the file ({size_of_file} bytes: truncated?)"
    sentinel, _, size, start = struct.unpack_from("<IIQQ", record)
    if sentinel != SENTINEL:
        return f"no blob record there (sentinel 0x{sentinel:08x}, expected 0x{SENTINEL:08x}: overwritten?)"
    if start + size > size_of_file:
        return f"the blob's {size} bytes at {start} lie past the end of the file ({size_of_file} bytes: truncated?)"
    return None
