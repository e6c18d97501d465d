"""Size against task metric: one point per artifact, the Pareto front, and an inline SVG plot.

The task metric is what the recipe is for: the denoised PSNR against the clean image (mean over
the samples) for a denoiser, the fraction of samples with PyTorch's top-1 class for a
classifier, else the lowest PSNR of the artifact's outputs against PyTorch. An artifact is on
the Pareto front when no other is at least as small and at least as good, and better in one.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass

from modelbuild.validation.report import Report

PSNR_CAP = 150.0  # identical outputs (PSNR inf) are drawn at this height


@dataclass(frozen=True)
class Point:
    """One artifact: its file size and its task metric."""

    artifact: str
    megabytes: float
    metric: float
    compression: str


def task_metric(report: Report) -> tuple[str, dict[str, float]]:
    """(what the metric is, {artifact: value}) for the artifacts that were measured."""
    denoise = {}
    for figure in report.task_figures:
        if figure.artifact in report.artifacts:
            denoise.setdefault(figure.artifact, []).append(figure.figures["psnr_output"])
    if denoise:
        return "denoised PSNR (dB)", {name: sum(v) / len(v) for name, v in denoise.items()}
    top1: dict[str, list[float]] = {}
    psnr: dict[str, list[float]] = {}
    for c in report.comparisons:
        if "top1" in c.figures:
            top1.setdefault(c.artifact, []).append(c.figures["top1"])
        if "psnr" in c.figures:
            psnr.setdefault(c.artifact, []).append(min(c.figures["psnr"], PSNR_CAP))
    if top1:
        return "top-1 agreement with PyTorch", {name: sum(v) / len(v) for name, v in top1.items()}
    return "PSNR vs PyTorch (dB)", {name: min(v) for name, v in psnr.items()}


def points(report: Report) -> tuple[str, list[Point]]:
    """The metric's name and every artifact that has both a size and a value."""
    name, values = task_metric(report)
    found = [Point(artifact, info["size_bytes"] / 1e6, values[artifact], info.get("compression", ""))
             for artifact, info in report.artifacts.items()
             if "size_bytes" in info and artifact in values and math.isfinite(values[artifact])]
    return name, found


def pareto_front(candidates: list[Point]) -> list[Point]:
    """The points no other point dominates (as small or smaller and as good or better, and not equal)."""
    def dominates(a: Point, b: Point) -> bool:
        return (a.megabytes <= b.megabytes and a.metric >= b.metric
                and (a.megabytes < b.megabytes or a.metric > b.metric))

    return sorted((p for p in candidates if not any(dominates(q, p) for q in candidates)),
                  key=lambda p: p.megabytes)


WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 660, 360, 84, 170, 16, 44


def tradeoff_svg(metric: str, candidates: list[Point]) -> str:
    """An inline SVG: size (MB) across, the metric up; the Pareto front joined by a line and ringed."""
    if not candidates:
        return ""
    front = pareto_front(candidates)
    low_x, high_x = _span([p.megabytes for p in candidates], floor=0.0)
    low_y, high_y = _span([p.metric for p in candidates])

    def x(value: float) -> float:
        return LEFT + (value - low_x) / (high_x - low_x) * (WIDTH - LEFT - RIGHT)

    def y(value: float) -> float:
        return HEIGHT - BOTTOM - (value - low_y) / (high_y - low_y) * (HEIGHT - TOP - BOTTOM)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'role="img" aria-label="{html.escape(metric)} against file size" font-size="11" '
             f'font-family="system-ui,sans-serif">',
             f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" '
             f'fill="none" stroke="#bbb"/>']
    for tick in _ticks(low_x, high_x):
        parts.append(f'<text x="{x(tick):.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">{tick:g}</text>')
    for tick in _ticks(low_y, high_y):
        parts.append(f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>')
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" text-anchor="middle">file size (MB)</text>')
    parts.append(f'<text transform="translate(14 {(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" '
                 f'text-anchor="middle">{html.escape(metric)}</text>')
    if len(front) > 1:
        path = " ".join(f"{x(p.megabytes):.1f},{y(p.metric):.1f}" for p in front)
        parts.append(f'<polyline class="pareto" points="{path}" fill="none" stroke="#1a7f37" stroke-width="1.5"/>')
    labels: dict[tuple[int, int], list[str]] = {}  # artifacts drawn at the same spot share one label
    for p in candidates:
        on_front = p in front
        label = html.escape(p.artifact + (f" ({p.compression})" if p.compression else ""))
        parts.append(f'<circle class="{"front" if on_front else "dominated"}" cx="{x(p.megabytes):.1f}" '
                     f'cy="{y(p.metric):.1f}" r="{5 if on_front else 4}" '
                     f'fill="{"#1a7f37" if on_front else "#888"}"><title>{label}: {p.megabytes:.2f} MB, '
                     f'{p.metric:.4g}{" (Pareto front)" if on_front else ""}</title></circle>')
        labels.setdefault((round(x(p.megabytes)), round(y(p.metric))), []).append(label)
    placed: list[tuple[int, int]] = []
    for (spot_x, spot_y), names in sorted(labels.items()):
        y_text = spot_y + 4
        while any(abs(y_text - other_y) < 12 and abs(spot_x - other_x) < 150 for other_x, other_y in placed):
            y_text += 13  # a neighbour's label is there: write below it
        placed.append((spot_x, y_text))
        parts.append(f'<text x="{spot_x + 7}" y="{y_text}">{", ".join(names)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _span(values: list[float], floor: float | None = None) -> tuple[float, float]:
    low, high = min(values), max(values)
    if floor is not None:
        low = min(low, floor)
    pad = (high - low) * 0.08 or max(abs(high) * 0.05, 1e-3)
    return (low if floor is not None else low - pad), high + pad


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    step = 10 ** math.floor(math.log10((high - low) / count))
    for factor in (1, 2, 5, 10):
        if (high - low) / (step * factor) <= count:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step) + 1)]


def size_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """Per artifact: compression, file and weight megabytes, the share of the file it was made from, the
    task metric, and whether it is on the Pareto front (plain text cells)."""
    metric, found = points(report)
    values = {p.artifact: p.metric for p in found}
    front = {p.artifact for p in pareto_front(found)}
    rows = []
    for name, info in report.artifacts.items():
        if "size_bytes" not in info:
            continue
        source = report.artifacts.get(info.get("from_variant", ""), {})
        share = (f"{info['size_bytes'] / source['size_bytes']:.0%} of {info['from_variant']}"
                 if source.get("size_bytes") else "")
        weights = f"{info['weights_bytes'] / 1e6:.2f}" if "weights_bytes" in info else ""
        value = f"{values[name]:.4g}" if name in values else "-"
        rows.append([name, info.get("compression", "") or "-", f"{info['size_bytes'] / 1e6:.2f}", weights, share,
                     value, "✓" if name in front else ""])
    return ["artifact", "compression", "file (MB)", "weights (MB)", "size", metric, "Pareto front"], rows
