"""Where a conversion was when it failed: the torch op, MIL pass or MIL op in flight.

coremltools walks three loops through a tqdm progress bar: the torch frontend's nodes
(`frontend.torch.ops.convert_nodes`), the MIL pass pipeline (`PassPipelineManager`) and the
NeuralNetwork backend's ops (`backend.nn.op_mapping.convert_ops`). `tracking_sites()` replaces
those progress bars (as `modelbuild.coreml.quiet` does, without drawing anything) with a
generator that records the item being handled. A loop that runs to its end pops its item; one
left by an exception keeps it, so after a failure `Sites.innermost()` is what was being converted.
The torch nodes seen are kept too (`Sites.torch_nodes`), so that a later pass's failure can be
traced back to the torch op that produced the MIL op it could not handle.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from modelbuild.coreml.quiet import patched

# (module, attribute, kind of item): every tqdm coremltools' conversion loops call
_LOOPS = (
    ("coremltools.converters.mil.frontend.torch.ops", "_tqdm", "torch op"),
    ("coremltools.converters.mil.mil.passes.pass_pipeline", "tqdm", "MIL pass"),
    ("coremltools.converters.mil.backend.nn.op_mapping", "_tqdm", "MIL op"),
)


@dataclass(frozen=True)
class Site:
    """One thing a converter was handling: a torch op, a MIL pass, a MIL op or an ONNX node.

    `kind` is the op type (torch node kind, MIL op type, ONNX op type) or the pass name; `name`
    the node / op name; `scope` the torch module path; `item` the converter's own object
    (a MIL Operation for MIL ops, so its attributes can be read).
    """

    stage: str
    kind: str
    name: str = ""
    scope: str = ""
    item: Any = None

    def describe(self) -> str:
        """E.g. "torch op 'new_ones' at 'm/bert/result.1'", "MIL op resize_bilinear 'y'",
        "ONNX node '/Gather_1' (Gather)"."""
        if self.stage == "MIL pass":
            return f"MIL pass {self.kind}"
        if self.stage == "torch.jit.trace":
            return "torch.jit.trace"
        if self.stage == "ONNX node":
            return f"ONNX node {self.name!r} ({self.kind})"
        if self.stage == "torch op":
            return f"torch op {self.kind!r}" + (f" at {self.scope!r}" if self.scope else "")
        return f"{self.stage} {self.kind} {self.name!r}" if self.name else f"{self.stage} {self.kind}"


@dataclass
class Sites:
    """The stack of items in flight and the torch nodes converted so far."""

    stack: list[Site] = field(default_factory=list)
    torch_nodes: list[Site] = field(default_factory=list)

    def innermost(self) -> Site | None:
        return self.stack[-1] if self.stack else None

    def track(self, stage: str, iterable: Iterable | None) -> Iterator:
        """Yield the items of `iterable`, keeping the current one on the stack until the loop is exhausted.

        A loop left early keeps its item: CPython closes the generator the same way whether the
        loop broke or an exception left it, so the item stays until a loop of another stage starts
        (the stages never nest: torch ops, then passes, then backend ops).
        """
        self.stack[:] = [site for site in self.stack if site.stage == stage]
        current: Site | None = None
        for item in iterable if iterable is not None else ():
            if current is not None:
                self._pop(current)
            current = _site(stage, item)
            self.stack.append(current)
            if stage == "torch op":
                self.torch_nodes.append(current)
            yield item
        if current is not None:
            self._pop(current)

    def _pop(self, site: Site) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index] is site:
                del self.stack[index]
                return


def _site(stage: str, item: Any) -> Site:
    if stage == "torch op":
        try:
            scope = "/".join(item.get_scope_info()[0])
        except Exception:  # a node without scope information
            scope = ""
        return Site(stage, str(getattr(item, "kind", item)), str(getattr(item, "name", "")), scope)
    if stage == "MIL op":
        return Site(stage, str(getattr(item, "op_type", item)), str(getattr(item, "name", "")), item=item)
    return Site(stage, str(item))


@contextlib.contextmanager
def tracking_sites() -> Iterator[Sites]:
    """Record what coremltools' conversion loops are handling, for as long as the block runs (no progress bars)."""
    sites = Sites()
    with contextlib.ExitStack() as stack:
        for module_name, attribute, stage in _LOOPS:
            stack.enter_context(patched(module_name, attribute, _tracker(sites, stage)))
        yield sites


def _tracker(sites: Sites, stage: str):
    def progress(iterable: Iterable | None = None, *args, **kwargs) -> Iterator:
        return sites.track(stage, iterable)
    return progress




def site_of_error(error: BaseException, sites: Sites) -> Site | None:
    """Where `error` happened: the ONNX node onnx2coreml names, the trace, or the innermost tracked item."""
    kind = type(error).__name__
    if kind == "ConversionError" and hasattr(error, "node_name"):
        return Site("ONNX node", str(getattr(error, "op_key", "")), str(error.node_name))
    if kind == "UnsupportedOpError" and getattr(error, "missing", None):
        op_key, nodes = sorted(error.missing.items())[0]
        return Site("ONNX node", str(op_key), str(nodes[0]) if nodes else "")
    if kind == "TraceFailure":
        return Site("torch.jit.trace", "trace")
    return sites.innermost()
