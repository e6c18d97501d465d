"""The conformance harness (modelbuild.runtime_conformance) and the recorded conformance floor.

Fast tests check the harness's parts against independent oracles (a fake
runtime whose answers we know for the plugin). The slow
ones run real coremltools tests in a subprocess: with a runtime that answers
zeros (every test that reaches predict must fail: the comparison is live), with
a runtime that kills the interpreter (the runner must survive), and the CI
floor: a fixed sample of the iOS14-iOS17 MIL op tests must keep the pass rate
recorded in modelbuild/runtime_conformance/floor.json.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from modelbuild.runtime_conformance import floor as floor_module
from modelbuild.runtime_conformance import routing
from modelbuild.runtime_conformance.markdown import format_markdown
from modelbuild.runtime_conformance.report import format_summary, short_test_name
from modelbuild.runtime_conformance.results import Summary, TestRecord, normalise_reason, read_records
from modelbuild.runtime_conformance.runner import REPO_ROOT, Selection, collection_targets, run_conformance
from modelbuild.runtime_conformance.suites import class_of, coremltools_site_dir, file_of, get_suite, sample_node_ids

PYTHON = sys.executable


# -- pure parts -----------------------------------------------------------------------------
def test_reasons_group_by_cause_not_by_test_specific_details() -> None:
    numpy_failure = "AssertionError: \nNot equal to tolerance rtol=1e-05, atol=0.0001\n\nMismatched elements: 3 / 4"
    assert normalise_reason(numpy_failure) == normalise_reason(numpy_failure.replace("3 / 4", "7 / 9"))
    assert normalise_reason(numpy_failure) == "AssertionError: Not equal to tolerance rtol=N, atol=N"
    unsupported = ("modelbuild.runtime.registry.UnsupportedOpError: The reference runtime has no kernel for "
                   "the ML Program op 'conv' (in conv_{}). Supported: add, mul.")
    assert normalise_reason(unsupported.format(0)) == normalise_reason(unsupported.format(17))
    assert "'conv'" in normalise_reason(unsupported.format(0))
    assert normalise_reason(unsupported.format(0)).startswith("UnsupportedOpError:")
    assert "Supported" not in normalise_reason(unsupported.format(0))
    assert normalise_reason("ValueError: shape (1, 2) of var_12") == normalise_reason("ValueError: shape (3, 4) of var_9")
    nested = ("UnsupportedOpError: no kernel for 'lstm' (in lstm op 'lstm_0' (tensor<fp32, [1, 2]>, "
              "tensor<fp32, [3, 4]>)). Supported: abs")
    assert normalise_reason(nested) == "UnsupportedOpError: no kernel for 'lstm'."
    shape_failure = "AssertionError: \nItems are not equal:\n ACTUAL: 0\n DESIRED: 1"
    assert normalise_reason(shape_failure) == "AssertionError: Items are not equal: ACTUAL: 0 DESIRED: 1"
    assert normalise_reason("") == "(no message)"


def test_sample_is_deterministic_sorted_and_seed_dependent() -> None:
    ids = [f"f.py::TestX::test_{i}" for i in range(500)]
    first = sample_node_ids(reversed(ids), 40, seed=3)
    assert first == sample_node_ids(ids, 40, seed=3)
    assert first == sorted(first) and len(set(first)) == 40 and set(first) <= set(ids)
    assert first != sample_node_ids(ids, 40, seed=4)
    assert sample_node_ids(ids, None, seed=0) == sorted(ids)
    assert sample_node_ids(ids, 10_000, seed=0) == sorted(ids)


def test_per_class_sample_keeps_every_class_and_at_most_k_of_each() -> None:
    ids = [f"{f}.py::Test{c}::test_{i}" for f in "ab" for c, n in (("Big", 300), ("Small", 1)) for i in range(n)]
    chosen = sample_node_ids(ids, None, seed=0, per_class=2)
    groups = {nodeid.rsplit("::", 1)[0] for nodeid in ids}
    assert {nodeid.rsplit("::", 1)[0] for nodeid in chosen} == groups
    assert len(chosen) == 2 + 1 + 2 + 1
    assert chosen == sample_node_ids(list(reversed(ids)), None, seed=0, per_class=2)
    assert len(sample_node_ids(ids, 3, seed=0, per_class=2)) == 3
    with pytest.raises(ValueError, match="per-class count must be a positive"):
        sample_node_ids(ids, None, seed=0, per_class=-1)


def test_node_ids_name_their_file_and_op_class() -> None:
    suite = get_suite("mil")
    nodeid = "coremltools/converters/mil/mil/ops/tests/iOS14/test_conv.py::TestConv::test_x[a::b]"
    assert file_of(nodeid, suite) == "iOS14/test_conv.py"
    assert class_of(nodeid) == "TestConv"
    assert class_of("coremltools/x/test_y.py::test_z") == "(module)"
    with pytest.raises(ValueError, match="Unknown conformance suite 'tf'"):
        get_suite("tf")


def test_pytest_collects_only_the_classes_a_run_needs() -> None:
    torch_file = "coremltools/converters/mil/frontend/torch/test/test_torch_ops.py"
    mixed_file = "coremltools/x/test_mixed.py"
    ids = [f"{torch_file}::TestConv::test_a[x]", f"{torch_file}::TestConv::test_b[y::z]",
           f"{torch_file}::TestAbs::test_c", f"{mixed_file}::TestY::test_d", f"{mixed_file}::test_module_level"]
    site = coremltools_site_dir()
    assert collection_targets(ids) == [f"{site / torch_file}::TestAbs", f"{site / torch_file}::TestConv",
                                       f"{site / mixed_file}"]  # a module-level test: the whole file


def test_report_names_tests_without_shared_parameters_and_lists_wrong_answers() -> None:
    nodeid = ("coremltools/converters/mil/mil/ops/tests/iOS17/test_conv.py::TestConv::test_a[compute_unit="
              "ComputeUnit.CPU_ONLY-backend=BackendConfig(backend='mlprogram', precision='fp16', "
              "opset_version=<AvailableTarget.iOS17: 8>)-rank=2]")
    assert short_test_name(nodeid, "mil") == "iOS17/test_conv.py::TestConv::test_a[mlprogram/fp16/iOS17-rank=2]"
    summary = Summary(records=[
        TestRecord(nodeid, "failed", True, "AssertionError: \nNot equal to tolerance rtol=1e-05, atol=0.0001"),
        TestRecord(nodeid.replace("test_a", "test_b"), "failed", True, "UnsupportedOpError: no kernel for 'conv'"),
    ])
    report = format_summary(summary, "mil")
    wrong_answers = report.split("other than missing kernels")[1]
    assert "test_a[mlprogram/fp16/iOS17-rank=2]" in wrong_answers and "test_b" not in wrong_answers
    assert "      2  TestConv" in report
    markdown = format_markdown(summary, "mil")
    assert "| all tests run | 2 | 0 | 2 | 0.0% | 0 | 0 | 0 |" in markdown
    assert "| iOS17/test_conv.py | 2 | 0 | 2 | 0.0% |" in markdown
    assert "1 are missing kernels" in markdown


def _records(*specs: tuple[str, bool]) -> list[TestRecord]:
    return [TestRecord(nodeid=f"f.py::TestA::t{i}", outcome=outcome, reached=reached, message="m")
            for i, (outcome, reached) in enumerate(specs)]


def test_only_tests_that_reached_predict_count_toward_the_pass_rate() -> None:
    summary = Summary(records=_records(("passed", True), ("failed", True), ("crashed", True), ("error", True),
                                       ("failed", False), ("passed", False), ("skipped", False)))
    overall = summary.overall
    assert (overall.passed, overall.failed, overall.early_failed, overall.early_passed, overall.skipped) == (
        1, 3, 1, 1, 1)
    assert overall.pass_rate == pytest.approx(1 / 4)
    assert overall.errored == 2  # the error and the crash
    missing = Summary(records=[TestRecord("f.py::T::a", "passed", True),
                               TestRecord("f.py::T::b", "failed", True, "x.UnsupportedOpError: no kernel for 'lstm'"),
                               TestRecord("f.py::T::c", "failed", True, "AssertionError: \nNot equal")])
    assert missing.missing_kernel_failures == 1
    assert missing.pass_rate_with_kernels == pytest.approx(1 / 2)
    assert Summary(records=_records(("failed", False))).overall.pass_rate is None


def test_floor_check_compares_the_pass_rate_among_reached_tests(tmp_path: Path) -> None:
    summary = Summary(records=_records(("passed", True), ("passed", True), ("failed", True), ("failed", False)))
    selection = Selection(suite="mil", files=("iOS14/test_*.py",), per_class=2, sample=4, seed=1)
    path = floor_module.record_floor(summary, selection, margin=0.1, path=tmp_path / "floor.json")
    floor = floor_module.load_floor(path)
    assert floor.selection == selection
    assert floor.pass_rate == pytest.approx(2 / 3 - 0.1, abs=1e-4)
    assert floor_module.check_floor(summary, floor).ok
    worse = Summary(records=_records(("passed", True), ("failed", True)))
    verdict = floor_module.check_floor(worse, floor)
    assert not verdict.ok and "1/2" in verdict.message
    assert not floor_module.check_floor(Summary(records=_records(("failed", False))), floor).ok
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="not a valid conformance floor"):
        floor_module.load_floor(tmp_path / "bad.json")


def test_read_records_reports_the_test_a_crash_interrupted(tmp_path: Path) -> None:
    lines = [{"event": "start", "nodeid": "a"}, {"event": "reached", "nodeid": "a"},
             {"event": "result", "nodeid": "a", "outcome": "passed", "reached": True, "message": "", "duration": 1.0},
             {"event": "start", "nodeid": "b"}, {"event": "reached", "nodeid": "b"}]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    records, errors, reached, unfinished = read_records(path)
    assert [r.nodeid for r in records] == ["a"] and errors == {}
    assert reached == ["a", "b"] and unfinished == "b"


# -- routing and the plugin ------------------------------------------------------------------
def _doubling_mlmodel():
    from coremltools.models import MLModel, datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder

    from modelbuild.quiet import coremltools

    coremltools()
    builder = NeuralNetworkBuilder([("x", datatypes.Array(3))], [("y", datatypes.Array(3))])
    builder.add_elementwise("double", input_names=["x", "x"], output_name="y", mode="ADD")
    return MLModel(builder.spec)


class _DoublingRuntime:
    seen: list = []

    def __init__(self, mlmodel) -> None:
        self.mlmodel = mlmodel

    def predict(self, data: dict) -> dict:
        _DoublingRuntime.seen.append(data["x"])
        return {"y": torch.from_numpy(2 * data["x"])}


def test_routed_predict_hands_numpy_to_the_runtime_and_returns_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    mlmodel = _doubling_mlmodel()
    monkeypatch.setattr(routing, "runtime_loader", lambda: _DoublingRuntime)
    reached: list[bool] = []
    unsubscribe = routing.on_reach(lambda: reached.append(True))
    routing.route_predict()
    try:
        out = mlmodel.predict({"x": torch.tensor([1.0, -2.0, 3.0])})
        again = mlmodel.predict([{"x": np.array([0.5, 0.5, 0.5], dtype=np.float16)}])
    finally:
        routing.unroute_predict()
        unsubscribe()
    assert isinstance(_DoublingRuntime.seen[0], np.ndarray)  # torch tensor converted, as MLModel.predict does
    assert _DoublingRuntime.seen[1].dtype == np.float32  # fp16 inputs widened, as MLModel.predict does
    np.testing.assert_array_equal(out["y"], np.array([2.0, -4.0, 6.0], dtype=np.float32))
    assert isinstance(out["y"], np.ndarray) and isinstance(again, list)
    np.testing.assert_array_equal(again[0]["y"], np.ones(3))
    assert reached == [True, True]
    assert mlmodel.predict.__func__ is not routing.routed_predict  # restored


def test_pretend_macos_patches_constants_functions_and_later_imports() -> None:
    script = textwrap.dedent("""
        from modelbuild.runtime_conformance.macos import pretend_macos, is_pretending_macos
        pretend_macos()
        import coremltools as ct
        import coremltools.models.model as model_module
        from coremltools.converters.mil import testing_utils
        from coremltools.converters.mil.testing_reqs import clean_up_backends, backends_internal
        assert is_pretending_macos()
        assert testing_utils._IS_MACOS is True
        assert ct.utils._is_macos() and ct.utils._macos_version() >= (15, 2)
        assert model_module._is_macos() and model_module._macos_version() >= (15, 0)
        kept = clean_up_backends(backends_internal, ct.target.iOS18)
        assert [b.opset_version for b in kept] == [ct.target.iOS18], kept
        print("ok")
    """)
    done = subprocess.run([PYTHON, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().endswith("ok"), done.stderr[-2000:]


FAKE_RUNTIME = """
import numpy as np
class Doubling:
    def __init__(self, mlmodel):
        self.mlmodel = mlmodel
    def predict(self, data):
        return {"y": 2 * np.asarray(data["x"])}
