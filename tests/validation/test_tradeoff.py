"""Size against task metric: the Pareto front and its inline SVG."""
from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from modelbuild.validation.report import Comparison, Report, TaskFigure
from modelbuild.validation.tradeoff import Point, pareto_front, points, size_rows, tradeoff_svg

CANDIDATES = [Point("fp32", 100.0, 0.9, ""), Point("int8", 25.0, 0.9, "int8"),
              Point("palette6", 19.0, 0.85, "6-bit palette"), Point("bloated", 30.0, 0.8, "50% sparse"),
              Point("palette4", 13.0, 0.5, "4-bit palette")]


def test_pareto_front_keeps_what_nothing_beats():
    front = [p.artifact for p in pareto_front(CANDIDATES)]
    assert front == ["palette4", "palette6", "int8"]  # fp32: int8 is as good and smaller; bloated: int8 beats it


def test_svg_is_well_formed_and_marks_the_front():
    svg = tradeoff_svg("top-1 agreement", CANDIDATES)
    root = ElementTree.fromstring(svg)
    namespace = "{http://www.w3.org/2000/svg}"
    circles = root.findall(f"{namespace}circle")
    assert len(circles) == 5
    assert sorted(c.get("class") for c in circles) == ["dominated"] * 2 + ["front"] * 3
    assert len(root.find(f"{namespace}polyline").get("points").split()) == 3
    x_of = {c.find(f"{namespace}title").text.split(" ")[0].rstrip(":"): float(c.get("cx")) for c in circles}
    assert x_of["palette4"] < x_of["palette6"] < x_of["int8"] < x_of["bloated"] < x_of["fp32"]


def test_denoiser_metric_and_size_rows():
    report = Report(recipe="r", reference="torch")
    report.artifacts = {"multiarray": {"file": "a.mlmodel", "backend": "x", "size_bytes": 3_000_000},
                        "int8": {"file": "b.mlmodel", "backend": "x", "size_bytes": 800_000, "weights_bytes": 700_000,
                                 "compression": "int8", "from_variant": "multiarray"}}
    report.task_figures = [TaskFigure("torch", "s", "denoise", {"psnr_output": 33.0}),
                           TaskFigure("multiarray", "s", "denoise", {"psnr_output": 32.9}),
                           TaskFigure("int8", "s", "denoise", {"psnr_output": 32.7})]
    report.comparisons = [Comparison("int8", "s", "y", "output units", {"psnr": 40.0, "max_abs": 0.1}, [])]
    metric, found = points(report)
    assert metric == "denoised PSNR (dB)" and [p.metric for p in found] == [32.9, 32.7]
    header, rows = size_rows(report)
    assert rows[1] == ["int8", "int8", "0.80", "0.70", "27% of multiarray", "32.7", "✓"]
