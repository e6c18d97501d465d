"""Run a part of coremltools' test suites against the reference runtime, in a subprocess pytest.

`run_conformance()` collects the chosen files (with the plugin, so the macOS
pretence decides collection-time skips as on a Mac), filters by test class,
draws a deterministic sample, and runs it in `python -m pytest -p
modelbuild.runtime_conformance.plugin ...`. The plugin writes one JSON line per
finished test, so a test that kills the interpreter (a segfault, the OOM
killer) loses only itself: the runner records it as "crashed" and starts a new
pytest for the tests that remain. A total time limit stops the run and counts
what did not run.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from modelbuild.runtime_conformance.results import Summary, TestRecord, read_records
from modelbuild.runtime_conformance.suites import (
    class_of,
    coremltools_site_dir,
    filter_classes,
    get_suite,
    sample_node_ids,
    suite_files,
)

PLUGIN = "modelbuild.runtime_conformance.plugin"
REPO_ROOT = Path(__file__).resolve().parents[2]
_MAX_RESTARTS = 25
_PYTEST_EXIT_OK = (0, 1, 5)  # all passed, some failed, nothing collected


class ConformanceRunError(RuntimeError):
    """The harness itself could not run the suite (not a test failure)."""


@dataclass(frozen=True)
class Selection:
    """Which tests a conformance run covers."""

    suite: str = "mil"
    files: tuple[str, ...] = ()  # globs relative to the suite root; () = the suite's default
    classes: tuple[str, ...] = ()  # test class globs, e.g. ("TestConv*",); () = all
    exclude_classes: tuple[str, ...] = ()  # test class globs to leave out
    sample: int | None = None  # number of tests to draw; None = all
    per_class: int | None = None  # at most this many tests per test class and file, drawn first
    seed: int = 0
    fp32: bool = False  # also run coremltools' fp32 ML Program variants
    runtime: str = "modelbuild.runtime:load"  # "module:function" predict is routed to

    def describe(self) -> str:
        parts = [f"suite {self.suite}"]
        if self.files:
            parts.append("files " + " ".join(self.files))
        if self.classes:
            parts.append("classes " + " ".join(self.classes))
        if self.exclude_classes:
            parts.append("excluding classes " + " ".join(self.exclude_classes))
        if self.per_class is not None:
            parts.append(f"{self.per_class} per class (seed {self.seed})")
        if self.sample is not None:
            parts.append(f"sample {self.sample} (seed {self.seed})")
        if self.fp32:
            parts.append("with fp32 variants")
        if self.runtime != Selection.runtime:
            parts.append(f"runtime {self.runtime}")
        return ", ".join(parts)


def _environment(selection: Selection) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")  # a shared 2-core machine: one thread per run
    env.setdefault("MKL_NUM_THREADS", "1")
    env.setdefault("PYTHONHASHSEED", "0")
    if selection.fp32:
        env["INCLUDE_MIL_FP32_UNIT_TESTS"] = "1"
    return env


def _pytest_command(workdir: Path, selection: Selection, extra: Sequence[str],
                    targets: Sequence[str | Path]) -> list[str]:
    ini = workdir / "pytest.ini"
    if not ini.exists():
        ini.write_text("[pytest]\n", encoding="utf-8")  # keeps the repo's addopts out
    command = [
        sys.executable, "-m", "pytest", "-c", str(ini), f"--rootdir={coremltools_site_dir()}",
        "-p", "no:cacheprovider", "-p", PLUGIN, "-q", "--tb=line", "-rN",
        "--continue-on-collection-errors", "-W", "ignore",
        f"--modelbuild-runtime={selection.runtime}", f"--modelbuild-parent-pid={os.getpid()}",
    ]
    return command + list(extra) + [str(target) for target in targets]


def collect(selection: Selection, workdir: Path) -> tuple[list[str], dict[str, str]]:
    """Node ids of the selected files (after class filtering) and collection errors."""
    suite = get_suite(selection.suite)
    files = suite_files(suite, selection.files or None)
    collected, results = workdir / "collected.json", workdir / "collect-results.jsonl"
    command = _pytest_command(workdir, selection, [
        "--collect-only", f"--modelbuild-collected={collected}", f"--modelbuild-results={results}",
    ], files)
    with open(workdir / "collect.log", "w", encoding="utf-8") as log:
        completed = subprocess.run(command, cwd=REPO_ROOT, env=_environment(selection),
                                   stdout=log, stderr=subprocess.STDOUT, check=False)
    if not collected.exists():
        raise ConformanceRunError(
            f"Collecting the {suite.name} suite failed (pytest exit code {completed.returncode}); "
            f"the end of its log (--keep DIR keeps all of it):\n{_tail(workdir / 'collect.log')}"
        )
    node_ids = filter_classes(json.loads(collected.read_text(encoding="utf-8")), selection.classes,
                              selection.exclude_classes)
    _, collect_errors, _, _ = read_records(results)
    return node_ids, collect_errors


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def collection_targets(node_ids: Sequence[str]) -> list[str]:
    """What pytest is told to collect for `node_ids`: `file::Class` for each test class, the
    whole file when one of its tests is a module-level function.

    Collecting only the classes wanted (the plugin's --modelbuild-select then keeps
    the node ids) spares a run of a few classes of test_torch_ops.py the
    generation of its 22,705 parametrized items.
    """
    site = coremltools_site_dir()
    per_file: dict[str, set[str]] = {}
    for nodeid in node_ids:
        per_file.setdefault(nodeid.split("::", 1)[0], set()).add(class_of(nodeid))
    targets = []
    for path, classes in sorted(per_file.items()):
        if "(module)" in classes:
            targets.append(str(site / path))
        else:
            targets += [f"{site / path}::{name}" for name in sorted(classes)]
    return targets


def execute(node_ids: Sequence[str], selection: Selection, workdir: Path, *,
            deadline: float | None = None, test_timeout: float = 120.0) -> tuple[list[TestRecord], int]:
    """Run `node_ids`; returns the records and how many selected tests never ran (deadline).

    A pytest that dies mid-test is restarted (at most 25 times) on the tests
    left; the test it died in is recorded as "crashed".
    """
    records: dict[str, TestRecord] = {}
    remaining = list(node_ids)
    for attempt in range(_MAX_RESTARTS + 1):
        if not remaining:
            break
        select, results = workdir / f"select-{attempt}.json", workdir / f"results-{attempt}.jsonl"
        select.write_text(json.dumps(remaining), encoding="utf-8")
        command = _pytest_command(workdir, selection, [
            f"--modelbuild-select={select}", f"--modelbuild-results={results}",
            f"--modelbuild-test-timeout={test_timeout:g}", f"--junitxml={workdir / f'junit-{attempt}.xml'}",
        ], collection_targets(remaining))
        log_path = workdir / f"run-{attempt}.log"
        with open(log_path, "w", encoding="utf-8") as log:
            process = subprocess.Popen(command, cwd=REPO_ROOT, env=_environment(selection),
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            timed_out = False
            try:
                process.wait(timeout=None if deadline is None else max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
                _stop(process)
            except BaseException:  # Ctrl-C, SystemExit: pytest runs in its own session, stop it
                _stop(process)
                raise
        finished, _, reached, unfinished = read_records(results)
        records.update((record.nodeid, record) for record in finished)
        if timed_out:
            break
        if process.returncode in _PYTEST_EXIT_OK:
            break
        if unfinished is None:
            raise ConformanceRunError(
                f"pytest stopped with {_describe_exit(process.returncode)} outside any test; "
                f"the end of its log (--keep DIR keeps all of it):\n{_tail(log_path)}"
            )
        records[unfinished] = TestRecord(
            nodeid=unfinished, outcome="crashed", reached=unfinished in reached,
            message=f"The test process died with {_describe_exit(process.returncode)} during this test.",
        )
        remaining = [nodeid for nodeid in remaining if nodeid not in records]
    ordered = [records[nodeid] for nodeid in node_ids if nodeid in records]
    return ordered, len(node_ids) - len(ordered)


def git_commit() -> str:
    """The short hash of the repository's HEAD, with `+changes` when modelbuild/ differs from it
    (uncommitted or untracked files): the figures are then not that commit's ("unknown" outside git)."""
    try:
        def git(*arguments: str) -> str:
            return subprocess.run(["git", *arguments], cwd=REPO_ROOT, capture_output=True, text=True,
                                  check=True).stdout.strip()

        changed = git("status", "--porcelain", "--", "modelbuild")
        return git("rev-parse", "--short", "HEAD") + ("+changes" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_conformance(selection: Selection, *, timeout: float | None = None, test_timeout: float = 120.0,
                    keep_dir: Path | None = None) -> Summary:
    """Collect, sample and run `selection`; the figures of the run.

    `timeout` bounds the whole run in seconds (what did not run is counted in
    `Summary.not_run`); `test_timeout` fails a single test that runs longer.
    With `keep_dir`, the pytest logs, JUnit XML and JSON-lines files are kept there.
    """
    started, first_commit = time.monotonic(), git_commit()
    started_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    deadline = None if timeout is None else started + timeout
    workdir = Path(tempfile.mkdtemp(prefix="modelbuild-conformance-"))
    try:
        node_ids, collect_errors = collect(selection, workdir)
        chosen = sample_node_ids(node_ids, selection.sample, selection.seed, selection.per_class)
        records, not_run = execute(chosen, selection, workdir, deadline=deadline, test_timeout=test_timeout)
    finally:
        if keep_dir is not None:
            shutil.copytree(workdir, keep_dir, dirs_exist_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
    last_commit = git_commit()
    commit = first_commit if first_commit == last_commit else f"{first_commit}..{last_commit}"
    description = (f"Conformance of modelbuild.runtime at commit {commit}, started {started_at}: "
                   f"{selection.describe()}; "
                   f"{len(chosen)} of {len(node_ids)} collected tests")
    summary = Summary(records=records, collect_errors=collect_errors, not_run=not_run,
                      seconds=time.monotonic() - started, description=description, commit=commit)
    if keep_dir is not None:
        (Path(keep_dir) / "run.json").write_text(json.dumps(
            {"description": description, "commit": commit, "seconds": summary.seconds}), encoding="utf-8")
    return summary


def summary_from_dir(directory: Path) -> Summary:
    """Re-read the figures of a run kept with `keep_dir` (crashes not re-derived)."""
    directory = Path(directory)
    selected_path = directory / "select-0.json"
    if not selected_path.exists():
        raise ConformanceRunError(f"{directory} holds no kept conformance run (no select-0.json).")
    selected = json.loads(selected_path.read_text(encoding="utf-8"))
    records: dict[str, TestRecord] = {}
    for results in sorted(directory.glob("results-*.jsonl")):
        records.update((record.nodeid, record) for record in read_records(results)[0])
    _, collect_errors, _, _ = read_records(directory / "collect-results.jsonl")
    ordered = [records[nodeid] for nodeid in selected if nodeid in records]
    run_path = directory / "run.json"
    run = json.loads(run_path.read_text(encoding="utf-8")) if run_path.exists() else {}
    return Summary(records=ordered, collect_errors=collect_errors, not_run=len(selected) - len(ordered),
                   description=run.get("description", f"Conformance of modelbuild.runtime, re-read from {directory}"),
                   commit=run.get("commit", "unknown"), seconds=float(run.get("seconds", 0.0)))
