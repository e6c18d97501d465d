"""Agreement matrices: the arithmetic, and a real matrix over four models of a tiny classifier."""
from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from projects import edit_recipe, make_classifier_project, run_doit

from modelbuild.validation.agreement import AgreementMatrix, scores, top_k


def test_matrix_counts_pairwise_top1_agreement():
    result = AgreementMatrix(["a", "b", "c"], ["s1", "s2", "s3", "s4"],
                             top1={"a": [1, 2, 3, 4], "b": [1, 2, 3, 0], "c": [0, 0, 3, 4]})
    expected = np.array([[1, 0.75, 0.5], [0.75, 1, 0.25], [0.5, 0.25, 1]])
    assert np.allclose(result.matrix(), expected)
    assert "| a | 100% | 75% | 50% |" in result.markdown()


def test_scores_from_arrays_and_probability_dicts():
    assert list(scores({"logits": np.array([[0.1, 3.0, -1.0]], np.float32)})) == pytest.approx([0.1, 3.0, -1.0])
    assert list(scores({"label": "b", "probs": {"a": 0.2, "b": 0.7, "c": 0.1}}, ["a", "b", "c"])) == [0.2, 0.7, 0.1]
    assert top_k(np.array([0.1, 0.7, 0.2, 0.9]), 2) == [3, 1]
    with pytest.raises(ValueError, match="needs the class labels"):
        scores({"probs": {"a": 1.0}})


@pytest.mark.slow
def test_agreement_task_over_four_models(tmp_path, monkeypatch):
    root = make_classifier_project(tmp_path)
    code, executed = run_doit(root, monkeypatch, "build:clf")
    assert code == 0, (root / "doit-report.txt").read_text()
    assert "agreement:clf" in executed and "validate:clf" in executed
    data = json.loads((root / "artifacts" / "clf" / "agreement.json").read_text())
    assert data["models"] == ["torch", "torch->onnx", "onnx->coreml", "torch->mlprogram"]
    assert len(data["samples"]) == 4
    # The same model through every route: the agreement matrix is all ones, and top-1 labels are real labels.
    assert np.allclose(data["agreement"], 1.0)
    assert set(data["top1"]["onnx->coreml"]) <= {"apple", "banana", "cherry", "date", "elderberry"}
    assert "<table>" in (root / "artifacts" / "clf" / "agreement.html").read_text()


@pytest.mark.slow
def test_agreement_with_a_different_model_file(tmp_path, monkeypatch):
    """An external ONNX file (another model: a different seed) joins the matrix with its own top-1 row."""
    import shutil

    root = make_classifier_project(tmp_path)
    edit_recipe_clf = functools.partial(edit_recipe, root, name="clf")
    edit_recipe_clf(lambda d: d["model"].update(seed=11))
    assert run_doit(root, monkeypatch, "onnx:clf")[0] == 0
    shutil.copy(root / "artifacts" / "clf" / "clf.onnx", root / "other.onnx")
    edit_recipe_clf(lambda d: d["model"].update(seed=3))
    edit_recipe_clf(lambda d: d["agreement"]["models"].update({"other model": "other.onnx"}))
    code, _ = run_doit(root, monkeypatch, "agreement:clf")
    assert code == 0, (root / "doit-report.txt").read_text()
    data = json.loads((root / "artifacts" / "clf" / "agreement.json").read_text())
    matrix = np.array(data["agreement"])
    assert np.allclose(matrix[:4, :4], 1.0)
    other = data["top1"]["other model"]
    expected = np.mean([a == b for a, b in zip(other, data["top1"]["torch"])])
    assert matrix[4, 0] == pytest.approx(expected)
