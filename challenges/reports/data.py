"""The report and the funded projects as data: JSON-ready rows (amounts in öre, dates as ISO text)
and the columns of each CSV table."""

from __future__ import annotations

from flask import Blueprint

from challenges.core.formatting import local_day
from challenges.reports.contents import ChallengeSelection, FundedProject, ProgrammeReport

bp = Blueprint("reports", __name__)


def _funded_row(f: FundedProject) -> dict:
    """A project as the programme report exports it: the open-data row and what was paid in the period."""
    return project_row(f) | {"paid_in_period_ore": f.paid_in_period_ore}


def project_row(f: FundedProject) -> dict:
    challenge = f.award.proposal.challenge
    return {
        "title": f.title,
        "sme": f.award.proposal.organisation.name,
        "challenge": challenge.title,
        "challenge_owner": challenge.organisation.name,
        "programme_year": f.award.programme_year.year,
        "amount_ore": f.awarded_ore,
        "paid_ore": f.paid_ore,
        "status": f.status,
        "awarded_on": local_day(f.booked_at).isoformat(),
    }


PROJECT_COLUMNS = (
    "title",
    "sme",
    "challenge",
    "challenge_owner",
    "programme_year",
    "amount_ore",
    "paid_ore",
    "status",
    "awarded_on",
)


def _money_row(m) -> dict:
    return {
        "year": m.year,
        "allocation_ore": m.allocation,
        "awarded_ore": m.awarded,
        "paid_ore": m.paid,
        "committed_ore": m.committed,
        "admin_spent_ore": m.admin_spent,
        "admin_cap_ore": m.admin_cap,
        "admin_share": round(m.admin_share, 6) if m.admin_share is not None else None,
        "returned_ore": m.returned,
        "available_ore": m.available,
        "admin_left_ore": m.admin_left,
        "awarded_in_period_ore": m.awarded_in_period,
        "paid_in_period_ore": m.paid_in_period,
        "admin_in_period_ore": m.admin_in_period,
        "returned_in_period_ore": m.returned_in_period,
    }


def _challenge_row(c) -> dict:
    return {
        "challenge": c.challenge.title,
        "owner": c.challenge.organisation.name,
        "area": c.challenge.area.label,
        "themes": [t.label for t in c.challenge.themes],
        "published_on": local_day(c.published_at).isoformat(),
        "published_in_period": c.in_period,
        "proposals": c.proposals,
        "proposals_in_period": c.proposals_in_period,
        "screened_out": c.screened_out,
        "awards": c.awards,
        "awarded_ore": c.awarded_ore,
    }


def _result_row(r) -> dict:
    report = r.report
    return {
        "project": r.funded.title,
        "sme": r.funded.award.proposal.organisation.name,
        "report": report.kind.value,
        "approved_in_period": r.in_period,
        "trl": report.trl,
        "pilot_with_owner": report.pilot_with_owner,
        "follow_on_with_owner": report.follow_on_with_owner,
        "other_customers": report.other_customers,
        "private_cofunding_ore": report.private_cofunding_ore,
        "jobs_created": report.jobs_created,
        "milestones_reached": len(report.milestones_reached or []),
    }


def _selection_rows(found: ProgrammeReport) -> list[dict]:
    return [
        {
            "challenge": s.challenge.title,
            "criterion": c.name,
            "weight": c.weight,
            **{f"score_{n}": count for n, count in enumerate(c.counts, 1)},
            "not_applicable": c.not_applicable,
            "mean": round(c.mean, 4) if c.mean is not None else None,
        }
        for s in found.selections
        for c in s.criteria
    ]


