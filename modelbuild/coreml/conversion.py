"""`convert`: an ONNX file or a torch module to a Core ML model with the declared interface.

One path for both frontends and both formats:

    frontend (onnx2coreml | jit.trace or torch.export + coremltools torch frontend) -> MIL program
    -> program edits (check shapes, rename, per-channel input scaling,
       image-output deprocessing, classifier softmax, I/O types)
    -> coremltools backend (neuralnetwork | mlprogram; image inputs become
       NeuralNetwork `preprocessing` or ML Program mul/add ops)
    -> [neuralnetwork + float16: fp16 weights] -> spec edits (metadata, descriptions, checks)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from modelbuild.coreml import frontends, program_edits, spec_edits
from modelbuild.coreml.classifier import (Classifier, append_softmax, check_classifier, check_classifier_spec,
                                          classifier_config)
from modelbuild.coreml.conversion_log import noting_into, write_log
from modelbuild.coreml.diagnosis import Failure, one_line
from modelbuild.coreml.errors import CoreMLBuildError
from modelbuild.coreml.failure_site import site_of_error, tracking_sites
from modelbuild.coreml.features import FeatureSpec, Metadata, check_features
from modelbuild.coreml.flexible import check_route, make_spec_flexible
from modelbuild.coreml.nn_nearest import exact_fractional_nearest
from modelbuild.coreml.quiet import quiet_conversion
from modelbuild.coreml.targets import Frontend, Format, Plan, Precision, plan_conversion
from modelbuild.quiet import coremltools


def convert(
    *,
    frontend: Frontend,
    onnx_path: Path | None = None,
    torch_model: Any = None,
    inputs: list[FeatureSpec],
    outputs: list[FeatureSpec],
    format: Format,
    minimum_deployment_target: str,
    compute_precision: Precision = "float32",
    metadata: Metadata = Metadata(),
    classifier: Classifier | None = None,
    check_onnx_graph: bool = True,
    capture: str = "trace",
    log_path: Path | None = None,
) -> Any:
    """Convert a model to Core ML with exactly the declared inputs, outputs and metadata.

    `inputs` and `outputs` follow the model's positional order (forward()
    arguments / ONNX graph inputs; returned values / ONNX graph outputs).
    float16 means an fp16 ML Program (float32 I/O, casts inside) or, for
    neuralnetwork, fp16 weights. Inputs with `flexible` shapes are traced or
    exported at their default `shape`; a route that cannot make them flexible
    is refused before converting (see `modelbuild.coreml.flexible`). With a `classifier`, the single output
    (the logits) becomes a predicted-label output and a probability
    dictionary output (see `modelbuild.coreml.classifier`). `capture` is how frontend
    'torch' captures the model: "trace" (torch.jit.trace) or "export" (torch.export; see
    `modelbuild.coreml.exported_program`). Returns a `coremltools.models.MLModel`;
    raises `CoreMLBuildError` for anything that cannot work: a converter failure becomes one line
    naming the failing op, the route and, for known failures, the fix (`modelbuild.coreml.diagnosis`).
    With `log_path`, the converters' output, what modelbuild changed on its own and any traceback
    are written there (success or failure) and the error names the file.
    """
    ct = coremltools()
    plan = plan_conversion(
        ct, frontend=frontend, format=format, minimum_deployment_target=minimum_deployment_target,
        compute_precision=compute_precision,
    )
    inputs, outputs = list(inputs), list(outputs)
    check_features(inputs, "input")
    check_features(outputs, "output")
    if classifier is not None:
        check_classifier(classifier, inputs, outputs)
    if capture != "trace" and plan.frontend != "torch":
        raise CoreMLBuildError(f"capture {capture!r} applies to frontend 'torch'; frontend {plan.frontend!r} "
                               "converts the ONNX file as it is.")
    check_route(frontend, format, inputs, outputs, minimum_deployment_target,
                onnx_path if check_onnx_graph else None)
    with quiet_conversion() as log, noting_into(log), tracking_sites() as sites:
        try:
            mlmodel = _convert(ct, plan, onnx_path, torch_model, inputs, outputs, classifier, capture)
            spec = mlmodel.get_spec()
            if plan.frontend == "onnx":  # converted at the default shapes: declare the flexible ones now
                make_spec_flexible(spec, inputs)
            spec_edits.describe(spec, inputs, None if classifier else outputs, metadata,
                                _frontend_label(plan, capture))
            if classifier is not None:
                check_classifier_spec(spec, classifier, outputs[0].description)
            converted = spec_edits.rebuild(ct, mlmodel, spec)
        except CoreMLBuildError as exc:
            write_log(log_path, plan, log.getvalue(), exc)
            raise
        except Exception as exc:
            failure = Failure(plan, exc, log.getvalue(), site_of_error(exc, sites), tuple(sites.torch_nodes),
                              flexible=any(f.flexible is not None for f in inputs))
            line = one_line(failure, None if log_path is None else str(log_path))
            write_log(log_path, plan, log.getvalue(), exc, line)
            raise CoreMLBuildError(line) from exc
        write_log(log_path, plan, log.getvalue())
        return converted


def _convert(ct, plan: Plan, onnx_path: Path | None, torch_model: Any,
             inputs: list[FeatureSpec], outputs: list[FeatureSpec], classifier: Classifier | None,
             capture: str) -> Any:
    if plan.frontend == "onnx":
        program = frontends.onnx_to_program(ct, plan, onnx_path, inputs)
    else:
        program = frontends.torch_to_program(ct, plan, torch_model, inputs, capture)
    func = program_edits.main_function(program)
    program_edits.check_signature(func, inputs, outputs)
    program_edits.rename_features(func, [f.name for f in inputs], [f.name for f in outputs])
    program_edits.scale_channels(func, inputs)
    program_edits.pin_image_output_shapes(func, outputs)
    program_edits.append_deprocessing(func, outputs)
    input_types, output_types = program_edits.io_types(ct, inputs, outputs, flexible=plan.frontend == "torch")
    extra_kwargs = {}
    if classifier is None:
        func.set_output_types(output_types)
    else:
        append_softmax(func, classifier)
        extra_kwargs["classifier_config"] = classifier_config(ct, classifier)
    if plan.format == "neuralnetwork":
        exact_fractional_nearest(program)
    if plan.format == "mlprogram":
        extra_kwargs["compute_precision"] = (
            ct.precision.FLOAT16 if plan.compute_precision == "float16" else ct.precision.FLOAT32
        )
    mlmodel = ct.convert(
        program, convert_to=plan.format, minimum_deployment_target=plan.target,
        inputs=input_types, **extra_kwargs,
    )
    if plan.format == "neuralnetwork" and plan.compute_precision == "float16":
        from coremltools.models.neural_network import quantization_utils

        mlmodel = quantization_utils.quantize_weights(mlmodel, nbits=16)
    return mlmodel


def _frontend_label(plan: Plan, capture: str) -> str:
    if plan.frontend == "onnx":
        import onnx2coreml

        return f"onnx2coreml {onnx2coreml.__version__}"
    import torch

    return f"torch {torch.__version__} {'torch.export' if capture == 'export' else 'jit.trace'}"
