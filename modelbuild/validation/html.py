"""A self-contained HTML validation report: tables plus inline PNG pictures (no external files)."""
from __future__ import annotations

import base64
import html
import io

import numpy as np
from PIL import Image

from modelbuild.validation.report import Report, comparison_rows, denoise_rows, top5_rows
from modelbuild.validation.tradeoff import points, size_rows, tradeoff_svg

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1 .ok{color:#1a7f37} h1 .bad{color:#cf222e}
table{border-collapse:collapse;margin:1em 0} td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}
th{background:#f6f8fa} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#ffebe9} .mark-ok{color:#1a7f37;font-weight:bold} .mark-bad{color:#cf222e;font-weight:bold}
.gallery{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:12px} figure{margin:0} figcaption{font-size:12px;color:#555;max-width:256px}
img{display:block;image-rendering:pixelated;border:1px solid #ccc}
"""


def png_data_uri(picture: np.ndarray) -> str:
    """An HWC uint8 picture as a data: URI."""
    image = Image.fromarray(picture[:, :, 0] if picture.shape[2] == 1 else picture)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figure(picture: np.ndarray, caption: str) -> str:
    return (f'<figure><img src="{png_data_uri(picture)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table(header: list[str], rows: list[list[str]], failing: list[bool] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="fail"' if failing and failing[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(report: Report) -> str:
    """The whole report page."""
    status = '<span class="ok">passed</span>' if report.passed else '<span class="bad">FAILED</span>'
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Validation of {html.escape(report.recipe)}"
             f"</title><style>{STYLE}</style></head><body>",
             f"<h1>Validation of {html.escape(report.recipe)}: {status}</h1>",
             f"<p>Reference: {html.escape(report.reference)}. Samples: {html.escape(', '.join(report.samples))}.</p>",
             "<h2>Artifacts</h2>",
             _table(["artifact", "file", "backend that produced its numbers"],
                    [[html.escape(n), html.escape(i["file"]), html.escape(i["backend"])]
                     for n, i in report.artifacts.items()])]
    header, rows = size_rows(report)
    if rows:
        metric, found = points(report)
        parts += ["<h2>Size and task metric</h2>", tradeoff_svg(metric, found),
                  _table(header, [[html.escape(cell) for cell in row] for row in rows])]
    if report.flat_outputs:
        parts += ["<h2>Flat reference</h2>",
                  *[f"<p class='mark-bad'>✗ {html.escape(line)}</p>" for line in report.flat_lines()]]
    header, rows, failing = comparison_rows(report)
    rows = [[html.escape(cell) for cell in row] for row in rows]
    parts += ["<h2>Comparisons with PyTorch</h2>", _table(header, rows, failing)]
    if report.top5:
        header, rows = top5_rows(report)
        parts += ["<h2>Top-5 labels</h2>", _table(header, [[html.escape(cell) for cell in row] for row in rows])]
    if report.task_figures:
        header, rows = denoise_rows(report)
        parts += ["<h2>Denoising</h2>", _table(header, [[html.escape(cell) for cell in row] for row in rows])]
    for sample, entry in report.pictures.items():
        parts.append(f"<h2>{html.escape(sample)}</h2>")
        first_row = [_figure(entry[key], key) for key in ("clean", "input") if key in entry]
        rows = {name: [_figure(pics["output"], f"{name} output")] +
                ([_figure(pics["error"], f"|{name} - torch| (brightest = {pics['error_scale']:.3g})")]
                 if "error" in pics else [])
                for name, pics in entry.get("artifacts", {}).items()}
        if "torch" in rows:
            first_row += rows.pop("torch")
        for row in [first_row, *rows.values()]:
            parts.append(f"<div class='gallery'>{''.join(row)}</div>")
    parts += ["<h2>Tools</h2>", _table(["tool", "version"], [[html.escape(k), html.escape(v)]
                                                             for k, v in report.tools.items()]),
              "</body></html>"]
    return "\n".join(parts)
