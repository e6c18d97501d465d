"""benchmarks/conformance_full.py on a tiny real selection: resume after a kill, atomic state, honest report.

Three chunks of three real coremltools tests each (iOS14 TestEqual, TestGreater,
TestNotEqual, through the reference runtime): run one (--chunks 1), kill the
next run with SIGKILL in the middle of its chunk, run again (--jobs 2); the chunk
done is not run again, nothing half-written is trusted, the killed pytest
does not outlive the tool, and the merged report counts what the JUnit XML
and the plugin's JSON lines of the kept logs say.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

import pytest

import conformance_full
from modelbuild.runtime_conformance.chunk_state import ChunkState
from modelbuild.runtime_conformance.results import read_records
from modelbuild.runtime_conformance.runner import REPO_ROOT, Selection

pytestmark = pytest.mark.slow

TOOL = REPO_ROOT / "benchmarks" / "conformance_full.py"
TINY = ["--suite", "mil", "--files", "iOS14/test_elementwise_binary.py", "--classes", "TestEqual",
        "--classes", "TestGreater", "--classes", "TestNotEqual", "--chunk-size", "3"]


def _tool(state: Path, *extra: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(TOOL), *TINY, "--state", str(state), *extra], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds:g} s for {what}"
        time.sleep(0.2)


def _children(pid: int) -> list[int]:
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def _dead(pid: int) -> bool:
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()  # killed, not yet reaped
    except FileNotFoundError:
        return True


def _junit_categories(logs: Path) -> Counter:
    """The report's categories, computed from the JUnit XML alone."""
    counts: Counter = Counter()
    for path in logs.glob("*/junit-*.xml"):
        for case in ElementTree.parse(path).iter("testcase"):
            reached = any(p.get("name") == "reached_predict" for p in case.iter("property"))
            if case.find("skipped") is not None:
                counts["skipped"] += 1
            elif case.find("failure") is not None or case.find("error") is not None:
                counts["failed" if reached else "early_failed"] += 1
            else:
                counts["passed" if reached else "early_passed"] += 1
    return counts


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the tool's pytest")
def test_a_killed_full_run_resumes_and_its_report_matches_the_junit_xml(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state = ChunkState(state_dir)
    first = _tool(state_dir, "--chunks", "1")
    plan = state.load_plan()
    assert [c.name for c in plan.chunks] == [f"iOS14/test_elementwise_binary.py::{name}"
                                            for name in ("TestEqual", "TestGreater", "TestNotEqual")]
    assert [state.result(c) is not None for c in plan.chunks] == [True, False, False], first.stdout
    done_first = state.result_path(plan.chunks[0]).read_bytes()

    # Kill the next run (SIGKILL: no chance to clean up) once its chunk's pytest runs a test.
    killed_chunk = plan.chunks[1]
    with open(tmp_path / "killed.log", "w", encoding="utf-8") as log:
        killed = subprocess.Popen([sys.executable, str(TOOL), *TINY, "--state", str(state_dir)], cwd=REPO_ROOT,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for(lambda: any("start" in path.read_text() for path in
                                  (state_dir / "work").glob(f"{killed_chunk.slug}-*/results-0.jsonl")),
                      300, "the second chunk's first test to start")
            pytest_pids = _children(killed.pid)
            killed.send_signal(signal.SIGKILL)
            killed.wait(timeout=30)
        finally:
            if killed.poll() is None:
                killed.kill()
    assert pytest_pids
    _wait_for(lambda: all(_dead(pid) for pid in pytest_pids), 10, "the killed tool's pytest to die with it")
    assert [state.result(c) is not None for c in plan.chunks] == [True, False, False]
    assert not state.result_path(killed_chunk).exists()  # nothing half-written where a result belongs

    resumed = _tool(state_dir, "--jobs", "2")  # the two chunks left, side by side
    assert "2 chunks to run" in resumed.stdout and "3 of 3 chunks done." in resumed.stdout, resumed.stdout
    assert state.result_path(plan.chunks[0]).read_bytes() == done_first  # the done chunk was not run again
    assert not list((state_dir / "work").iterdir())  # the killed chunk's leftovers are gone

    report_json = tmp_path / "report.json"
    report = _tool(state_dir, "--report", "--json", str(report_json), "--markdown", str(tmp_path / "report.md"))
    figures = json.loads(report_json.read_text(encoding="utf-8"))
    junit = _junit_categories(state_dir / "logs")
    overall = figures["overall"]
    assert sum(junit.values()) == overall["total"] == 9
    assert {key: overall[key] for key in ("passed", "failed", "early_failed", "early_passed", "skipped")} == {
        key: junit[key] for key in ("passed", "failed", "early_failed", "early_passed", "skipped")}
    assert overall["reached"] >= 3, figures  # the run judged the runtime
    lines = [record for path in (state_dir / "logs").glob("*/results-*.jsonl") for record in read_records(path)[0]]
    assert sorted(r.nodeid for r in lines) == sorted(n for c in plan.chunks for n in c.node_ids)
    assert {name: t["reached"] for name, t in figures["per_class"].items()} == dict(
        Counter(r.nodeid.split("::")[1] for r in lines if r.reached))
    assert [c["done"] for c in figures["chunks"]] == [True, True, True]
    commit = figures["chunks"][0]["commit"]
    assert f"| {commit} | 3 | 9 | all finished chunks |" in report.stdout
    assert f"at commit {commit}" in (tmp_path / "report.md").read_text(encoding="utf-8")


HIDE_SCIPY = """
import sys


class HideScipy:
    def find_spec(self, name, path=None, target=None):
        if name == "scipy" or name.startswith("scipy."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)", name=name)
        return None


sys.meta_path.insert(0, HideScipy())
"""


def test_a_file_that_cannot_be_collected_is_reported_not_substituted(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    """Without scipy (hidden here), iOS14/test_activation.py fails to collect, and the report says so."""
    hidden = tmp_path / "hide"
    hidden.mkdir()
    (hidden / "sitecustomize.py").write_text(HIDE_SCIPY, encoding="utf-8")  # pytest's rootdir comes first on
    monkeypatch.setenv("PYTHONPATH", str(hidden))  # sys.path, so a fake scipy package would not shadow it
    state = ChunkState(tmp_path / "state")
    plan = conformance_full.ensure_plan(state, Selection(suite="mil", files=("iOS14/test_activation.py",)), 400)
    assert plan.chunks == () and plan.collected == 0
    [(path, message)] = plan.collect_errors.items()
    assert path.endswith("iOS14/test_activation.py") and "scipy" in message
    markdown = tmp_path / "report.md"
    assert conformance_full.main(["--state", str(state.root), "--report", "--markdown", str(markdown)]) == 0
    assert "could not collect" in capsys.readouterr().out
    assert "Could not collect `" in markdown.read_text(encoding="utf-8")
