"""pytest plugin that runs coremltools' own test suites against the reference runtime.

Load it with `pytest -p modelbuild.runtime_conformance.plugin ...`. Before
collection it makes coremltools believe it runs on macOS (see `macos.py`) and
routes `MLModel.predict` to `modelbuild.runtime` (see `routing.py`), so the
tests that only compared numbers on a Mac now compare the runtime's numbers
against Apple's expected values.

Options (all optional):
  --modelbuild-results=PATH       append one JSON line per test (and per collection
                                  error) as soon as it finishes: nodeid, outcome,
                                  whether it reached predict, the failure message.
                                  Written incrementally, so a crash or a kill keeps
                                  what finished.
  --modelbuild-select=PATH        run only the node ids listed in PATH (a JSON list;
                                  not lines: parametrize ids may hold newlines).
  --modelbuild-collected=PATH     write every collected node id to PATH (a JSON list).
  --modelbuild-runtime=MOD:FUNC   the loader predict is routed to (default
                                  modelbuild.runtime:load; tests use a fake one).
  --modelbuild-test-timeout=SEC   fail a test whose call phase runs longer than SEC.
  --modelbuild-parent-pid=PID     die (SIGKILL, Linux) when the process that started
                                  this pytest dies, even by SIGKILL: the runner starts
                                  pytest in a session of its own, so nothing else
                                  would stop it.

A test "reached predict" when a routed `MLModel.predict` or `make_state` was
entered during it; the flag is also added to the test's `user_properties`
(`reached_predict`), which `--junitxml` writes as a <property>.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from pathlib import Path
from typing import IO, Any, Iterator

import pytest

from modelbuild.runtime_conformance.macos import pretend_macos
from modelbuild.runtime_conformance.routing import DEFAULT_RUNTIME, on_reach, route_predict, set_runtime

REACHED_PROPERTY = "reached_predict"
_MESSAGE_LIMIT = 2000


class TestTimeoutError(Exception):
    """A test ran longer than --modelbuild-test-timeout allows."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("modelbuild-conformance", "modelbuild conformance runs")
    group.addoption("--modelbuild-results", default=None, help="JSON-lines results file.")
    group.addoption("--modelbuild-select", default=None, help="File of node ids to run.")
    group.addoption("--modelbuild-collected", default=None, help="Write collected node ids here.")
    group.addoption(
        "--modelbuild-runtime", default=DEFAULT_RUNTIME,
        help=f"module:function that loads an MLModel for prediction (default {DEFAULT_RUNTIME}).",
    )
    group.addoption(
        "--modelbuild-test-timeout", type=float, default=0.0, help="Per-test call timeout (s)."
    )
    group.addoption(
        "--modelbuild-parent-pid", type=int, default=0, help="Die when the process with this id dies."
    )


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit now if it already has."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        return
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def pytest_configure(config: pytest.Config) -> None:
    parent_pid = config.getoption("--modelbuild-parent-pid")
    if parent_pid:
        die_with_parent(parent_pid)
    pretend_macos()
    set_runtime(config.getoption("--modelbuild-runtime"))
    route_predict()
    recorder = ConformanceRecorder(config)
    config.pluginmanager.register(recorder, "modelbuild-conformance-recorder")
    on_reach(recorder.mark_reached)


def _message_of(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # skip: (path, lineno, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(longrepr)
    return text[:_MESSAGE_LIMIT]


class ConformanceRecorder:
    """Tracks which test reached predict and writes one JSON line per finished test."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._timeout = float(config.getoption("--modelbuild-test-timeout") or 0.0)
        results = config.getoption("--modelbuild-results")
        self._results: IO[str] | None = open(results, "a", encoding="utf-8") if results else None
        self._current_item: pytest.Item | None = None
        self._reached = False
        self._phases: dict[str, pytest.TestReport] = {}

    # -- the flag set by the routed predict ---------------------------------------
    def mark_reached(self) -> None:
        if self._reached:
            return
        self._reached = True
        if self._current_item is not None:
            self._current_item.user_properties.append((REACHED_PROPERTY, "true"))
            self._write({"event": "reached", "nodeid": self._current_item.nodeid})

    # -- selection and collection -----------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        select = config.getoption("--modelbuild-select")
        if select:
            wanted = set(json.loads(Path(select).read_text(encoding="utf-8")))
            kept = [item for item in items if item.nodeid in wanted]
            dropped = [item for item in items if item.nodeid not in wanted]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
            items[:] = kept
        collected = config.getoption("--modelbuild-collected")
        if collected:
            Path(collected).write_text(json.dumps([item.nodeid for item in items]), "utf-8")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._write({"event": "collect_error", "nodeid": report.nodeid,
                         "message": _message_of(report)})

    # -- running ------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self._reached = False
        self._phases = {}
        self._write({"event": "start", "nodeid": nodeid})

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Any) -> Iterator[None]:
        self._current_item = item
        try:
            return (yield)
        finally:
            self._current_item = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        if self._timeout <= 0:
            return (yield)
        seconds = self._timeout

        def expire(signum: int, frame: Any) -> None:
            raise TestTimeoutError(f"The test ran longer than the {seconds:g} s per-test timeout.")

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return (yield)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._phases[report.when] = report
        if report.when == "teardown":
            self._write(self._result_record(report.nodeid))

    def _result_record(self, nodeid: str) -> dict:
        phases = self._phases
        outcome, message, duration = "passed", "", sum(r.duration for r in phases.values())
        setup, call, teardown = phases.get("setup"), phases.get("call"), phases.get("teardown")
        if setup is not None and setup.failed:
            outcome, message = "error", _message_of(setup)
        elif call is not None and call.failed:
            outcome, message = "failed", _message_of(call)
        elif any(r.skipped for r in phases.values()):
            skipped = next(r for r in phases.values() if r.skipped)
            if hasattr(skipped, "wasxfail"):
                outcome, message = "xfailed", str(skipped.wasxfail)
            else:
                outcome, message = "skipped", _message_of(skipped)
        elif call is not None and hasattr(call, "wasxfail"):
            outcome = "xpassed"
        if outcome in ("passed", "xpassed", "skipped", "xfailed") and teardown is not None and teardown.failed:
            outcome, message = "error", _message_of(teardown)
        return {"event": "result", "nodeid": nodeid, "outcome": outcome,
                "reached": self._reached, "message": message, "duration": round(duration, 4)}

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._results is not None:
            self._results.close()
            self._results = None

    def _write(self, record: dict) -> None:
        if self._results is None:
            return
        self._results.write(json.dumps(record) + "\n")
        self._results.flush()