def report_data(found: ProgrammeReport) -> dict:
    """The whole report as JSON-ready data: amounts in öre (integers), dates as ISO text."""
    period = found.period
    return {
        "programme": found.programme.name,
        "start": period.start.isoformat(),
        "as_of": period.end.isoformat(),
        "made_at": found.made_at.isoformat(),
        "challenges": {
            "published": len(found.challenges),
            "published_in_period": sum(1 for c in found.challenges if c.in_period),
            "owners": found.owners,
            "applicant_smes": found.smes,
            "applicant_smes_in_period": found.smes_in_period,
            "proposals": found.proposals,
            "proposals_in_period": found.proposals_in_period,
            "per_challenge": [_challenge_row(c) for c in found.challenges],
        },
        "selection": {
            "reviews_submitted": found.reviews_submitted,
            "conflicts_declared": found.conflicts_declared,
            "conflicts_declared_in_period": found.conflicts_in_period,
            "screened_out": found.screened_out_total,
            "per_challenge": [_selection_row(s) for s in found.selections],
        },
        "funded_projects": [_funded_row(f) for f in found.funded],
        "results": {"totals": found.result_totals, "per_project": [_result_row(r) for r in found.results]},
        "money": {"total": _money_row(found.total), "years": [_money_row(m) for m in found.years]},
        "reconciliation": [
            {
                "check": c.label,
                "from_events_ore": c.from_events,
                "from_ledger_ore": c.from_ledger,
                "agrees": c.agrees,
            }
            for c in found.checks
        ],
        "lessons": found.lessons.text if found.lessons else None,
    }


def _selection_row(s: ChallengeSelection) -> dict:
    """How one challenge's proposals were selected: reviews, recusals, who was screened out and why,
    and the spread of the scores per criterion."""
    return {
        "challenge": s.challenge.title,
        "reviews_per_proposal": s.reviews_per_proposal,
        "recusals": s.recusals,
        "eligible": s.eligible,
        "screened_out": [
            {"proposal": p.title, "sme": p.organisation.name, "reason": reason}
            for p, reason in s.screened_out
        ],
        "criteria": [
            {
                "name": c.name,
                "weight": c.weight,
                "scores": dict(enumerate(c.counts, 1)),
                "not_applicable": c.not_applicable,
            }
            for c in s.criteria
        ],
    }


def _table(columns: tuple[str, ...], rows: list[dict]) -> tuple[tuple[str, ...], list[list]]:
    return columns, [
        [", ".join(v) if isinstance(v, list) else v for v in (row[c] for c in columns)] for row in rows
    ]


CHALLENGE_COLUMNS = (
    "challenge",
    "owner",
    "area",
    "themes",
    "published_on",
    "published_in_period",
    "proposals",
    "proposals_in_period",
    "screened_out",
    "awards",
    "awarded_ore",
)
SCORE_COLUMNS = (
    "challenge",
    "criterion",
    "weight",
    *(f"score_{n}" for n in range(1, 8)),
    "not_applicable",
    "mean",
)
RESULT_COLUMNS = (
    "project",
    "sme",
    "report",
    "approved_in_period",
    "trl",
    "pilot_with_owner",
    "follow_on_with_owner",
    "other_customers",
    "private_cofunding_ore",
    "jobs_created",
    "milestones_reached",
)
MONEY_COLUMNS = (
    "year",
    "allocation_ore",
    "awarded_ore",
    "paid_ore",
    "committed_ore",
    "admin_spent_ore",
    "admin_cap_ore",
    "admin_share",
    "returned_ore",
    "available_ore",
    "admin_left_ore",
    "awarded_in_period_ore",
    "paid_in_period_ore",
    "admin_in_period_ore",
    "returned_in_period_ore",
)

TABLES = {
    "challenges": lambda r: _table(CHALLENGE_COLUMNS, [_challenge_row(c) for c in r.challenges]),
    "scores": lambda r: _table(SCORE_COLUMNS, _selection_rows(r)),
    "projects": lambda r: _table(
        (*PROJECT_COLUMNS, "paid_in_period_ore"), [_funded_row(f) for f in r.funded]
    ),
    "results": lambda r: _table(RESULT_COLUMNS, [_result_row(x) for x in r.results]),
    "money": lambda r: _table(MONEY_COLUMNS, [_money_row(m) for m in [*r.years, r.total]]),
}
