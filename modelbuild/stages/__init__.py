"""The build stages behind the doit tasks: ONNX export and Core ML conversion.

Each stage is a plain function (recipe in, artifact out) that imports its heavy
tools inside; `modelbuild.tasks` wraps them into doit actions.
"""
