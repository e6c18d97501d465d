"""Integer inputs (token ids, an attention mask) through every route, and a dict-returning model."""
from __future__ import annotations

import json

import pytest
import yaml
from projects import TOKEN_RECIPE, run_doit

from modelbuild.inspection import describe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens")
    (root / "recipes").mkdir()
    (root / "recipes" / "tokens.yaml").write_text(yaml.safe_dump(TOKEN_RECIPE, sort_keys=False))
    monkeypatch = pytest.MonkeyPatch()
    try:
        code, executed = run_doit(root, monkeypatch, "build:tokens")
    finally:
        monkeypatch.undo()
    assert code == 0, (root / "doit-report.txt").read_text()
    return root / "artifacts" / "tokens"


def test_every_route_matches_pytorch_on_token_ids(built):
    report = json.loads((built / "report.json").read_text())
    assert report["passed"] and report["samples"] == ["random-0", "random-1", "random-2"]
    compared = {c["artifact"] for c in report["comparisons"]}
    assert compared == {"onnx", "nn", "program", "torch_nn"}
    assert all(c["figures"]["max_rel"] < 1e-5 for c in report["comparisons"])


def test_onnx_keeps_int64_and_core_ml_gets_what_it_supports(built):
    import onnx

    graph = onnx.load(str(built / "tokens.onnx")).graph
    assert [i.type.tensor_type.elem_type for i in graph.input] == [onnx.TensorProto.INT64] * 2
    for file, dtype in (("tokens_program.mlpackage", "INT32"), ("tokens_nn.mlmodel", "FLOAT32")):
        inputs = describe(built / file)["inputs"]
        assert [(f["name"], f["dtype"], f["shape"]) for f in inputs] == [("ids", dtype, [1, 12]), ("mask", dtype, [1, 12])]
