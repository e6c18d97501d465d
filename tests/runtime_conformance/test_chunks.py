"""Chunks of a full conformance run (chunks.py) and the state folder that stores them (chunk_state.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelbuild.runtime_conformance.chunk_state import (
    ChunkResult,
    ChunkState,
    Plan,
    StateError,
    format_provenance,
    merged_summary,
)
from modelbuild.runtime_conformance.chunks import Chunk, chunk_matches, plan_chunks
from modelbuild.runtime_conformance.results import TestRecord
from modelbuild.runtime_conformance.runner import Selection
from modelbuild.runtime_conformance.suites import get_suite

MIL = get_suite("mil")
ROOT = "coremltools/converters/mil/mil/ops/tests"


def _ids(path: str, cls: str, count: int) -> list[str]:
    return [f"{ROOT}/{path}::{cls}::test_{i:03d}[p{i}]" for i in range(count)]


def test_small_files_stay_whole_large_ones_split_by_class_and_huge_classes_in_equal_parts() -> None:
    ids = (_ids("iOS14/test_a.py", "TestA", 3) + _ids("iOS14/test_b.py", "TestB", 4)
           + _ids("iOS14/test_big.py", "TestHuge", 23) + _ids("iOS14/test_big.py", "TestSmall", 2)
           + _ids("iOS14/test_big.py", "TestTiny", 1) + _ids("iOS15/test_c.py", "TestC", 9))
    chunks = plan_chunks(reversed(ids), MIL, size=10)
    assert [(c.name, len(c.node_ids)) for c in chunks] == [
        ("iOS14/test_a.py..iOS14/test_b.py", 7),  # two small files packed
        ("iOS14/test_big.py::TestHuge[1/3]", 8),
        ("iOS14/test_big.py::TestHuge[2/3]", 7),
        ("iOS14/test_big.py::TestHuge[3/3]", 8),
        ("iOS14/test_big.py::TestSmall..TestTiny", 3),  # classes of one file packed
        ("iOS15/test_c.py", 9),
    ]
    assert sorted(n for c in chunks for n in c.node_ids) == sorted(ids)  # every test once
    assert plan_chunks(ids, MIL, size=10) == chunks  # order of the collection does not matter
    assert len({c.slug for c in chunks}) == len(chunks) and all("/" not in c.slug for c in chunks)
    with pytest.raises(ValueError, match="at least 1 test"):
        plan_chunks(ids, MIL, size=0)


def test_a_chunk_is_named_by_its_name_files_or_classes() -> None:
    chunk = plan_chunks(_ids("iOS14/test_big.py", "TestSmall", 2) + _ids("iOS14/test_big.py", "TestTiny", 1)
                        + _ids("iOS14/test_big.py", "TestX", 30), MIL, size=10)[0]
    assert chunk.name == "iOS14/test_big.py::TestSmall..TestTiny"
    for pattern in (chunk.name, "TestTiny", "iOS14/test_big.py", "iOS14/*::TestSmall", chunk.slug):
        assert chunk_matches(chunk, pattern, MIL), pattern
    assert not chunk_matches(chunk, "TestX", MIL)
    part = plan_chunks(_ids("iOS14/test_big.py", "TestX", 30), MIL, size=10)[1]
    assert part.name == "iOS14/test_big.py::TestX[2/3]"
    assert chunk_matches(part, part.name, MIL)  # exactly, although "[2/3]" is a glob character set
    assert not chunk_matches(part, "iOS14/test_big.py::TestX[1/3]", MIL)


def _plan(chunks: list[Chunk]) -> Plan:
    return Plan(selection=Selection(suite="mil", files=("iOS14/test_*.py",)), chunk_size=10, chunks=tuple(chunks),
                collected=sum(len(c.node_ids) for c in chunks), commit="abc1234", versions={"numpy": "2"})


def _result(chunk: Chunk, outcomes: list[tuple[str, bool]], commit: str = "abc1234", seconds: float = 5.0,
            started_at: float = 1.0) -> ChunkResult:
    records = tuple(TestRecord(nodeid, outcome, reached, "AssertionError: \nNot equal to tolerance rtol=1, atol=2")
                    for nodeid, (outcome, reached) in zip(chunk.node_ids, outcomes))
    return ChunkResult(name=chunk.name, key=chunk.key, records=records, not_run=0, commit=commit,
                       versions={"numpy": "2.3.5"}, started="2026-12-03 10:00:00 UTC", started_at=started_at,
                       seconds=seconds)


def test_state_keeps_the_plan_and_refuses_another_selection(tmp_path: Path) -> None:
    state = ChunkState(tmp_path / "state")
    chunks = plan_chunks(_ids("iOS14/test_a.py", "TestA", 3), MIL, size=10)
    plan = _plan(chunks)
    state.save_plan(plan)
    assert state.load_plan() == plan
    assert state.check_plan(plan.selection, 10) == plan
    with pytest.raises(StateError, match="another selection"):
        state.check_plan(Selection(suite="mil", files=("iOS15/test_*.py",)), 10)
    with pytest.raises(StateError, match="another selection"):
        state.check_plan(plan.selection, 20)
    state.plan_path.write_text('{"selection": {"suite"', encoding="utf-8")  # a torn plan is an error, not a plan
    with pytest.raises(StateError, match="not a readable plan"):
        state.load_plan()


def test_only_a_complete_result_for_the_same_tests_counts_as_done(tmp_path: Path) -> None:
    state = ChunkState(tmp_path / "state")
    chunk = Chunk("iOS14/test_a.py", tuple(_ids("iOS14/test_a.py", "TestA", 3)))
    assert state.result(chunk) is None
    result = _result(chunk, [("passed", True), ("failed", True), ("skipped", False)])
    state.save_result(result, chunk)
    assert state.result(chunk) == result
    assert not list(state.result_path(chunk).parent.glob(".*tmp*"))  # the temporary was renamed into place
    assert result.failures == 1

    text = state.result_path(chunk).read_text(encoding="utf-8")
    state.result_path(chunk).write_text(text[: len(text) // 2], encoding="utf-8")  # half written
    assert state.result(chunk) is None
    state.result_path(chunk).write_text(text, encoding="utf-8")
    grown = Chunk(chunk.name, chunk.node_ids + (f"{ROOT}/iOS14/test_a.py::TestA::test_new",))
    assert state.result(grown) is None  # the plan's chunk now holds other tests: not done


def test_merged_report_adds_up_the_chunks_and_names_their_commits(tmp_path: Path) -> None:
    chunks = plan_chunks(_ids("iOS14/test_a.py", "TestA", 3) + _ids("iOS14/test_b.py", "TestB", 20)
                         + _ids("iOS15/test_c.py", "TestC", 4), MIL, size=10)
    plan = _plan(chunks)
    first, second = chunks[0], chunks[1]
    results = {
        first.name: _result(first, [("passed", True), ("failed", True), ("skipped", False)], commit="aaa1111",
                            seconds=3.0),
        second.name: _result(second, [("passed", True)] * 9 + [("failed", False)], commit="bbb2222",
                             seconds=7.0, started_at=2.0),
    }
    summary = merged_summary(plan, results)
    overall = summary.overall
    assert (overall.passed, overall.failed, overall.skipped, overall.early_failed) == (10, 1, 1, 1)
    assert summary.seconds == pytest.approx(10.0)
    assert summary.commit == "aaa1111, bbb2222"
    assert f"2 of {len(chunks)} chunks done" in summary.description
    assert summary.tally(lambda r: r.nodeid.split("::")[1])["TestB"].passed == 9
    provenance = format_provenance(plan, results)
    assert f"| aaa1111 | 1 | 3 | `{first.name}` |" in provenance
    assert f"| bbb2222 | 1 | 10 | `{second.name}` |" in provenance
    pending = [c for c in chunks if c.name not in results]
    assert f"| (not run yet) | {len(pending)} | {sum(len(c.node_ids) for c in pending)} |" in provenance
    assert "numpy 2.3.5 (2 chunks)" in provenance
    assert json.loads(json.dumps(results[first.name].to_json())) == results[first.name].to_json()
    assert ChunkResult.from_json(results[first.name].to_json()) == results[first.name]


def test_the_full_run_tool_refuses_a_rerun_pattern_that_names_no_chunk(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    import conformance_full

    state = ChunkState(tmp_path / "state")
    state.save_plan(_plan(plan_chunks(_ids("iOS14/test_a.py", "TestA", 3), MIL, size=10)))
    common = ["--state", str(state.root), "--suite", "mil", "--files", "iOS14/test_*.py", "--chunk-size", "10"]
    assert conformance_full.main([*common, "--rerun-chunk", "TestNope[1/2]"]) == 2
    assert "No chunk, test file or test class matches --rerun-chunk 'TestNope[1/2]'" in capsys.readouterr().out
    assert conformance_full.main([*common[:-1], "20"]) == 2  # another chunk size: another run
    assert "holds a run of another selection" in capsys.readouterr().out
    assert not list(state.root.glob("chunks/*"))  # nothing ran
