"""Write a validation report as report.json, report.md and a self-contained report.html."""
from __future__ import annotations

import json
from pathlib import Path

from modelbuild import atomic
from modelbuild.validation.html import render_html
from modelbuild.validation.report import Report, comparison_rows, denoise_rows, top5_rows
from modelbuild.validation.tradeoff import size_rows


def write_reports(report: Report, artifact_dir: Path) -> list[Path]:
    """Write the three report files atomically; return their paths."""
    files = {
        "report.json": json.dumps(report.to_json(), indent=2, allow_nan=True) + "\n",
        "report.md": render_markdown(report),
        "report.html": render_html(report),
    }
    for name, text in files.items():
        atomic.write_text(artifact_dir / name, text)
    return [artifact_dir / name for name in files]


def summary_lines(report: Report) -> list[str]:
    """One line per artifact: ✓/✗, how many comparisons passed, the worst figures, the backend."""
    lines = [f"✗ {line}" for line in report.flat_lines()]
    width = max((len(name) for name in report.artifacts), default=0)
    for name, info in report.artifacts.items():
        mine = [c for c in report.comparisons if c.artifact == name]
        passed = all(c.passed for c in mine) and bool(mine)
        worst = max((c.figures["max_abs"] for c in mine if "max_abs" in c.figures), default=float("nan"))
        psnrs = [c.figures["psnr"] for c in mine if "psnr" in c.figures]
        denoise = [f.figures for f in report.task_figures if f.artifact == name]
        task = ""
        if denoise:
            mean = {key: sum(f[key] for f in denoise) / len(denoise) for key in denoise[0]}
            task = "; denoise " + _denoise_text(mean) + (f" (mean of {len(denoise)})" if len(denoise) > 1 else "")
        top1 = [c.figures["top1"] for c in mine if "top1" in c.figures]
        agreement = f", top-1 agreement {sum(top1):.0f}/{len(top1)}" if top1 else ""
        flat = sorted({c.output for c in mine} & set(report.flat_outputs))
        caveat = f" (against a flat reference {', '.join(flat)}: proves nothing)" if flat else ""
        mark = "✗" if not passed else "?" if flat else "✓"
        errors = [c.error for c in mine if c.error]
        if errors and len(errors) == len(mine):  # nothing could be compared: say why instead of NaN figures
            lines.append(f"✗ {name:<{width}} {errors[0]}")
            continue
        lines.append(f"{mark} {name:<{width}} {sum(c.passed for c in mine)}/{len(mine)} passed"
                     f"{caveat}, max abs {worst:.3g}, min PSNR {min(psnrs, default=float('nan')):.1f} dB{agreement}"
                     f"{task} [{info['backend']}]")
    return lines


def render_markdown(report: Report) -> str:
    """The report as Markdown tables."""
    out = [f"# Validation of {report.recipe}: {'passed' if report.passed else 'FAILED'}", "",
           f"Reference: {report.reference}. Samples: {', '.join(report.samples)}.", "",
           "| artifact | file | backend |", "|---|---|---|"]
    out += [f"| {name} | {info['file']} | {info['backend']} |" for name, info in report.artifacts.items()]
    header, rows = size_rows(report)
    if rows:
        out += ["", "## Size and task metric", "", _md_row(header), _md_row(["---"] * len(header))]
        out += [_md_row(row) for row in rows]
    if report.flat_outputs:
        out += ["", "## Flat reference", "", *[f"- ✗ {line}" for line in report.flat_lines()]]
    header, rows, _ = comparison_rows(report)
    out += ["", "## Comparisons with PyTorch", "", _md_row(header), _md_row(["---"] * len(header))]
    out += [_md_row(row) for row in rows]
    if report.top5:
        header, rows = top5_rows(report)
        out += ["", "## Top-5 labels", "", _md_row(header), _md_row(["---"] * len(header))]
        out += [_md_row(row) for row in rows]
    if report.task_figures:
        header, rows = denoise_rows(report)
        out += ["", "## Denoising", "", _md_row(header), _md_row(["---"] * len(header))]
        out += [_md_row(row) for row in rows]
    out += ["", "## Tools", "", *[f"- {name} {version}" for name, version in report.tools.items()], ""]
    return "\n".join(out)


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _denoise_text(figures: dict[str, float]) -> str:
    text = f"{figures['psnr_input']:.2f} -> {figures['psnr_output']:.2f} dB"
    same = figures.get("psnr_torch_same_input")
    if same is not None:
        text += f" (PyTorch on the same input: {same:.2f} dB)"
    return text
