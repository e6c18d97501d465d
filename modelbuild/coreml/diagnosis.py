"""Known Core ML conversion failures: how to recognise each, why it happens, the recipe change that fixes it.

A failed conversion becomes one line (`one_line`):

    Converting with frontend 'torch' to mlprogram for iOS15 (float32) failed at torch op
    '_native_multi_head_attention' at 'encoder/layers/0/self_attn': NotImplementedError: ... .
    Known failure mha_fastpath: <why>. Fix: <recipe change>. Converter log: <path>.

`Failure` holds what is known: the route (`Plan`), the exception, the converter's captured
output, the site it failed at (`modelbuild.coreml.failure_site`) and the torch ops converted
before. `CATALOGUE` lists the known failures in the order they are tried; each entry's
`recognise(failure)` returns a `Finding` (the fix, and optionally a better description of the
failing op or of the error) or None. A failure no entry recognises still gets a line that names
the site, the exception type and message (interpolated, never empty) and the log.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from modelbuild.coreml.failure_site import Site
from modelbuild.coreml.targets import Plan

_MAX_DETAIL = 400
# Core ML specification version -> the deployment target that introduced it, per platform
_TARGET_OF_VERSION = {
    "iOS": {4: "iOS13", 5: "iOS14", 6: "iOS15", 7: "iOS16", 8: "iOS17", 9: "iOS18"},
    "macOS": {4: "macOS10_15", 5: "macOS11", 6: "macOS12", 7: "macOS13", 8: "macOS14", 9: "macOS15"},
}
_NOISE = re.compile(r"Failed to load _ML|^ERROR - converting '|graph pass produces the following error|^Traceback|"
                    r"^\s*File \"|^\s*\^+\s*$")


@dataclass(frozen=True)
class Failure:
    """What is known about one failed conversion."""

    plan: Plan
    error: BaseException
    log: str = ""
    site: Site | None = None
    torch_nodes: tuple[Site, ...] = ()
    flexible: bool = False

    @property
    def message(self) -> str:
        """The exception's message on one line (for onnx2coreml's per-node errors: the cause's)."""
        cause = getattr(self.error, "cause", None) if type(self.error).__name__ == "ConversionError" else None
        return " ".join(str(cause if cause is not None else self.error).split())

    @property
    def neuralnetwork(self) -> bool:
        return self.plan.format == "neuralnetwork"


@dataclass(frozen=True)
class Finding:
    """A recognised failure: the fix, and optionally what failed and what went wrong, said better."""

    fix: str
    where: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class KnownFailure:
    """A catalogue entry: an id, a one-sentence explanation and the function that recognises it."""

    id: str
    explanation: str
    recognise: Callable[[Failure], Finding | None] = field(repr=False)


CATALOGUE: list[KnownFailure] = []


def known_failure(id: str, explanation: str) -> Callable:
    """Decorator: add `recognise(failure) -> Finding | None` to the catalogue under `id`."""

    def register(recognise: Callable[[Failure], Finding | None]) -> Callable[[Failure], Finding | None]:
        if any(entry.id == id for entry in CATALOGUE):
            raise ValueError(f"Known failure {id!r} is catalogued twice.")
        CATALOGUE.append(KnownFailure(id, explanation, recognise))
        return recognise

    return register


def diagnose(failure: Failure) -> tuple[KnownFailure, Finding] | None:
    """The first catalogue entry that recognises the failure, with its finding."""
    for entry in CATALOGUE:
        finding = entry.recognise(failure)
        if finding is not None:
            return entry, finding
    return None


