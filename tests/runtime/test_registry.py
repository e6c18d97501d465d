"""OpRegistry: kernels by name (NeuralNetwork) or by name and opset (ML Program)."""
from __future__ import annotations

import pytest

from modelbuild.runtime.mil.opsets import IOS15, IOS16, IOS17, IOS18, Opset
from modelbuild.runtime.registry import OpRegistry, UnsupportedOpError


def _versioned() -> OpRegistry:
    registry: OpRegistry = OpRegistry("ML Program", first=IOS15)
    registry.register("scatter")(lambda: "scatter iOS15")
    registry.register("scatter", since=IOS17)(lambda: "scatter iOS17")
    registry.register("resize", since=IOS17)(lambda: "resize iOS17")
    return registry


def test_a_kernel_serves_its_opset_and_later_ones_until_a_newer_registration():
    registry = _versioned()
    assert [registry.get("scatter", opset=o)() for o in (IOS15, IOS16, IOS17, IOS18, Opset(9))] == [
        "scatter iOS15", "scatter iOS15", "scatter iOS17", "scatter iOS17", "scatter iOS17"]
    assert registry.opsets("scatter") == [IOS15, IOS17]
    assert registry.available(IOS16) == ["scatter"] and registry.available(IOS17) == ["resize", "scatter"]
    assert list(registry) == ["resize", "scatter"] and len(registry) == 2 and "resize" in registry


def test_registration_order_does_not_matter():
    registry: OpRegistry = OpRegistry("ML Program", first=IOS15)
    registry.register("scatter", since=IOS17)(lambda: "new")
    assert registry.get("scatter", opset=IOS18)() == "new"  # resolved (and cached) before the old one exists
    registry.register("scatter")(lambda: "old")
    assert registry.get("scatter", opset=IOS16)() == "old" and registry.get("scatter", opset=IOS18)() == "new"


def test_an_op_before_its_first_opset_and_an_unknown_op_name_the_opset():
    registry = _versioned()
    with pytest.raises(UnsupportedOpError, match=r"^The ML Program op 'resize' \(in resize op 'y'\) is not available "
                       r"in opset CoreML6 \(iOS16\), the opset its program declares: Core ML defines it from opset "
                       r"CoreML7 \(iOS17\) on\.$"):
        registry.get("resize", where="resize op 'y'", opset=IOS16)
    with pytest.raises(UnsupportedOpError, match=r"^The reference runtime has no kernel for the ML Program op 'crop' "
                       r"at opset CoreML6 \(iOS16\)\. Supported: scatter\.$"):
        registry.get("crop", opset=IOS16)


def test_misuse_is_a_programming_error():
    registry = _versioned()
    with pytest.raises(ValueError, match="'scatter' is registered twice for opset CoreML7"):
        registry.register("scatter", since=IOS17)(lambda: None)
    with pytest.raises(ValueError, match="opsets start at CoreML5 \\(iOS15\\), not CoreML4"):
        registry.register("old", since=Opset(4))
    with pytest.raises(TypeError, match="registered per opset: get\\('scatter'\\) needs the opset"):
        registry.get("scatter")
    unversioned: OpRegistry = OpRegistry("NeuralNetwork")
    with pytest.raises(TypeError, match="NeuralNetwork ops have no opsets"):
        unversioned.register("convolution", since=IOS17)


def test_a_registry_without_opsets_looks_up_by_name():
    registry: OpRegistry = OpRegistry("NeuralNetwork")
    registry.register("convolution", "deconvolution")(lambda: "conv")
    assert registry.get("deconvolution")() == "conv" and registry.opsets("convolution") == [None]
    with pytest.raises(ValueError, match="NeuralNetwork op 'convolution' is registered twice \\("):
        registry.register("convolution")(lambda: None)
    with pytest.raises(UnsupportedOpError, match=r"no kernel for the NeuralNetwork op 'lstm' \(in lstm layer 'l'\)\. "
                       r"Supported: convolution, deconvolution\.$"):
        registry.get("lstm", where="lstm layer 'l'")
