"""concat of rank-0 values makes a vector, as coremltools' type inference says (the torch frontend emits it
for shapes computed from sizes, e.g. FFDNet with odd-size padding under flexible shapes)."""
from __future__ import annotations

import numpy as np
import pytest

from modelbuild.runtime.mil.testing import mb, run_mil


@pytest.mark.ops("concat")
def test_concat_of_scalars_is_a_vector():
    x = np.zeros((3, 5), np.float32)
    joined = run_mil(
        lambda x: (mb.concat(values=[mb.gather(x=mb.shape(x=x), indices=1, axis=0),
                                     mb.gather(x=mb.shape(x=x), indices=0, axis=0)], axis=0)),
        {"x": x},
    )
    np.testing.assert_array_equal(joined, [5, 3])
