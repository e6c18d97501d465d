"""Executor for pipeline models: run the sub-models in order over a shared pool of features."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from modelbuild.runtime.features import describe_features


class PipelineExecutor:
    """Runs `spec.pipeline*.pipeline.models` one after another with the reference runtime."""

    def __init__(self, spec: Any, weights_dir: Path | None) -> None:
        from modelbuild.runtime.model import Model

        kind = spec.WhichOneof("Type")
        container = getattr(spec, kind)
        pipeline = container if kind == "pipeline" else container.pipeline
        self.stages = [Model(sub, backend="reference", weights_dir=weights_dir) for sub in pipeline.models]
        self.outputs = describe_features(spec.description.output)

    def run(self, values: dict[str, Any], *, intermediate: bool = False) -> dict[str, Any]:
        from modelbuild.runtime.images import array_to_image

        pool: dict[str, Any] = {}
        for name, value in values.items():
            pool[name] = value
        for stage in self.stages:
            feeds = {}
            for name, desc in stage.inputs.items():
                if name not in pool:
                    continue
                value = pool[name]
                # inputs were already checked and converted for the first stage: undo the image conversion
                if desc.kind == "image" and not hasattr(value, "convert"):
                    value = array_to_image(value, desc)
                feeds[name] = value
            pool.update(stage.predict(feeds, intermediate=intermediate))
        return pool
