"""A whole coremltools test suite against the reference runtime, in chunks that survive a kill.

    nice -n 19 .venv/bin/python benchmarks/conformance_full.py --suite mil          # run, or continue
    nice -n 19 .venv/bin/python benchmarks/conformance_full.py --suite torch --jobs 2
    .venv/bin/python benchmarks/conformance_full.py --suite mil --chunks 5          # 5 chunks, then stop
    .venv/bin/python benchmarks/conformance_full.py --suite mil --rerun-failed      # after a runtime fix
    .venv/bin/python benchmarks/conformance_full.py --suite mil --rerun-chunk 'iOS14/test_conv.py'
    .venv/bin/python benchmarks/conformance_full.py --suite mil --list               # the chunks, done or not
    .venv/bin/python benchmarks/conformance_full.py --suite mil --report --markdown mil.md

The first run collects the suite once (`--suite mil` = the iOS14..iOS18 op tests,
`--suite torch` = test_torch_ops.py; `--files`/`--classes` narrow it) and splits
it into chunks of at most `--chunk-size` tests (modelbuild/runtime_conformance/
chunks.py). Each chunk runs through the conformance runner (a subprocess pytest
that survives crashes, with a per-test timeout) and its records are stored
atomically in the state folder (default /work/conformance-state/<suite>, see
chunk_state.py) with the commit, package versions, start time and duration.
Running the same command again skips the chunks already stored, so a run killed
at any moment (Ctrl-C, kill -9, a reboot) goes on where it stopped; only the
chunk being run is lost. `--report` merges every stored chunk into the
harness's usual report (report.py, markdown.py) with the commits the figures
came from.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelbuild import atomic  # noqa: E402
from modelbuild.file_lock import FileLock  # noqa: E402
from modelbuild.runtime_conformance.chunk_state import (  # noqa: E402
    ChunkResult,
    ChunkState,
    Plan,
    StateError,
    format_provenance,
    merged_summary,
    utc_now,
    versions,
)
from modelbuild.runtime_conformance.chunks import Chunk, chunk_matches, plan_chunks  # noqa: E402
from modelbuild.runtime_conformance.markdown import format_markdown  # noqa: E402
from modelbuild.runtime_conformance.report import format_summary, summary_json  # noqa: E402
from modelbuild.runtime_conformance.results import Summary, format_overall  # noqa: E402
from modelbuild.runtime_conformance.runner import (  # noqa: E402
    ConformanceRunError,
    Selection,
    collect,
    execute,
    git_commit,
)
from modelbuild.runtime_conformance.suites import SUITES, get_suite  # noqa: E402

DEFAULT_STATE_ROOT = Path("/work/conformance-state")
DEFAULT_CHUNK_SIZE = 400


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/conformance_full.py",
        description="Run a whole coremltools test suite against modelbuild.runtime in resumable chunks.",
    )
    parser.add_argument("--suite", choices=sorted(SUITES), default="mil",
                        help="mil: MIL op tests iOS14-iOS18; torch: test_torch_ops.py (default: mil).")
    parser.add_argument("--files", action="append", default=[], metavar="GLOB",
                        help="Only these test files, relative to the suite root; repeatable.")
    parser.add_argument("--classes", action="append", default=[], metavar="GLOB",
                        help="Only these test classes; repeatable.")
    parser.add_argument("--exclude-classes", action="append", default=[], metavar="GLOB",
                        help="Leave these test classes out; repeatable.")
    parser.add_argument("--fp32", action="store_true", help="Also run coremltools' fp32 ML Program variants.")
    parser.add_argument("--state", type=Path, default=None, metavar="DIR",
                        help=f"The state folder (default {DEFAULT_STATE_ROOT}/<suite>).")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, metavar="N",
                        help=f"At most N tests per chunk (default {DEFAULT_CHUNK_SIZE}); fixed when the "
                             "state folder is created.")
    parser.add_argument("--chunks", type=int, default=None, metavar="N",
                        help="Run at most N chunks, then stop (run the same command again to go on).")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="Run N chunks at a time, each in its own pytest (default 1).")
    parser.add_argument("--rerun-failed", action="store_true",
                        help="Run again the finished chunks with a failure (before or after predict) "
                             "or a test that did not run, and nothing else.")
    parser.add_argument("--rerun-chunk", action="append", default=[], metavar="GLOB",
                        help="Run again the chunks whose name, or one of whose test files or classes, "
                             "matches GLOB, and nothing else; repeatable.")
    parser.add_argument("--test-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="Fail a single test that runs longer than this (default 120).")
    parser.add_argument("--chunk-timeout", type=float, default=7200.0, metavar="SECONDS",
                        help="Stop a chunk after this long; its tests left are counted as not run "
                             "(default 7200).")
    parser.add_argument("--list", action="store_true", help="List the chunks and whether they are done.")
    parser.add_argument("--report", action="store_true",
                        help="Print the merged report of the finished chunks; run nothing.")
    parser.add_argument("--markdown", type=Path, default=None, metavar="FILE",
                        help="Write the merged report as Markdown (for docs/conformance.md); run nothing.")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="Write the merged figures and the chunks as JSON; run nothing.")
    parser.add_argument("--top", type=int, default=15, help="How many failure reasons to list (default 15).")
    return parser


def _selection(args: argparse.Namespace) -> Selection:
    return Selection(suite=args.suite, files=tuple(args.files), classes=tuple(args.classes),
                     exclude_classes=tuple(args.exclude_classes), fp32=args.fp32)


def ensure_plan(state: ChunkState, selection: Selection, chunk_size: int) -> Plan:
    """The state folder's plan for `selection`; collected and split the first time."""
    with state.planning_lock():
        plan = state.check_plan(selection, chunk_size)
        if plan is not None:
            return plan
        print(f"collecting {selection.describe()} (once) ...", flush=True)
        state.work_root().mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="collect-", dir=state.work_root()))
        try:
            node_ids, collect_errors = collect(selection, workdir)
            shutil.copyfile(workdir / "collect.log", state.root / "collect.log")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        plan = Plan(selection=selection, chunk_size=chunk_size,
                    chunks=tuple(plan_chunks(node_ids, get_suite(selection.suite), chunk_size)),
                    collected=len(node_ids), collect_errors=collect_errors, created=utc_now(),
                    commit=git_commit(), versions=versions())
        state.save_plan(plan)
        print(f"{plan.collected} tests collected, in {len(plan.chunks)} chunks"
              + "".join(f"\ncould not collect {path}" for path in collect_errors), flush=True)
        return plan