def one_line(failure: Failure, log_path: str | None = None) -> str:
    """The CoreMLBuildError message: route, failing op, error, explanation and fix (or 'not catalogued'), log."""
    plan = failure.plan
    known = diagnose(failure)
    finding = known[1] if known else None
    where = finding.where if finding and finding.where else None
    where = where or (failure.site.describe() if failure.site else None)
    detail = finding.detail if finding and finding.detail else describe_error(failure)
    line = (f"Converting with frontend {plan.frontend!r} to {plan.format} for {plan.target_name} "
            f"({plan.compute_precision}) failed" + (f" at {where}" if where else "") + f": {_sentence(detail)}")
    if known:
        line += f" Known failure {known[0].id}: {_sentence(known[0].explanation)} Fix: {_sentence(known[1].fix)}"
    else:
        line += (" Not a known failure (modelbuild/coreml/diagnosis.py): try the other frontend or format, "
                 "or report it with the converter log.")
    if log_path:
        line += f" Converter log: {log_path}"
    return line


def describe_error(failure: Failure) -> str:
    """'Type: message' on one line, never empty and never with a `{op.x.val}` placeholder left in."""
    name = type(failure.error).__name__
    message = _interpolated(failure.message, failure.site)
    if not message:
        last = last_meaningful_line(failure.log)
        return f"{name} with no message" + (f" (last converter output: {last!r})" if last else "")
    if len(message) > _MAX_DETAIL:
        message = message[:_MAX_DETAIL - 3].rstrip() + "..."
    return f"{name}: {message}"


def last_meaningful_line(log: str) -> str:
    """The last line of converter output that is not blank, import noise, a traceback or a site header."""
    lines = [line.strip() for line in log.splitlines() if line.strip() and not _NOISE.search(line)]
    return lines[-1] if lines else ""


def _interpolated(message: str, site: Site | None) -> str:
    """Fill in f-string placeholders coremltools left literal, e.g. '{op.sampling_mode.val}', from the MIL op."""
    op = site.item if site is not None else None

    def value(match: re.Match) -> str:
        attribute = getattr(op, match[1], None) if op is not None else None
        found = getattr(attribute, "val", None)
        return repr(str(found)) if found is not None else "<unknown>"

    return re.sub(r"'?\{op\.(\w+)\.val\}'?", value, message)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def target_with_version(version: int, like: str) -> str:
    """The deployment target of `like`'s platform (iOS or macOS) that introduced spec version `version`."""
    platform = "macOS" if like.startswith("macOS") else "iOS"
    return _TARGET_OF_VERSION[platform].get(version, f"spec version {version}")


def ml_program_target(like: str) -> str:
    """The oldest ML Program target of `like`'s platform."""
    return target_with_version(6, like)


# ---- the catalogue, in the order entries are tried ---------------------------------------------------------------

@known_failure(
    "mha_fastpath",
    "In eval mode nn.MultiheadAttention and nn.TransformerEncoderLayer run PyTorch's fused fast path, "
    "whose ops coremltools 9 has no converter for.")
def _mha_fastpath(failure: Failure) -> Finding | None:
    match = re.search(r"convert function for op '(_native_multi_head_attention|_transformer_encoder_layer_fwd)'",
                      failure.message)
    if match is None:
        return None
    return Finding("add `model.patches: [{step: torch::disable_mha_fastpath}]` to the recipe (a module you build "
                   "yourself: trace it inside torch.backends.mha.set_fastpath_enabled(False)), or use frontend onnx")


@known_failure(
    "dynamic_upsample",
    "With flexible input shapes the interpolation's output size is computed at run time, and coremltools can "
    "lower it only when it is the input's own size times a constant.")
def _dynamic_upsample(failure: Failure) -> Finding | None:
    match = re.search(r"Unable to map (torch_upsample_\w+) to core upsample", failure.message)
    if match is None:
        return None
    upsamples = [node for node in failure.torch_nodes if node.kind.startswith("upsample")]
    handled = {"upsample_bilinear2d", "upsample_nearest2d"}
    unhandled = [node for node in upsamples if node.kind not in handled] or upsamples
    where = unhandled[0].describe() + f" (MIL {match[1]})" if unhandled else None
    return Finding("set `fixed_shape: true` on this variant (enumerated shapes fail the same way); modelbuild lowers "
                   "upsample_bilinear2d and upsample_nearest2d to a computed size itself, so F.interpolate(mode="
                   "'bilinear' or 'nearest') on 4-D tensors converts with flexible shapes", where=where)


