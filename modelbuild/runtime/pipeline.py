"""Executor for pipeline models: run the sub-models in order over a shared pool of features."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from modelbuild.runtime.executor import Executor
from modelbuild.runtime.feature_values import finish_outputs
from modelbuild.runtime.features import FeatureDescription, check_input_names, describe_features

PIPELINE_TYPES = ("pipeline", "pipelineClassifier", "pipelineRegressor")


@dataclass(frozen=True)
class Stage:
    """One sub-model of a pipeline: the inputs it declares and the executor that runs it."""

    inputs: dict[str, FeatureDescription]
    executor: Executor


class PipelineExecutor(Executor):
    """Runs `spec.pipeline*.pipeline.models` one after another.

    `stage_executor(sub_spec, weights_dir)` makes each sub-model's executor (the reference backend's
    choice of executor by model type, handed in so that a pipeline may hold any model, pipelines too).
    """

    def __init__(self, spec: Any, weights_dir: Path | None,
                 stage_executor: Callable[[Any, Path | None], Executor]) -> None:
        kind = spec.WhichOneof("Type")
        container = getattr(spec, kind)
        pipeline = container if kind == "pipeline" else container.pipeline
        self.stages = [Stage(describe_features(sub.description.input), stage_executor(sub, weights_dir))
                       for sub in pipeline.models]
        self.outputs = describe_features(spec.description.output)

    def predict(self, inputs: dict[str, Any], *, intermediate: bool = False, state: Any = None) -> dict[str, Any]:
        """Each stage reads its declared inputs from the pool (the caller's inputs and the earlier stages'
        outputs, as feature values) and checks them; its outputs join the pool."""
        pool = dict(inputs)
        for stage in self.stages:
            feeds = {name: pool[name] for name in stage.inputs if name in pool}
            check_input_names(stage.inputs, feeds)
            pool.update(stage.executor.predict(feeds, intermediate=intermediate))
        return finish_outputs(self.outputs, pool, intermediate=intermediate)