def chunks_to_run(plan: Plan, state: ChunkState, args: argparse.Namespace) -> list[Chunk]:
    """The chunks this command runs: the ones not done, or the ones asked to be run again."""
    if not (args.rerun_failed or args.rerun_chunk):
        return [chunk for chunk in plan.chunks if state.result(chunk) is None]
    suite = get_suite(plan.selection.suite)
    unknown = [pattern for pattern in args.rerun_chunk
               if not any(chunk_matches(chunk, pattern, suite) for chunk in plan.chunks)]
    if unknown:
        raise ValueError(f"No chunk, test file or test class matches --rerun-chunk {' '.join(map(repr, unknown))}; "
                         "--list shows the chunks (a name such as 'iOS14/test_recurrent.py::TestLSTM[2/4]' "
                         "is taken exactly, a glob such as 'TestLSTM*' matches names, files and classes).")
    chosen = []
    for chunk in plan.chunks:
        result = state.result(chunk)
        if (args.rerun_failed and result is not None and result.failures) or any(
                chunk_matches(chunk, pattern, suite) for pattern in args.rerun_chunk):
            chosen.append(chunk)
    return chosen


def run_chunk(chunk: Chunk, plan: Plan, state: ChunkState, *, test_timeout: float,
              chunk_timeout: float) -> ChunkResult:
    """Run one chunk (its lock held by the caller), keep its logs, store its result atomically."""
    state.work_root().mkdir(parents=True, exist_ok=True)
    for leftover in state.work_root().glob(f"{chunk.slug}-*"):  # of a killed run of this chunk
        atomic.remove(leftover)
    workdir = Path(tempfile.mkdtemp(prefix=f"{chunk.slug}-", dir=state.work_root()))
    started_at, started, first_commit, clock = time.time(), utc_now(), git_commit(), time.monotonic()
    try:
        records, not_run = execute(chunk.node_ids, plan.selection, workdir, deadline=clock + chunk_timeout,
                                   test_timeout=test_timeout)
    finally:
        state.log_dir(chunk).parent.mkdir(parents=True, exist_ok=True)
        atomic.replace(workdir, state.log_dir(chunk))
    last_commit = git_commit()
    result = ChunkResult(
        name=chunk.name, key=chunk.key, records=tuple(records), not_run=not_run,
        commit=first_commit if first_commit == last_commit else f"{first_commit}..{last_commit}",
        versions=versions(), started=started, started_at=started_at, seconds=time.monotonic() - clock)
    state.save_result(result, chunk)
    return result


