"""What a programme report holds: the challenges and how their proposals were selected, the funded
projects and their results, each year's money counted from the events and from the ledger, and the
checks between the two."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from challenges.calls.models import Challenge
from challenges.funding.models import (
    Award,
    Programme,
)
from challenges.projects.models import Project, ProjectReport
from challenges.proposals.models import Proposal
from challenges.reports.models import ProgrammeLessons
from challenges.reports.periods import Period


@dataclass
class ChallengeLine:
    challenge: Challenge
    published_at: datetime
    in_period: bool
    proposals: int = 0  # submitted and not withdrawn by the end
    proposals_in_period: int = 0
    screened_out: int = 0
    awards: int = 0
    awarded_ore: int = 0


@dataclass
class CriterionScores:
    name: str
    weight: int
    counts: list[int]  # how many reviews gave 1, 2, … 7
    not_applicable: int

    @property
    def mean(self) -> float | None:
        total = sum(self.counts)
        return sum(score * n for score, n in enumerate(self.counts, 1)) / total if total else None


@dataclass
class ChallengeSelection:
    challenge: Challenge
    reviews_per_proposal: list[int]  # per eligible proposal: the reviews submitted by the end
    recusals: int
    criteria: list[CriterionScores]
    eligible: int
    screened_out: list[tuple[Proposal, str]]


@dataclass
class FundedProject:
    award: Award
    project: Project | None
    booked_at: datetime
    awarded_ore: int  # as booked, less reductions and cancellations by the end
    paid_ore: int
    paid_in_period_ore: int
    status: str  # running, completed, cancelled

    @property
    def title(self) -> str:
        return self.project.title if self.project is not None else self.award.proposal.title


@dataclass
class ResultLine:
    funded: FundedProject
    report: ProjectReport  # the latest approved report by the end
    in_period: bool


@dataclass
class YearMoney:
    year: int | None  # None: the whole programme
    allocation: int = 0
    awarded: int = 0  # net of reductions and cancellations
    paid: int = 0
    committed: int = 0  # awarded and not yet paid
    admin_spent: int = 0
    admin_cap: int = 0
    returned: int = 0
    available: int = 0
    admin_left: int = 0
    awarded_in_period: int = 0
    paid_in_period: int = 0
    admin_in_period: int = 0
    returned_in_period: int = 0

    @property
    def admin_share(self) -> float | None:
        return self.admin_spent / self.allocation if self.allocation else None

    def add(self, other: YearMoney) -> None:
        for name in self.__dataclass_fields__:
            if name != "year":
                setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Check:
    label: str
    from_events: int
    from_ledger: int

    @property
    def agrees(self) -> bool:
        return self.from_events == self.from_ledger


@dataclass
class ProgrammeReport:
    programme: Programme
    period: Period
    made_at: datetime
    challenges: list[ChallengeLine]
    owners: list[str]
    smes: list[str]
    smes_in_period: int
    selections: list[ChallengeSelection]
    conflicts_declared: int
    conflicts_in_period: int
    funded: list[FundedProject]
    results: list[ResultLine]
    years: list[YearMoney]
    total: YearMoney
    checks: list[Check]
    timeline: list[tuple[date, int, int, int]]  # month ends: awarded, paid, administration
    lessons: ProgrammeLessons | None
    reviews_submitted: int = 0

    @property
    def proposals(self) -> int:
        return sum(c.proposals for c in self.challenges)

    @property
    def screened_out_total(self) -> int:
        return sum(len(s.screened_out) for s in self.selections)

    @property
    def proposals_in_period(self) -> int:
        return sum(c.proposals_in_period for c in self.challenges)

    @property
    def reconciled(self) -> bool:
        return all(check.agrees for check in self.checks)

    def funding_by(self, key: str) -> list[tuple[str, int]]:
        """Net funding per priority area or per theme (a project counts under each of its themes)."""
        sums: dict[str, int] = defaultdict(int)
        for f in self.funded:
            challenge = f.award.proposal.challenge
            topics = [challenge.area] if key == "area" else challenge.themes
            for topic in topics:
                sums[topic.label] += f.awarded_ore
        return sorted(sums.items(), key=lambda item: (-item[1], item[0]))

    @property
    def result_totals(self) -> dict[str, Any]:
        reports = [r.report for r in self.results]
        trls = [r.trl for r in reports if r.trl is not None]
        return {
            "projects_reporting": len(reports),
            "trl_median": statistics.median(trls) if trls else None,
            "pilots_with_owner": sum(1 for r in reports if r.pilot_with_owner),
            "follow_on_with_owner": sum(1 for r in reports if r.follow_on_with_owner),
            "other_customers": sum(r.other_customers or 0 for r in reports),
            "private_cofunding_ore": sum(r.private_cofunding_ore or 0 for r in reports),
            "jobs_created": sum(r.jobs_created or 0 for r in reports),
        }
