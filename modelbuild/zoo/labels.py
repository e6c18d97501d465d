"""Class labels that ship with installed packages (no download)."""
from __future__ import annotations


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names from torchvision's weight metadata."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])