class Scheduler:
    """Hands out the chunks to run, each to one worker that holds its lock, up to a limit."""

    def __init__(self, chunks: Sequence[Chunk], state: ChunkState, *, limit: int | None, rerun: bool) -> None:
        self._queue = list(chunks)
        self._state = state
        self._limit = limit
        self._rerun = rerun
        self._since = time.time()  # a rerun result newer than this was written by another worker
        self._mutex = threading.Lock()
        self.started = 0
        self.errors: list[str] = []

    def _needed(self, chunk: Chunk) -> bool:
        result = self._state.result(chunk)
        return result is None or (self._rerun and result.started_at < self._since)

    def claim(self) -> tuple[Chunk, FileLock] | None:
        """The next chunk and its held lock, or None when nothing (or no more of the limit) is left."""
        with self._mutex:
            while self._queue and (self._limit is None or self.started < self._limit):
                chunk = self._queue.pop(0)
                lock = self._state.lock(chunk)
                if not lock.acquire(blocking=False):
                    continue  # another process runs it
                if not self._needed(chunk):
                    lock.release()
                    continue
                self.started += 1
                return chunk, lock
            return None

    def work(self, plan: Plan, args: argparse.Namespace, total: int) -> None:
        """One worker: run chunks until none is left."""
        while (claimed := self.claim()) is not None:
            chunk, lock = claimed
            try:
                result = run_chunk(chunk, plan, self._state, test_timeout=args.test_timeout,
                                   chunk_timeout=args.chunk_timeout)
                done = sum(1 for c in plan.chunks if self._state.result_path(c).exists())
                print(f"[{done}/{total} done] {describe_result(result, len(chunk.node_ids))}", flush=True)
            except Exception as error:  # the harness failed (ConformanceRunError) or broke: tell, go on
                with self._mutex:
                    self.errors.append(f"{chunk.name}: {type(error).__name__}: {error}")
                print(f"chunk {chunk.name} could not run (its logs: {self._state.log_dir(chunk)}): {error}",
                      flush=True)
            finally:
                lock.release()


def describe_result(result: ChunkResult, size: int) -> str:
    t = Summary(records=list(result.records)).overall
    rate = "-" if t.pass_rate is None else f"{100 * t.pass_rate:.1f}%"
    return (f"{result.name}: {size} tests in {result.seconds:.0f} s ({result.seconds / max(size, 1):.2f} s/test); "
            f"reached predict {t.reached}: {t.passed} passed, {t.failed} failed ({rate}); "
            f"{t.early_failed} failed before predict, {t.early_passed} passed without predict, "
            f"{t.skipped} skipped" + (f", {result.not_run} not run" if result.not_run else "")
            + f" (commit {result.commit})")


