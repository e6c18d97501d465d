"""ML Program opsets: the `opset` a MIL function declares ("CoreML7") and the iOS release it came with.

coremltools writes each function's opset from the model's specification
version (`coremltools._OPSET`): CoreML5 is iOS15, the first with ML Programs,
up to CoreML8 (iOS18) and CoreML9 (iOS26). Kernels register `since` one of
these (see `kernel.py`); later opsets than this runtime knows parse too and
get the newest kernels, as coremltools' registry gives them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_RELEASES = {5: "iOS15", 6: "iOS16", 7: "iOS17", 8: "iOS18", 9: "iOS26"}
_SPELLING = re.compile(r"CoreML(\d+)")


@dataclass(frozen=True, order=True)
class Opset:
    """An ML Program opset, ordered by its number (the N of "CoreML<N>")."""

    number: int

    @classmethod
    def parse(cls, text: str) -> Opset:
        """The opset a function's `opset` field names; ValueError for anything but "CoreML<N>"."""
        match = _SPELLING.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is not an ML Program opset; they are spelled CoreML<N>, e.g. CoreML7.")
        return cls(int(match.group(1)))

    @property
    def name(self) -> str:
        return f"CoreML{self.number}"

    def __str__(self) -> str:
        """`CoreML7 (iOS17)`, or the bare name for an opset without a known release."""
        release = _RELEASES.get(self.number)
        return f"{self.name} ({release})" if release else self.name


IOS15, IOS16, IOS17, IOS18 = Opset(5), Opset(6), Opset(7), Opset(8)
