"""A proposal's versions: the snapshot kept at each submission, whether the working copy differs from
the last one submitted (for one proposal or many in one statement), and the differences between two
versions, field by field."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from challenges.accounts.models import User
from challenges.core.formatting import sek
from challenges.extensions import db
from challenges.proposals.models import (
    BUDGET_LABELS,
    PARTNER_LABELS,
    BudgetLine,
    PartnerKind,
    Proposal,
    ProposalAttachment,
    ProposalStatus,
    ProposalVersion,
    proposal_member,
)


def _written(proposal: Proposal) -> dict[str, Any]:
    """What the applicant writes in the proposal's own fields."""
    return {
        "title": proposal.title,
        "summary": proposal.summary,
        "solution": proposal.solution,
        "fit": proposal.fit,
        "milestones": [dict(m) for m in proposal.milestones],
        "requested_ore": proposal.requested_ore,
        "budget": {line.value: ore for line, ore in proposal.budget().items()},
        "partners": [dict(p) for p in proposal.partners],
    }


def _person(user_id: int, name: str, email: str) -> dict[str, Any]:
    return {"id": user_id, "name": name, "email": email}


def _file(attachment_id: int, filename: str, size: int, sha256: str) -> dict[str, Any]:
    return {"id": attachment_id, "filename": filename, "size": size, "sha256": sha256}


def snapshot(proposal: Proposal) -> dict[str, Any]:
    """Everything the applicant sends, as plain data: what a version keeps and the pages show."""
    org = proposal.organisation
    return {
        **_written(proposal),
        "team": [_person(u.id, u.name, u.email) for u in proposal.team],
        "attachments": [_file(a.id, a.filename, a.size, a.sha256) for a in proposal.current_attachments],
        "agreement_accepted": proposal.agreement_accepted_at is not None,
        "organisation": {
            "name": org.name,
            "org_number": org.org_number,
            "staff": org.staff_headcount,
            "turnover_ore": org.annual_turnover_ore,
            "balance_ore": org.balance_sheet_total_ore,
            "eur_rate_ore": proposal.challenge.programme_year.programme.eur_rate_ore,
        },
    }


_COMPARED = (
    "title",
    "summary",
    "solution",
    "fit",
    "milestones",
    "requested_ore",
    "budget",
    "team",
    "partners",
    "attachments",
)


def _differs(now: dict[str, Any], submitted: dict[str, Any]) -> bool:
    """Whether the applicant changed what they send. The team is a set of people: a version keeps it in
    the order the proposal held it then, which a later reading may not repeat."""

    def by_id(team: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        return sorted(team or [], key=lambda person: person["id"])

    return by_id(now["team"]) != by_id(submitted.get("team")) or any(
        now[k] != submitted.get(k) for k in _COMPARED if k != "team"
    )


def has_unsubmitted_changes(proposal: Proposal) -> bool:
    latest = proposal.latest_version
    return latest is None or _differs(snapshot(proposal), latest.content)


@functools.cache
def _unsubmitted_query() -> sa.Select:
    """(part, proposal, id, two texts, a size, content) for the team members, current files and latest
    versions of the proposals given as ``ids``, in one statement (built once)."""
    ids: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)
    text, number, data = (
        sa.cast(sa.null(), sa.String),
        sa.cast(sa.null(), sa.Integer),
        sa.cast(sa.null(), sa.JSON),
    )
    team = (
        sa.select(
            sa.literal(0).label("part"),
            proposal_member.c.proposal_id.label("proposal_id"),
            User.id.label("id"),
            User.name.label("first"),
            User.email.label("second"),
            number.label("size"),
            data.label("content"),
        )
        .join(User, User.id == proposal_member.c.user_id)
        .where(proposal_member.c.proposal_id.in_(ids))
    )
    files = sa.select(
        sa.literal(1),
        ProposalAttachment.proposal_id,
        ProposalAttachment.id,
        ProposalAttachment.filename,
        ProposalAttachment.sha256,
        ProposalAttachment.size,
        data,
    ).where(ProposalAttachment.proposal_id.in_(ids), ProposalAttachment.removed_at.is_(None))
    latest = (
        sa.select(
            sa.literal(2),
            ProposalVersion.proposal_id,
            ProposalVersion.number,
            text,
            text,
            number,
            ProposalVersion.content,
        )
        .join(
            Proposal,
            sa.and_(Proposal.id == ProposalVersion.proposal_id, Proposal.version == ProposalVersion.number),
        )
        .where(Proposal.id.in_(ids))
    )
    union = sa.union_all(team, files, latest).subquery()
    return sa.select(union).order_by(union.c.part, union.c.proposal_id, union.c.id)


def unsubmitted_changes(proposals: Iterable[Proposal]) -> set[int]:
    """The ids of the submitted *proposals* changed since their latest version (as
    :func:`has_unsubmitted_changes` says of one), in one statement for them all: their teams' names
    and addresses, their current files and their latest versions, not whole people, files and every
    version."""
    submitted = {p.id: p for p in proposals if p.status is ProposalStatus.submitted}
    if not submitted:
        return set()
    ids = list(submitted)
    rows = db.session.execute(_unsubmitted_query(), {"ids": ids})
    people: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    kept: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    versions: dict[int, dict[str, Any]] = {}
    for part, proposal_id, key, first, second, size, content in rows:
        if part == 0:
            people[proposal_id].append(_person(key, first, second))
        elif part == 1:
            kept[proposal_id].append(_file(key, first, size, second))
        else:
            versions[proposal_id] = content
    return {
        i
        for i, p in submitted.items()
        if i not in versions
        or _differs({**_written(p), "team": people[i], "attachments": kept[i]}, versions[i])
    }


@dataclass(frozen=True)
class FieldDiff:
    label: str
    lines: list[tuple[str, str]]  # (" " | "+" | "-" | "…", text)


def _lines(content: dict[str, Any], key: str) -> list[str]:
    """A field as lines of text that people can compare."""
    value = content.get(key)
    if key == "milestones":
        return [
            f"{m['due']} · {m['title']}" + (f" — {m['deliverable']}" if m.get("deliverable") else "")
            for m in value or []
        ]
    if key == "requested_ore":
        return [sek(value)] if value is not None else []
    if key == "budget":
        return [f"{BUDGET_LABELS[line]}: {sek((value or {}).get(line.value, 0))}" for line in BudgetLine]
    if key == "team":
        return [f"{p['name']} <{p['email']}>" for p in value or []]
    if key == "partners":
        return [
            f"{p['name']} ({PARTNER_LABELS[PartnerKind(p['kind'])]})"
            + (f" {p['org_number']}" if p.get("org_number") else "")
            + (f" — {p['role']}" if p.get("role") else "")
            for p in value or []
        ]
    if key == "attachments":
        return [f"{a['filename']} ({a['sha256'][:12]})" for a in value or []]
    return str(value or "").splitlines()


def diff_versions(old: dict[str, Any], new: dict[str, Any], labels: dict[str, str]) -> list[FieldDiff]:
    """The fields that changed from *old* to *new*, each as a line diff with two lines of context."""
    changes = []
    for key in _COMPARED:
        before, after = _lines(old, key), _lines(new, key)
        if before == after:
            continue
        lines: list[tuple[str, str]] = []
        for line in list(difflib.unified_diff(before, after, lineterm="", n=2))[2:]:
            if line.startswith("@@"):
                if lines:
                    lines.append(("…", ""))
                continue
            lines.append((line[0], line[1:]))
        changes.append(FieldDiff(labels[key], lines))
    return changes
