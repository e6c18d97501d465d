"""The validation report: every comparison made, its figures, the checks and their limits."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Check:
    """One figure against one limit."""

    figure: str
    value: float
    limit: float
    kind: str  # "max" (value <= limit) or "min" (value >= limit)

    @property
    def passed(self) -> bool:
        """NaN never passes (an output with NaN in it is no match for anything)."""
        return bool(self.value <= self.limit if self.kind == "max" else self.value >= self.limit)


@dataclass
class Comparison:
    """One artifact's output on one sample, compared with the reference."""

    artifact: str
    sample: str
    output: str
    units: str  # "output units" or "pixel levels"
    figures: dict[str, float]
    checks: list[Check]
    error: str | None = None  # set when the artifact could not be run: never counted as passed
    note: str | None = None  # e.g. the runtime's message when it refused an undeclared shape
    compared: str = "values"  # "probabilities": a classifier's Core ML probabilities vs softmax(logits)

    @property
    def label(self) -> str:
        """The output and, when it is not compared as it is, how (a classifier's probabilities)."""
        return self.output if self.compared == "values" else f"{self.output} as {self.compared}"

    @property
    def passed(self) -> bool:
        return self.error is None and all(check.passed for check in self.checks)


@dataclass
class TaskFigure:
    """A task metric (denoising: PSNR of the noisy input and of the output against the clean image)."""

    artifact: str
    sample: str
    metric: str
    figures: dict[str, float]


@dataclass
class Report:
    """Everything validation measured for one recipe."""

    recipe: str
    reference: str
    artifacts: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> {file, backend, size_bytes, weights_bytes[, compression]}
    samples: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    task_figures: list[TaskFigure] = field(default_factory=list)
    tools: dict[str, str] = field(default_factory=dict)
    flat_outputs: dict[str, str] = field(default_factory=dict)  # output -> why the reference is flat (a failure)
    fix_for_flat: str = ""  # the recipe change that makes the reference compute something
    top5: dict[str, dict[str, list[tuple[str, float]]]] = field(default_factory=dict)  # sample -> model -> labels
    pictures: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)  # for the HTML only

    @property
    def passed(self) -> bool:
        return bool(self.comparisons) and not self.flat_outputs and all(c.passed for c in self.comparisons)

    def add_top5(self, sample: str, model: str, labels: list[tuple[str, float]]) -> None:
        """Record a model's five most probable labels on a sample (classifiers)."""
        self.top5.setdefault(sample, {}).setdefault(model, labels)

    def flat_lines(self) -> list[str]:
        """One sentence per flat reference output, with the fix."""
        return [f"The reference's {name} {why}: agreeing with it proves nothing; {self.fix_for_flat}."
                for name, why in self.flat_outputs.items()]

    def failures(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.passed]

    def to_json(self) -> dict[str, Any]:
        """The report as plain data (no pictures), with a pass/fail per comparison and check."""
        data = asdict(self)
        data.pop("pictures")
        for comparison, raw in zip(self.comparisons, data["comparisons"]):
            raw["passed"] = comparison.passed
            for check, raw_check in zip(comparison.checks, raw["checks"]):
                raw_check["passed"] = check.passed
        data["passed"] = self.passed
        return data

    def failure_table(self) -> str:
        """Every failure: flat reference outputs, a table of missed limits, then one line per error."""
        rows = [("artifact", "sample", "output", "figure", "value", "limit")]
        errors = []
        for c in self.failures():
            if c.error:
                errors.append(f"{c.artifact} ({c.sample}, {c.label}): {c.error}")
            for check in c.checks:
                if not check.passed:
                    sign = "<=" if check.kind == "max" else ">="
                    rows.append((c.artifact, c.sample, c.label, check.figure, f"{check.value:.4g}",
                                 f"{sign} {check.limit:.4g}"))
        widths = [max(len(str(row[i])) for row in rows) for i in range(6)]
        table = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
        return "\n".join(self.flat_lines() + (table if len(rows) > 1 else []) + errors)


COMPARISON_HEADER = ["", "artifact", "sample", "output", "max abs", "max rel", "PSNR (dB)", "top-1 / top-5",
                     "limits"]


def comparison_rows(report: Report) -> tuple[list[str], list[list[str]], list[bool]]:
    """The comparisons as table rows of plain text (header, rows, which rows failed)."""
    rows, failing = [], []
    for c in report.comparisons:
        mark = "✓" if c.passed else "✗"
        if c.error:
            rows.append([mark, c.artifact, c.sample, c.label, f"error: {c.error}", "", "", "", ""])
        elif "refused" in c.figures:
            verdict = f"refused ({c.note})" if c.figures["refused"] else "ACCEPTED an undeclared shape"
            rows.append([mark, c.artifact, c.sample, c.label, verdict, "", "", "", "must be refused"])
        elif "max_abs" not in c.figures:  # judged over all samples: one figure
            (figure, value), = c.figures.items()
            text = f"{value:.0%} same" if figure == "top1_rate" else f"{value:+.2f} dB"
            limits = ", ".join(f"{'<=' if k.kind == 'max' else '>='} {k.limit:.3g}" for k in c.checks)
            rows.append([mark, c.artifact, c.sample, c.label, "", "", text if figure != "top1_rate" else "",
                         text if figure == "top1_rate" else "", f"{limits} ({c.units})"])
        else:
            f = c.figures
            limits = ", ".join(f"{k.figure} {'<=' if k.kind == 'max' else '>='} {k.limit:.3g}" for k in c.checks)
            agreement = (f"{'same' if f['top1'] else 'DIFFERENT'} / {'in' if f['top5'] else 'NOT in'} top-5"
                         if "top1" in f else "")
            rows.append([mark, c.artifact, c.sample, c.label, f"{f['max_abs']:.3g}", f"{f['max_rel']:.3g}",
                         f"{f['psnr']:.1f}", agreement, f"{limits} ({c.units})"])
        failing.append(not c.passed)
    return COMPARISON_HEADER, rows, failing


def top5_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """Each model's five most probable labels per sample, as table rows (classifiers)."""
    rows = []
    for sample, models in report.top5.items():
        for model, labels in models.items():
            rows.append([sample, model, ", ".join(f"{label} ({p:.1%})" for label, p in labels)])
    return ["sample", "model", "top-5 labels (probability)"], rows


DENOISE_HEADER = ["artifact", "sample", "sigma", "PSNR noisy (dB)", "PSNR output (dB)",
                  "PyTorch on the same input (dB)"]


def denoise_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """The denoising figures as table rows (the last column matters for 8-bit Image I/O inputs)."""
    rows = []
    for t in report.task_figures:
        same = t.figures.get("psnr_torch_same_input")
        rows.append([t.artifact, t.sample, f"{t.figures['sigma']:g}", f"{t.figures['psnr_input']:.2f}",
                     f"{t.figures['psnr_output']:.2f}", "" if same is None else f"{same:.2f}"])
    return DENOISE_HEADER, rows