_SAMPLING_MEANING = {"UNALIGN_CORNERS": "half-pixel centres: PyTorch align_corners=False, ONNX half_pixel",
                     "OFFSET_CORNERS": "offset corners", "DEFAULT": "asymmetric"}


@known_failure(
    "neuralnetwork_sampling_mode",
    "The NeuralNetwork format resizes to a target size only with aligned-corner sampling, so a bilinear resize "
    "with another sampling mode has no NeuralNetwork layer.")
def _neuralnetwork_sampling_mode(failure: Failure) -> Finding | None:
    if "Unsupported 'sampling_mode'" not in failure.message or not failure.neuralnetwork:
        return None
    op = failure.site.item if failure.site is not None else None
    mode = str(getattr(getattr(op, "sampling_mode", None), "val", "unknown"))
    op_type = getattr(op, "op_type", "resize")
    detail = (f"{type(failure.error).__name__}: the NeuralNetwork backend has no {op_type} with sampling_mode "
              f"{mode!r}" + (f" ({_SAMPLING_MEANING[mode]})" if mode in _SAMPLING_MEANING else ""))
    if failure.plan.frontend == "onnx":
        fix = ("convert with `frontend: torch` (coremltools maps the interpolation to an upsample layer; "
               "`minimum_deployment_target: iOS14` or later for align_corners=False), or use `format: mlprogram`")
    else:
        oldest = ml_program_target(failure.plan.target_name)
        fix = f"use `format: mlprogram` (minimum_deployment_target {oldest} or later)"
    return Finding(fix, detail=detail)


@known_failure(
    "structured_outputs",
    "torch.jit.trace refuses a forward() that returns a dict (or a dict-based ModelOutput); the converters need "
    "plain tensors.")
def _structured_outputs(failure: Failure) -> Finding | None:
    if not re.search(r"dict at the output of the tracer|dict(ionary)? of tensors can be output|\bdict\b.*output",
                     failure.message):
        return None
    model = re.search(r"torch\.jit\.trace failed on (\w+)", failure.message)
    owner = model[1] if model else "the model"
    detail = f"{type(failure.error).__name__}: torch.jit.trace refused the dict that {owner}.forward() returns"
    return Finding("name the recipe's outputs after the keys forward() returns (e.g. `outputs: {out: {}}`) or give "
                   "each `outputs.<name>.path` (e.g. 'logits'); modelbuild then returns exactly those tensors "
                   "before export and conversion (modelbuild.model_outputs)", detail=detail)


@known_failure(
    "op_needs_newer_target",
    "The model uses an op or layer feature that the requested deployment target does not have.")
def _op_needs_newer_target(failure: Failure) -> Finding | None:
    target = failure.plan.target_name
    match = re.search(r"No available version for (\w+) in the coremltools\.target\.\w+ opset\. Please update the "
                      r"minimum_deployment_target to at least coremltools\.target\.(\w+)", failure.message)
    if match is not None:
        needed, detail = match[2], None
        source = failure.site is not None and failure.site.stage in ("torch op", "ONNX node")
        where = failure.site.describe() + f" (MIL op {match[1]})" if source else f"MIL op {match[1]}"
    else:
        match = re.search(r"requires model to be of version (\d+) but converted model uses following features which "
                          r"are available from version (\d+) onwards", failure.message)
        if match is None:
            return None
        needed = target_with_version(int(match[2]), target)
        features = re.findall(r"\d+\. (.+?)(?=\s+\d+\. |$)", failure.message.split("convert.", 1)[-1].strip())
        where = "NeuralNetwork feature " + ", ".join(repr(f.strip()) for f in features) if features else None
        detail = (f"{type(failure.error).__name__}: the converted model needs Core ML specification version "
                  f"{match[2]} ({needed}), {target} has version {match[1]}")
    if failure.neuralnetwork and needed not in (target_with_version(5, target), target_with_version(4, target)):
        fix = f"use `format: mlprogram` with `minimum_deployment_target: {needed}` (NeuralNetwork stops at iOS14)"
    else:
        fix = f"set `minimum_deployment_target: {needed}` on this variant"
    return Finding(fix, where=where, detail=detail)


