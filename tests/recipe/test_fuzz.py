"""A seeded sample of the recipe fuzzer (benchmarks/fuzz_recipes.py runs any number of cases)."""
from __future__ import annotations

import fuzz_recipes


def test_a_thousand_mutated_recipes_cost_one_clean_line_each():
    outcomes = fuzz_recipes.fuzz(cases=1000, seed=20261203, limit=2.0)
    problems = {outcome: outcomes.get(outcome, [])[:3] for outcome in fuzz_recipes.PROBLEMS}
    assert not any(problems.values()), problems
    assert len(outcomes["loaded"]) > 50 and len(outcomes["refused"]) > 500  # the mutations reach both sides