def load(mlmodel):
    return Doubling(mlmodel)
def zeros(mlmodel, backend="auto"):
    assert backend == "reference", backend
    class Zeros:
        def predict(self, data):
            return {o.name: np.zeros([max(1, d) for d in o.type.multiArrayType.shape], np.float32)
                    for o in mlmodel.get_spec().description.output}
    return Zeros()
def abort(mlmodel):
    import os
    os.abort()
"""

PLUGIN_TESTS = """
import time
import numpy as np
import pytest
from coremltools.models import MLModel, datatypes
from coremltools.models.neural_network import NeuralNetworkBuilder

def doubling_model():
    builder = NeuralNetworkBuilder([("x", datatypes.Array(3))], [("y", datatypes.Array(3))])
    builder.add_elementwise("double", input_names=["x", "x"], output_name="y", mode="ADD")
    return MLModel(builder.spec)

def test_right():
    np.testing.assert_allclose(doubling_model().predict({"x": np.ones(3)})["y"], 2 * np.ones(3))

def test_wrong():
    np.testing.assert_allclose(doubling_model().predict({"x": np.ones(3)})["y"], 3 * np.ones(3))

def test_fails_before_predict():
    raise ValueError("conversion failed")

def test_no_predict():
    doubling_model()

def test_skipped():
    pytest.skip("not on this machine")

