"""The state folder of a chunked full run: the plan, one result file per chunk, their merge.

    <state>/plan.json            the selection, the collection (once), the chunks and their node ids
    <state>/chunks/<slug>.json   one finished chunk: its records, commit, versions, start, duration
    <state>/logs/<slug>/         that chunk's pytest logs, JUnit XML and JSON lines
    <state>/locks/<slug>.lock    held while a process runs the chunk

Every file is written atomically (a temporary sibling renamed into place) and a
result is trusted only if it parses and names the same tests as the plan's
chunk (its `key`), so a run killed at any moment leaves either the old result
or none, never half of one. Two processes may share a folder: a chunk's lock
keeps them from running the same chunk.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import platform
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from modelbuild import atomic
from modelbuild.file_lock import FileLock
from modelbuild.runtime_conformance.chunks import Chunk
from modelbuild.runtime_conformance.results import Summary, TestRecord
from modelbuild.runtime_conformance.runner import Selection

_VERSIONED = ("coremltools", "torch", "numpy", "scipy")


class StateError(ValueError):
    """The state folder cannot be used for this run (another selection, no plan, unreadable)."""


def versions() -> dict[str, str]:
    """Python and the versions of the packages the figures depend on ("missing" if absent)."""
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class Plan:
    """What a full run covers: the selection, its collection and its chunks."""

    selection: Selection
    chunk_size: int
    chunks: tuple[Chunk, ...]
    collected: int
    collect_errors: dict[str, str] = field(default_factory=dict)
    created: str = ""
    commit: str = "unknown"
    versions: dict[str, str] = field(default_factory=dict)

    def same_run(self, selection: Selection, chunk_size: int) -> bool:
        return self.selection == selection and self.chunk_size == chunk_size

    def to_json(self) -> dict:
        return {"selection": dataclasses.asdict(self.selection), "chunk_size": self.chunk_size,
                "collected": self.collected, "collect_errors": self.collect_errors, "created": self.created,
                "commit": self.commit, "versions": self.versions,
                "chunks": [{"name": c.name, "node_ids": list(c.node_ids)} for c in self.chunks]}

    @classmethod
    def from_json(cls, data: dict) -> Plan:
        selection = Selection(**{key: tuple(value) if isinstance(value, list) else value
                                 for key, value in data["selection"].items()})
        return cls(selection=selection, chunk_size=int(data["chunk_size"]),
                   chunks=tuple(Chunk(c["name"], tuple(c["node_ids"])) for c in data["chunks"]),
                   collected=int(data["collected"]), collect_errors=dict(data.get("collect_errors", {})),
                   created=data.get("created", ""), commit=data.get("commit", "unknown"),
                   versions=dict(data.get("versions", {})))


@dataclass(frozen=True)
class ChunkResult:
    """The records of one chunk run to its end, and where they came from."""

    name: str
    key: str  # Chunk.key of the tests it ran
    records: tuple[TestRecord, ...]
    not_run: int
    commit: str
    versions: dict[str, str]
    started: str  # UTC, for people
    started_at: float  # time.time(), to tell a result written during this invocation
    seconds: float

    @property
    def failures(self) -> int:
        """Tests that failed (before or after predict) or never ran: what --rerun-failed redoes."""
        return self.not_run + sum(1 for r in self.records if r.category in ("failed", "early_failed"))

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["records"] = [dataclasses.asdict(record) for record in self.records]
        return data

    @classmethod
    def from_json(cls, data: dict) -> ChunkResult:
        records = tuple(TestRecord(**record) for record in data["records"])
        return cls(**{**data, "records": records})


class ChunkState:
    """The state folder of one full run."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def plan_path(self) -> Path:
        return self.root / "plan.json"

    def result_path(self, chunk: Chunk) -> Path:
        return self.root / "chunks" / f"{chunk.slug}.json"

    def log_dir(self, chunk: Chunk) -> Path:
        return self.root / "logs" / chunk.slug

    def work_root(self) -> Path:
        return self.root / "work"

    def lock(self, chunk: Chunk) -> FileLock:
        path = self.root / "locks" / f"{chunk.slug}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(path)

    def planning_lock(self) -> FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(self.root / "plan.lock")

    # -- the plan ------------------------------------------------------------------------------
    def load_plan(self) -> Plan | None:
        """The stored plan, None when there is none yet."""
        if not self.plan_path.exists():
            return None
        try:
            return Plan.from_json(json.loads(self.plan_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StateError(f"{self.plan_path} is not a readable plan ({type(error).__name__}: {error}); "
                             "remove the state folder or pass another --state DIR.") from error

    def save_plan(self, plan: Plan) -> None:
        atomic.write_text(self.plan_path, json.dumps(plan.to_json()))

    def check_plan(self, selection: Selection, chunk_size: int) -> Plan | None:
        """The stored plan if it is for this selection and chunk size; StateError if another."""
        plan = self.load_plan()
        if plan is not None and not plan.same_run(selection, chunk_size):
            raise StateError(
                f"The state folder {self.root} holds a run of another selection ({plan.selection.describe()}, "
                f"chunks of {plan.chunk_size} tests), not {selection.describe()} in chunks of {chunk_size}; "
                "pass another --state DIR, or remove that folder to start over."
            )
        return plan

    # -- chunk results ---------------------------------------------------------------------------
    def result(self, chunk: Chunk) -> ChunkResult | None:
        """The stored result of `chunk`, or None (missing, unreadable or for other tests)."""
        path = self.result_path(chunk)
        try:
            result = ChunkResult.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return result if result.key == chunk.key and result.name == chunk.name else None

    def save_result(self, result: ChunkResult, chunk: Chunk) -> None:
        atomic.write_text(self.result_path(chunk), json.dumps(result.to_json()))

    def results(self, plan: Plan) -> dict[str, ChunkResult]:
        """The trusted results of the plan's chunks, by chunk name."""
        found = {chunk.name: self.result(chunk) for chunk in plan.chunks}
        return {name: result for name, result in found.items() if result is not None}


def _commits(results: list[ChunkResult]) -> str:
    seen = list(dict.fromkeys(result.commit for result in sorted(results, key=lambda r: r.started_at)))
    return ", ".join(seen) if seen else "none"


def merged_summary(plan: Plan, results: dict[str, ChunkResult]) -> Summary:
    """One Summary of every finished chunk, in plan order; the description says what is missing."""
    done = [results[chunk.name] for chunk in plan.chunks if chunk.name in results]
    records = [record for result in done for record in result.records]
    tests_done = sum(len(chunk.node_ids) for chunk in plan.chunks if chunk.name in results)
    planned = sum(len(chunk.node_ids) for chunk in plan.chunks)
    span = (f", chunks run {min(r.started for r in done)} .. {max(r.started for r in done)}" if done else "")
    description = (f"Conformance of modelbuild.runtime at commit {_commits(done)}{span}: "
                   f"{plan.selection.describe()}; {len(done)} of {len(plan.chunks)} chunks done "
                   f"({tests_done} of {planned} tests; {plan.collected} collected)")
    return Summary(records=records, collect_errors=plan.collect_errors,
                   not_run=sum(r.not_run for r in done), seconds=sum(r.seconds for r in done),
                   description=description, commit=_commits(done))


def format_provenance(plan: Plan, results: dict[str, ChunkResult]) -> str:
    """Markdown: which commit (and package versions) each chunk's figures came from."""
    by_commit: dict[str, list[str]] = {}
    versions_seen: Counter = Counter()
    for chunk in plan.chunks:
        result = results.get(chunk.name)
        if result is not None:
            by_commit.setdefault(result.commit, []).append(chunk.name)
            versions_seen[", ".join(f"{k} {v}" for k, v in sorted(result.versions.items()))] += 1
    pending = [chunk.name for chunk in plan.chunks if chunk.name not in results]
    lines = ["| commit | chunks | tests | chunks (names) |", "|---|---:|---:|---|"]
    sizes = {chunk.name: len(chunk.node_ids) for chunk in plan.chunks}
    for commit, names in by_commit.items():
        listed = "all finished chunks" if len(by_commit) == 1 else ", ".join(f"`{name}`" for name in names)
        lines.append(f"| {commit} | {len(names)} | {sum(sizes[n] for n in names)} | {listed} |")
    if pending:
        shown = ", ".join(f"`{name}`" for name in pending[:20]) + (" ..." if len(pending) > 20 else "")
        lines.append(f"| (not run yet) | {len(pending)} | {sum(sizes[n] for n in pending)} | {shown} |")
    lines += ["", "Package versions of the chunks: "
              + "; ".join(f"{text} ({count} chunks)" for text, count in versions_seen.most_common())
              if versions_seen else "No chunk has finished yet."]
    return "\n".join(lines)
