"""Hugging Face transformers models built from a configuration, with nothing downloaded.

    model:
      factory: modelbuild.zoo.transformers:from_config
      args:
        model_type: bert                                  # any AutoConfig model type
        task: AutoModelForSequenceClassification          # or AutoModel, AutoModelForCausalLM, ...
        config: {hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 256}

The model returns a ModelOutput (a dataclass): name the recipe's outputs after its fields
(`logits`, `last_hidden_state`, ...) or give each a `path`. Weights stay the seeded random
initialisation unless the recipe loads a state dict (`model.weights`).
"""
from __future__ import annotations

from typing import Any


def from_config(model_type: str, task: str = "AutoModel", config: dict[str, Any] | None = None,
                attn_implementation: str = "eager", submodule: str | None = None) -> Any:
    """`transformers.<task>.from_config(AutoConfig.for_model(model_type, **config))`, in eval mode.

    `attn_implementation` 'eager' writes attention as plain matmul/softmax (what the converters
    handle best); `submodule` picks a part, e.g. 'encoder' of a Whisper model.
    """
    import transformers

    auto_class = getattr(transformers, task, None)
    if auto_class is None or not hasattr(auto_class, "from_config"):
        raise ValueError(f"transformers has no auto class {task!r}; expected e.g. AutoModel, "
                         f"AutoModelForSequenceClassification, AutoModelForCausalLM, AutoModelForImageClassification")
    try:
        configuration = transformers.AutoConfig.for_model(model_type, **(config or {}))
    except ValueError as err:
        raise ValueError(f"model_type {model_type!r}: {err}") from None
    model = auto_class.from_config(configuration, attn_implementation=attn_implementation)
    for part in (submodule.split(".") if submodule else []):
        model = getattr(model, part)
    return model.eval()
