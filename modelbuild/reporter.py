"""doit's console output for modelbuild: private stage tasks are shown under their public names.

The artifact stages run as private tasks (`_onnx:r`, `_coreml:r.<v>`, see modelbuild.tasks);
doit would print nothing for them. This reporter prints them as `onnx:r` and `coreml:r.<v>`,
hides the verdict tasks when they pass, and names a failed verdict after its public task.
"""
from __future__ import annotations

from pathlib import Path

from doit.reporter import ConsoleReporter

from modelbuild.build_lock import BuildLock

VERDICT = "_verdict"
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
        elif not task.name.startswith(VERDICT):
            super().execute_task(task)

    def skip_uptodate(self, task):
        if _shown_as(task) is not None:
            self.write(f"-- {_shown_as(task)}\n")
        elif not task.name.startswith(VERDICT):
            super().skip_uptodate(task)

    def _write_failure(self, result, write_exception=True):
        """A failed verdict shows as its public task (`coreml:r.v`) with the stage's error."""
        name = result["task"].name
        if name.startswith(VERDICT):
            recipe, stage, *variant = name.split(":", 1)[1].split(".")
            name = f"{stage}:{'.'.join([recipe, *variant])}"
        self.write(f"{result['exception'].get_name()} - {name}\n")
        if write_exception:
            self.write(result["exception"].get_msg() + "\n")


def _shown_as(task) -> str | None:
    """The public name of a private stage task (`_onnx:r` -> `onnx:r`), else None."""
    return task.name[1:] if task.name.startswith(STAGES) else None
