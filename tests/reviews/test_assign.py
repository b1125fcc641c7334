"""The assigner as a property: N per proposal, never a conflict, within the maximum, balanced."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from challenges.reviews.assign import Infeasible, Problem, plan


@st.composite
def problems(draw, conflicts: bool = True):
    proposals = list(range(draw(st.integers(1, 8))))
    evaluators = [f"e{i}" for i in range(draw(st.integers(1, 8)))]
    n = draw(st.integers(1, 4))
    cap = draw(st.integers(1, 10))
    pairs = [(p, e) for p in proposals for e in evaluators]
    blocked = set(draw(st.sets(st.sampled_from(pairs)))) if conflicts and pairs else set()
    load = {e: draw(st.integers(0, 2)) for e in evaluators} if conflicts else {}
    return Problem(
        demand={p: n for p in proposals},
        evaluators=evaluators,
        allowed=frozenset(set(pairs) - blocked),
        load=load,
        cap=max(cap, max(load.values(), default=0)),
    )


def _check(problem: Problem, result: dict) -> dict:
    final = dict.fromkeys(problem.evaluators, 0)
    for e, n in problem.load.items():
        final[e] += n
    for p, need in problem.demand.items():
        chosen = result.get(p, [])
        assert len(chosen) == need and len(set(chosen)) == need  # N distinct evaluators
        for e in chosen:
            assert (p, e) in problem.allowed  # never a conflict
            final[e] += 1
    assert all(n <= problem.cap for n in final.values())  # never above the maximum
    return final


@settings(max_examples=400, deadline=None)
@given(problems())
def test_every_plan_is_valid_and_every_refusal_is_real(problem):
    try:
        result = plan(problem)
    except Infeasible as exc:
        assert exc.reasons
        kind, facts = exc.reasons[0]
        if kind == "too_few":
            p = facts["proposal"]
            room = [
                e
                for e in problem.evaluators
                if (p, e) in problem.allowed and problem.load.get(e, 0) < problem.cap
            ]
            assert len(room) == facts["available"] < problem.demand[p]
        else:
            assert facts["possible"] < facts["needed"]
            if len(problem.demand) * len(problem.evaluators) <= 9:
                assert not _brute_force_feasible(problem)
        return
    _check(problem, result)


@settings(max_examples=300, deadline=None)
@given(problems(conflicts=False))
def test_without_conflicts_loads_are_within_one(problem):
    try:
        result = plan(problem)
    except Infeasible:
        assert len(problem.evaluators) < max(problem.demand.values()) or sum(
            problem.demand.values()
        ) > problem.cap * len(problem.evaluators)
        return
    final = _check(problem, result)
    assert max(final.values()) - min(final.values()) <= 1


def _brute_force_feasible(problem: Problem) -> bool:
    options = []
    for p, need in problem.demand.items():
        allowed = [e for e in problem.evaluators if (p, e) in problem.allowed]
        options.append([(p, combo) for combo in itertools.combinations(allowed, need)])
    for choice in itertools.product(*options):
        load = {e: problem.load.get(e, 0) for e in problem.evaluators}
        for _p, combo in choice:
            for e in combo:
                load[e] += 1
        if all(n <= problem.cap for n in load.values()):
            return True
    return False


def test_a_clear_reason_when_too_few_evaluators_are_free_of_conflicts():
    problem = Problem(
        demand={"A": 3, "B": 3},
        evaluators=["x", "y", "z"],
        allowed=frozenset({("A", "x"), ("A", "y"), ("A", "z"), ("B", "x")}),
        load={},
        cap=5,
    )
    with pytest.raises(Infeasible) as caught:
        plan(problem)
    assert caught.value.reasons == [("too_few", {"proposal": "B", "needed": 3, "available": 1})]


def test_the_maximum_per_evaluator_can_make_it_infeasible():
    problem = Problem(
        demand={p: 2 for p in "ABCD"},
        evaluators=["x", "y", "z"],
        allowed=frozenset((p, e) for p in "ABCD" for e in "xyz"),
        load={},
        cap=2,
    )
    with pytest.raises(Infeasible) as caught:
        plan(problem)
    assert caught.value.reasons[0][0] == "capacity" and caught.value.reasons[0][1]["needed"] == 8