@known_failure(
    "torch_op_without_converter",
    "coremltools 9 has no converter for this PyTorch op.")
def _torch_op_without_converter(failure: Failure) -> Finding | None:
    match = re.search(r"convert function for op '(\w+)' not implemented", failure.message)
    if match is None:
        return None
    if "Dynamic quantized models are not supported" in failure.message:
        return Finding("quantize statically, or quantize the converted model (coreml surgery steps) instead of "
                       "using torch dynamic quantization")
    return Finding(f"replace the module that calls {match[1]!r} with one that coremltools can convert "
                   "(`model.patches: [{step: torch::replace_modules, ...}]`), or use `frontend: onnx`")


@known_failure(
    "onnx_op_without_lowering",
    "onnx2coreml 1.1.0 has no Core ML lowering for these ONNX ops.")
def _onnx_op_without_lowering(failure: Failure) -> Finding | None:
    missing = getattr(failure.error, "missing", None)
    if type(failure.error).__name__ != "UnsupportedOpError" or not isinstance(missing, dict):
        return None
    ops = "; ".join(f"{key} ({len(nodes)} node(s), e.g. {', '.join(repr(n) for n in nodes[:2])})"
                    for key, nodes in sorted(missing.items()))
    return Finding("use `frontend: torch`, or remove those nodes with `onnx.surgery` (`onnx::fold_constants` when "
                   "they only compute constants; modelbuild already folds them when that removes every such node)",
                   detail=f"{type(failure.error).__name__}: onnx2coreml has no lowering for {ops}")


@known_failure(
    "onnx_unsupported_dtype",
    "onnx2coreml lowers this ONNX node to a MIL op that does not take the node's element types.")
def _onnx_unsupported_dtype(failure: Failure) -> Finding | None:
    if type(failure.error).__name__ != "ConversionError":
        return None
    expects = re.search(r"expects tensor or scalar of dtype from type domain \[([^\]]*)\] but got (\S+)",
                        failure.message)
    mismatch = re.search(r"input `(\w+)` must have the same data type as the named input `(\w+)`\. However, \w+ has "
                         r"dtype (\w+) whereas \w+ has dtype (\w+)", failure.message)
    if expects is not None:
        detail = f"the MIL op takes {expects[1]} but got {expects[2]}"
    elif mismatch is not None:
        detail = f"its MIL op got {mismatch[1]} as {mismatch[3]} and {mismatch[2]} as {mismatch[4]}, which must agree"
    else:
        return None
    return Finding("use `frontend: torch`, or compute the node in float32 or int32 (cast its inputs in the model, or "
                   "with an `onnx.surgery` step; bool inputs of gathers, scatters, Equal and Max/Min are cast "
                   "automatically)", detail=f"{type(failure.error).__name__}: {detail}")


@known_failure(
    "rank_above_5",
    "Core ML tensors have rank 5 or less; at fixed shapes coremltools folds rank-6 reshapes away, with flexible "
    "shapes it cannot.")
def _rank_above_5(failure: Failure) -> Finding | None:
    if "rank <= 5" not in failure.message and "rank > 5" not in failure.message:
        return None
    fix = "reshape to rank 5 or less, as modelbuild.zoo.ffdnet.space_to_depth does"
    return Finding(fix + (", or set `fixed_shape: true` on this variant" if failure.flexible else ""))
