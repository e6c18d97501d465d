"""The ONNX stage's error, raised by both exporters (`onnx_stage`'s TorchScript one and `onnx_dynamo`)."""
from __future__ import annotations


class OnnxExportError(RuntimeError):
    """The export failed, the checker refused the file, or onnxruntime disagrees with the reference."""