def test_hangs_after_predict():
    doubling_model().predict({"x": np.ones(3)})
    time.sleep(30)
"""


def test_plugin_tells_reached_from_early_failures(tmp_path: Path) -> None:
    (tmp_path / "fake_runtime.py").write_text(FAKE_RUNTIME, encoding="utf-8")
    (tmp_path / "test_cases.py").write_text(PLUGIN_TESTS, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    results, junit = tmp_path / "results.jsonl", tmp_path / "junit.xml"
    env = {"PYTHONPATH": f"{tmp_path}:{REPO_ROOT}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [PYTHON, "-m", "pytest", "-c", str(tmp_path / "pytest.ini"), "-p", "no:cacheprovider",
         "-p", "modelbuild.runtime_conformance.plugin", "--modelbuild-runtime=fake_runtime:load",
         f"--modelbuild-results={results}", "--modelbuild-test-timeout=2", f"--junitxml={junit}", "-q",
         str(tmp_path / "test_cases.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    records, _, _, unfinished = read_records(results)
    by_name = {record.nodeid.split("::")[-1]: record for record in records}
    assert unfinished is None and len(by_name) == 6, done.stdout[-3000:]
    assert by_name["test_right"].category == "passed"
    assert by_name["test_wrong"].category == "failed"
    assert "Not equal to tolerance" in by_name["test_wrong"].message
    assert by_name["test_fails_before_predict"].category == "early_failed"
    assert "conversion failed" in by_name["test_fails_before_predict"].message
    assert by_name["test_no_predict"].category == "early_passed"
    assert by_name["test_skipped"].category == "skipped"
    assert by_name["test_hangs_after_predict"].category == "failed"
    assert "timeout" in by_name["test_hangs_after_predict"].message
    assert junit.read_text(encoding="utf-8").count('name="reached_predict"') == 3


# -- real coremltools tests -------------------------------------------------------------------------
@pytest.mark.slow
def test_wrong_answers_fail_every_test_that_reaches_predict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fake_runtime.py").write_text(FAKE_RUNTIME, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    selection = Selection(suite="mil", files=("iOS14/test_elementwise_binary.py",),
                          classes=("TestElementwiseBinary",), sample=6, seed=0, runtime="fake_runtime:zeros")
    summary = run_conformance(selection, timeout=600)
    overall = summary.overall
    assert overall.reached >= 3, summary.records
    assert overall.passed == 0, [r.nodeid for r in summary.records if r.category == "passed"]
    assert any("Not equal to tolerance" in reason for reason in summary.reasons("failed"))


@pytest.mark.slow
def test_runner_survives_a_runtime_that_kills_the_interpreter(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fake_runtime.py").write_text(FAKE_RUNTIME, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    selection = Selection(suite="mil", files=("iOS14/test_elementwise_binary.py",),
                          classes=("TestEqual",), sample=2, seed=0, runtime="fake_runtime:abort")
    summary = run_conformance(selection, timeout=600)
    reached = [r for r in summary.records if r.reached]
    assert reached and all(r.outcome == "crashed" and "SIGABRT" in r.message for r in reached)
    assert len(summary.records) == 2 and summary.not_run == 0


@pytest.mark.slow
def test_conformance_stays_above_the_recorded_floor() -> None:
    floor = floor_module.load_floor()
    summary = run_conformance(floor.selection, timeout=900)
    assert summary.not_run == 0, f"{summary.not_run} tests of the floor sample did not run in time"
    verdict = floor_module.check_floor(summary, floor)
    assert verdict.ok, verdict.message
