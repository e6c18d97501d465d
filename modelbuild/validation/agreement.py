"""Agreement matrix: how often N models pick the same top-1 class on a sample set.

Every model's outputs are reduced to one score vector per sample (logits,
probabilities, or a Core ML classifier's probability dictionary laid out in
label order); agreement[i][j] is the fraction of samples on which models i
and j have the same arg-max.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np


def scores(outputs: dict[str, object], labels: list[str] | None = None) -> np.ndarray:
    """A model's outputs on one sample -> a flat score vector (the first array or probability dict)."""
    for value in outputs.values():
        if isinstance(value, dict):
            if labels is None:
                raise ValueError("a classifier's probability dictionary needs the class labels to be compared")
            return np.array([float(value.get(label, value.get(i, 0.0))) for i, label in enumerate(labels)])
    for value in outputs.values():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            return value.reshape(-1).astype(np.float64)
    raise ValueError(f"no score output among {', '.join(outputs)}: expected an array or a probability dictionary")


def top_k(score: np.ndarray, k: int) -> list[int]:
    """Indices of the k largest scores, best first."""
    return [int(i) for i in np.argsort(-score, kind="stable")[:k]]


@dataclass
class AgreementMatrix:
    """Top-1 predictions of named models on named samples, and their pairwise agreement."""

    models: list[str]
    samples: list[str]
    top1: dict[str, list[int]] = field(default_factory=dict)  # model -> top-1 index per sample
    labels: list[str] | None = None

    def matrix(self) -> np.ndarray:
        """agreement[i, j] = fraction of samples where models i and j agree on top-1."""
        n = len(self.models)
        result = np.ones((n, n))
        for i, a in enumerate(self.models):
            for j, b in enumerate(self.models):
                pairs = list(zip(self.top1[a], self.top1[b]))
                result[i, j] = sum(x == y for x, y in pairs) / len(pairs) if pairs else float("nan")
        return result

    def label(self, index: int) -> str:
        return self.labels[index] if self.labels and 0 <= index < len(self.labels) else str(index)

    def to_json(self) -> dict:
        return {"models": self.models, "samples": self.samples,
                "top1": {m: [self.label(i) for i in v] for m, v in self.top1.items()},
                "agreement": self.matrix().round(6).tolist()}

    def markdown(self) -> str:
        """The N x N table, then each model's top-1 per sample."""
        matrix = self.matrix()
        lines = ["| | " + " | ".join(self.models) + " |", "|---" * (len(self.models) + 1) + "|"]
        lines += [f"| {a} | " + " | ".join(f"{v:.0%}" for v in row) + " |" for a, row in zip(self.models, matrix)]
        lines += ["", "| sample | " + " | ".join(self.models) + " |", "|---" * (len(self.models) + 1) + "|"]
        lines += [f"| {s} | " + " | ".join(self.label(self.top1[m][k]) for m in self.models) + " |"
                  for k, s in enumerate(self.samples)]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        """A self-contained page with the matrix as a colour-coded heatmap table."""
        matrix = self.matrix()
        head = "".join(f"<th>{html.escape(m)}</th>" for m in self.models)
        rows = []
        for a, row in zip(self.models, matrix):
            cells = "".join(f"<td style='background:{_colour(v)}'>{v:.0%}</td>" for v in row)
            rows.append(f"<tr><th>{html.escape(a)}</th>{cells}</tr>")
        return ("<!doctype html><html><head><meta charset='utf-8'><title>Agreement matrix</title><style>"
                "body{font:14px system-ui,sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:6px 10px;"
                "text-align:center}table{border-collapse:collapse}</style></head><body>"
                f"<h1>Top-1 agreement on {len(self.samples)} sample(s)</h1>"
                f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>"
                f"<pre>{html.escape(self.markdown())}</pre></body></html>")


def _colour(value: float) -> str:
    """Red (0 %) to green (100 %)."""
    if not np.isfinite(value):
        return "#eee"
    red, green = int(230 - 150 * value), int(120 + 100 * value)
    return f"rgb({red},{green},120)"