def run(state: ChunkState, args: argparse.Namespace) -> int:
    plan = ensure_plan(state, _selection(args), args.chunk_size)
    todo = chunks_to_run(plan, state, args)
    scheduler = Scheduler(todo, state, limit=args.chunks, rerun=bool(args.rerun_failed or args.rerun_chunk))
    clock = time.monotonic()
    print(f"{len(todo)} chunks to run" + (f" (at most {args.chunks})" if args.chunks is not None else "")
          + f", state in {state.root}", flush=True)
    workers = [threading.Thread(target=scheduler.work, args=(plan, args, len(plan.chunks)), daemon=True)
               for _ in range(max(1, args.jobs))]
    for worker in workers:
        worker.start()
    try:
        while any(worker.is_alive() for worker in workers):
            for worker in workers:
                worker.join(timeout=0.5)
    except KeyboardInterrupt:
        # Every finished chunk is stored; the pytest processes die with this one (plugin.die_with_parent).
        print(f"\ninterrupted: the chunks being run are lost, the others are stored in {state.root}; "
              "run the same command again to go on.", flush=True)
        sys.stdout.flush()
        os._exit(130)
    results = state.results(plan)
    left = len(plan.chunks) - len(results)
    print(f"\nthis command ran {scheduler.started} chunks in {time.monotonic() - clock:.0f} s; "
          f"{len(results)} of {len(plan.chunks)} chunks done"
          + (f", {left} left: run the same command again to go on." if left else "."))
    print(format_overall(merged_summary(plan, results)))
    for error in scheduler.errors:
        print(f"error: {error}")
    return 1 if scheduler.errors else 0


def _chunks_json(plan: Plan, results: dict[str, ChunkResult]) -> list[dict]:
    rows = []
    for chunk in plan.chunks:
        result = results.get(chunk.name)
        row = {"name": chunk.name, "tests": len(chunk.node_ids), "done": result is not None}
        if result is not None:
            row.update(commit=result.commit, started=result.started, seconds=round(result.seconds, 1),
                       not_run=result.not_run, versions=result.versions)
        rows.append(row)
    return rows


def report(state: ChunkState, args: argparse.Namespace) -> int:
    plan = state.load_plan()
    if plan is None:
        print(f"error: {state.root} holds no full run yet (no plan.json); run the command without --report first.")
        return 2
    suite = plan.selection.suite
    results = state.results(plan)
    summary = merged_summary(plan, results)
    provenance = f"Where the figures came from:\n\n{format_provenance(plan, results)}\n"
    if args.report:
        print(format_summary(summary, suite, top=args.top))
        print(f"\n{provenance}")
    if args.markdown is not None:
        args.markdown.write_text(format_markdown(summary, suite, top=args.top) + "\n" + provenance,
                                 encoding="utf-8")
    if args.json is not None:
        data = summary_json(summary, suite)
        data.update(chunks=_chunks_json(plan, results), plan_versions=plan.versions, collected=plan.collected)
        args.json.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return 0


def list_chunks(state: ChunkState) -> int:
    plan = state.load_plan()
    if plan is None:
        print(f"error: {state.root} holds no full run yet (no plan.json).")
        return 2
    for chunk in plan.chunks:
        result = state.result(chunk)
        status = "pending" if result is None else describe_result(result, len(chunk.node_ids))
        print(f"{len(chunk.node_ids):>5}  {chunk.name}" + ("  (pending)" if result is None else f"\n       {status}"))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    state = ChunkState(args.state or DEFAULT_STATE_ROOT / args.suite)
    try:
        if args.list:
            return list_chunks(state)
        if args.report or args.markdown is not None or args.json is not None:
            return report(state, args)
        return run(state, args)
    except (StateError, ConformanceRunError, ValueError, OSError) as error:
        print(f"error: {error}")
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: the finished chunks are stored in {state.root}; run the same command again to go on.")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
