"""doit's console output for modelbuild: private stage tasks are shown under their public names.

The artifact stages run as private tasks (`_onnx:r`, `_coreml:r.<v>`, see modelbuild.tasks);
doit would print nothing for them. This reporter prints them as `onnx:r` and `coreml:r.<v>`, and
hides the public tasks (which only check the stage's verdict) unless they fail.
"""
from __future__ import annotations

from pathlib import Path

from doit.reporter import ConsoleReporter

from modelbuild.build_lock import BuildLock

VERDICT = "modelbuild_verdict"  # the meta key marking a public stage task (a verdict)
STAGES = ("_onnx:", "_coreml:")


class StageReporter(ConsoleReporter):
    """doit's console output, with the private stage tasks shown under their public names. It also holds
    the project's build lock (`modelbuild.build_lock`) from before the first task until the run ends."""

    def initialize(self, tasks, selected_tasks):
        self.lock = BuildLock(Path.cwd())
        self.lock.acquire(write=lambda line: self.write(line + "\n"))

    def complete_run(self):
        super().complete_run()
        if getattr(self, "lock", None) is not None:
            self.lock.release()

    def execute_task(self, task):
        if _shown_as(task) is not None:
            self.write(f".  {_shown_as(task)}\n")
        elif not _is_verdict(task):
            super().execute_task(task)

    def skip_uptodate(self, task):
        if _shown_as(task) is not None:
            self.write(f"-- {_shown_as(task)}\n")
        elif not _is_verdict(task):
            super().skip_uptodate(task)


def _is_verdict(task) -> bool:
    return bool(task.meta) and task.meta.get(VERDICT, False)


def _shown_as(task) -> str | None:
    """The public name of a private stage task (`_onnx:r` -> `onnx:r`), else None."""
    return task.name[1:] if task.name.startswith(STAGES) else None
