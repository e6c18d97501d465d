"""Models that ship with modelbuild, written to convert cleanly to ONNX and Core ML."""
