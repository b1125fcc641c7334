"""The assigner: N evaluators per proposal, no conflicts, a maximum per evaluator, balanced load.

Pure functions on ids, so that a property test can run thousands of cases. The plan is a
maximum flow (proposals → allowed evaluators) under the lowest common load ceiling that
lets every proposal have its evaluators, then evened out by moving single reviews from
the busiest evaluator to the idlest one allowed to take them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class Infeasible(Exception):
    """No valid assignment exists; *reasons* say why, in terms people can act on."""

    def __init__(self, reasons: list[tuple[str, dict]]) -> None:
        super().__init__("; ".join(r for r, _ in reasons))
        self.reasons = reasons  # (kind, facts): "too_few" {proposal, needed, available} or "capacity" {...}


@dataclass(frozen=True)
class Problem:
    demand: Mapping[Any, int]  # proposal -> how many more evaluators it needs
    evaluators: Sequence[Any]
    allowed: frozenset[tuple[Any, Any]]  # (proposal, evaluator) pairs with no conflict, not yet assigned
    load: Mapping[Any, int]  # evaluator -> reviews they already have
    cap: int  # the most reviews any evaluator may have


def plan(problem: Problem) -> dict[Any, list[Any]]:
    """New (proposal -> evaluators) for every proposal with demand, or Infeasible."""
    demand = {p: n for p, n in problem.demand.items() if n > 0}
    if not demand:
        return {}
    load = {e: problem.load.get(e, 0) for e in problem.evaluators}
    too_few = []
    for p, n in sorted(demand.items(), key=lambda item: str(item[0])):
        available = sum(1 for e in problem.evaluators if (p, e) in problem.allowed and load[e] < problem.cap)
        if available < n:
            too_few.append(("too_few", {"proposal": p, "needed": n, "available": available}))
    if too_few:
        raise Infeasible(too_few)
    total = sum(demand.values())
    # The ceiling of the mean load (a load above the maximum, from a hand assignment or a lowered
    # maximum, counts as the maximum: that evaluator simply takes nothing more).
    floor = -(-(sum(min(n, problem.cap) for n in load.values()) + total) // max(1, len(load)))
    best: dict[Any, list[Any]] | None = None
    for ceiling in range(max(1, min(floor, problem.cap)), problem.cap + 1):
        flowed, result = _max_flow(
            demand,
            problem.evaluators,
            problem.allowed,
            {e: max(0, ceiling - load[e]) for e in problem.evaluators},
        )
        if flowed == total:
            best = result
            break
    if best is None:
        flowed, _result = _max_flow(
            demand,
            problem.evaluators,
            problem.allowed,
            {e: max(0, problem.cap - load[e]) for e in problem.evaluators},
        )
        raise Infeasible([("capacity", {"needed": total, "possible": flowed, "cap": problem.cap})])
    _even_out(best, problem, load)
    return {p: sorted(es, key=str) for p, es in best.items()}


def _max_flow(demand: dict, evaluators: Sequence, allowed: Iterable, room: dict) -> tuple[int, dict]:
    """Augmenting paths in the bipartite graph; returns (flow, proposal -> evaluators)."""
    by_proposal: dict = {p: [e for e in evaluators if (p, e) in allowed] for p in demand}
    taken: dict = {p: set() for p in demand}  # proposal -> evaluators
    holding: dict = {e: set() for e in evaluators}  # evaluator -> proposals
    flow = 0
    for p in sorted(demand, key=str):
        for _ in range(demand[p]):
            if not _augment(p, by_proposal, taken, holding, room):
                break
            flow += 1
    return flow, {p: list(es) for p, es in taken.items()}


def _augment(start, by_proposal, taken, holding, room) -> bool:
    """One more evaluator for *start*, reshuffling others along a path if need be (BFS)."""
    parent: dict = {("p", start): None}
    queue = deque([("p", start)])
    while queue:
        kind, node = queue.popleft()
        if kind == "p":
            for e in by_proposal[node]:
                if e in taken[node] or ("e", e) in parent:
                    continue
                parent[("e", e)] = ("p", node)
                if len(holding[e]) < room[e]:
                    _apply_path(("e", e), parent, taken, holding)
                    return True
                queue.append(("e", e))
        else:  # an evaluator at its ceiling: one of its proposals could move elsewhere
            for p in holding[node]:
                if ("p", p) not in parent:
                    parent[("p", p)] = ("e", node)
                    queue.append(("p", p))
    return False


def _apply_path(end, parent, taken, holding) -> None:
    node = end
    while parent[node] is not None:
        prev = parent[node]
        if node[0] == "e":  # prev proposal takes this evaluator
            taken[prev[1]].add(node[1])
            holding[node[1]].add(prev[1])
        else:  # proposal node hands its evaluator prev to the path
            taken[node[1]].discard(prev[1])
            holding[prev[1]].discard(node[1])
        node = prev


def _even_out(result: dict, problem: Problem, load: dict) -> None:
    final = {e: load[e] for e in problem.evaluators}
    holding: dict = {e: [] for e in problem.evaluators}
    for p, es in result.items():
        for e in es:
            final[e] += 1
            holding[e].append(p)
    moved = True
    while moved:
        moved = False
        for busy in sorted(problem.evaluators, key=lambda e: -final[e]):
            for idle in sorted(problem.evaluators, key=lambda e: final[e]):
                if final[busy] - final[idle] < 2 or final[idle] >= problem.cap:
                    continue
                p = next(
                    (p for p in holding[busy] if (p, idle) in problem.allowed and idle not in result[p]), None
                )
                if p is None:
                    continue
                result[p].remove(busy)
                result[p].append(idle)
                holding[busy].remove(p)
                holding[idle].append(p)
                final[busy] -= 1
                final[idle] += 1
                moved = True
                break
            if moved:
                break
