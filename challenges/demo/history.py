"""The demo's history: what the programme did in 2016 and 2017.

Each step runs under clock_at() at its Stockholm wall-clock time, through the same services as the
site, and handle_pending() then runs what the workers would have done at that moment: the ledger
books, projects start, mail is written. Everything in it is past and settled (or, for one final
report, waiting for the programme manager), so no periodic job has anything to do for it today.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time

import sqlalchemy as sa

from challenges.accounts import services as accounts
from challenges.accounts.models import Organisation, Role, User, UserRole
from challenges.calls import services as calls
from challenges.calls import topics
from challenges.calls.models import Challenge, TopicKind
from challenges.core.formatting import from_local
from challenges.core.inline import handle_pending
from challenges.core.models import clock_at
from challenges.demo.people import (
    AGREEMENT,
    COMPANIES,
    CRITERIA,
    DEMO_PASSWORD,
    EVALUATORS,
    MANAGER,
    PROGRAMME_NAME,
    SEK,
    _org_number,
    _person,
)
from challenges.demo.records import (
    CONFLICT,
    DECISIONS,
    HISTORY_ADMIN_COSTS,
    HISTORY_AWARDS,
    HISTORY_CHALLENGES,
    HISTORY_LESSONS,
    HISTORY_PROPOSALS,
    HISTORY_REPORTS,
    HISTORY_REVIEWS,
    INELIGIBLE,
    REPORT_DATES,
    HistoryChallenge,
    HistoryProposal,
)
from challenges.extensions import db
from challenges.funding import services as funding
from challenges.funding.models import InstalmentCondition, Programme, ProgrammeYear
from challenges.projects import services as projects
from challenges.projects.models import Project, ProjectReport, ReportKind
from challenges.proposals import services as proposals
from challenges.proposals.models import Proposal
from challenges.proposals.rules import ProposalContent
from challenges.reports import services as reports
from challenges.reviews import assignments, scoring
from challenges.reviews import services as reviews
from challenges.reviews.models import Assessment, ChallengeReview


def _at(when: str) -> datetime:
    """The UTC instant of a Stockholm wall-clock time, "YYYY-MM-DD HH:MM"."""
    day, clock = when.split()
    return from_local(date.fromisoformat(day), time.fromisoformat(clock))


@contextmanager
def _step(when: str) -> Iterator[None]:
    """One moment of the history: the services run at *when*, then what the workers would have done."""
    with clock_at(_at(when)):
        yield
        handle_pending()


def _demo_history() -> tuple[Programme, User]:
    """The programme's 2016–2017: two challenges, four proposals, a review with a conflict of
    interest, two funded projects with their payments and reports, and administration costs."""
    with _step("2016-01-11 09:00"):
        programme, manager = _demo_programme()
    year_2016, year_2017 = programme.years
    with _step("2016-02-01 10:00"):
        topics.ensure_default_topics()
        challenges = {c.key: _history_challenge(c, year_2016.id) for c in HISTORY_CHALLENGES}
    with _step("2016-02-03 14:00"):
        for challenge in challenges.values():
            calls.approve_challenge(challenge, by=manager)
    proposals_by_key = {}
    for p in sorted(HISTORY_PROPOSALS, key=lambda p: p.submitted):
        with _step(p.submitted):
            proposals_by_key[p.key] = _history_proposal(p, challenges[p.challenge])
    _history_review(challenges, proposals_by_key, manager)

    with _step("2016-06-01 10:00"):  # the ledger books the awards, and the projects start
        for key, kronor in HISTORY_AWARDS.items():
            funding.award_funding(proposals_by_key[key], year_2016, kronor * SEK, by=manager)
    with _step("2016-06-08 11:00"):
        for key in HISTORY_AWARDS:
            _pay_start(proposals_by_key[key], manager)
    with _step("2016-06-30 14:00"):
        _book_admin_cost(year_2016, manager)
    with _step("2016-10-03 09:40"):
        _file_report(proposals_by_key, "crane_sensors", ReportKind.progress)
    with _step("2016-10-05 14:00"):
        projects.approve_report(_report(proposals_by_key["crane_sensors"], ReportKind.progress), by=manager)
    with _step("2016-10-10 11:15"):
        _file_report(proposals_by_key, "weld_model", ReportKind.progress)
    with _step("2016-10-12 09:30"):
        projects.approve_report(_report(proposals_by_key["weld_model"], ReportKind.progress), by=manager)

    with _step("2017-01-09 09:00"):
        funding.open_year(year_2017, by=manager)
    with _step("2017-02-13 15:30"):
        _file_report(proposals_by_key, "crane_sensors", ReportKind.final)
    with _step("2017-02-20 10:00"):  # releases and pays the final instalment
        projects.approve_report(_report(proposals_by_key["crane_sensors"], ReportKind.final), by=manager)
    with _step("2017-03-06 10:00"):
        _book_admin_cost(year_2017, manager)
    with _step("2017-03-14 16:00"):  # left for the programme manager to approve in the demo
        _file_report(proposals_by_key, "weld_model", ReportKind.final)
    for as_of, (written, text) in HISTORY_LESSONS.items():
        with _step(written):
            reports.save_lessons(programme, date.fromisoformat(as_of), text, by=manager)
    return programme, manager


def _demo_programme() -> tuple[Programme, User]:
    """The programme with its two years (the ledger of 2016 opens now, 2017's next January) and
    every demo person."""
    programme = Programme(
        name=PROGRAMME_NAME,
        admin_cap_basis_points=500,
        eur_rate_ore=935,
        return_deadline=date(2018, 3, 31),
        report_dates=REPORT_DATES,
    )
    programme.years = [
        ProgrammeYear(year=2016, allocation_ore=8_000_000 * SEK, requisition_deadline=date(2016, 8, 31)),
        ProgrammeYear(year=2017, allocation_ore=8_000_000 * SEK, requisition_deadline=date(2017, 3, 31)),
    ]
    db.session.add(programme)
    db.session.flush()

    manager = accounts.register_user(name=MANAGER[0], email=MANAGER[1], password=DEMO_PASSWORD, language="sv")
    manager.roles.append(UserRole(role=Role.programme_manager))
    funding.open_year(programme.years[0], by=manager)  # the allocation and the admin envelope

    for org_name, prefix, kind, figures, people in COMPANIES:
        staff, turnover, balance = figures or (None, None, None)
        new_org = accounts.NewOrganisation(
            name=org_name,
            org_number=_org_number(prefix),
            kind=kind,
            staff_headcount=staff,
            annual_turnover_ore=turnover * SEK if turnover is not None else None,
            balance_sheet_total_ore=balance * SEK if balance is not None else None,
        )
        for name, email in people:
            accounts.register_user(
                name=name, email=email, password=DEMO_PASSWORD, language="sv", new_organisation=new_org
            )

    for name, email in EVALUATORS:
        user = accounts.register_user(name=name, email=email, password=DEMO_PASSWORD, language="en")
        accounts.grant_role(user, Role.evaluator, by=manager)
    db.session.flush()
    return programme, manager


def _history_challenge(c: HistoryChallenge, programme_year_id: int) -> Challenge:
    """Drafted and submitted for approval by its owner."""
    owner = _person(c.owner)
    challenge = calls.create_challenge(
        calls.ChallengeContent(
            programme_year_id=programme_year_id,
            title=c.title,
            summary=c.summary,
            description=f"## Background\n\n{c.summary}\n\n## What we have today\n\n"
            "Maintenance and process records from the last five years, and engineers who know the "
            "equipment.\n\n- Data can be shared under the agreement\n- Site visits can be arranged",
            area_id=topics.topic_named(TopicKind.area, c.area).id,
            theme_ids=[topics.topic_named(TopicKind.theme, t).id for t in c.themes],
            must_demonstrate="A working prototype tested in our plant, with measured results.",
            max_funding_ore=c.max_sek * SEK,
            awards_planned=1,
            deadline=_at(c.deadline),
            agreement=AGREEMENT,
            contact_name=owner.name,
            contact_email=owner.email,
            criteria=CRITERIA,
            offers=["data_sets", "test_environment", "mentoring"],
            offers_details="Data from the plant, time on the line for a pilot, and a named mentor.",
        ),
        by=owner,
    )
    calls.submit_challenge(challenge, by=owner)
    return challenge


def _history_proposal(p: HistoryProposal, challenge: Challenge) -> Proposal:
    """Started and submitted by its SME."""
    person = _person(p.applicant)
    partners = []
    if p.partner is not None:
        name, number, role = p.partner
        partners.append({"name": name, "org_number": number, "kind": "university", "role": role})
    proposal = proposals.start_proposal(
        challenge,
        ProposalContent(
            title=p.title,
            summary=p.summary,
            solution=f"## Approach\n\n{p.summary}\n\n## Work plan\n\n"
            + "\n".join(f"- {title} ({due})" for due, title, _d in p.milestones),
            fit=f"Answers “{challenge.title}” with a pilot in the company's own plant.",
            milestones=[
                {"title": title, "due": due, "deliverable": deliverable}
                for due, title, deliverable in p.milestones
            ],
            requested_ore=sum(p.budget_sek.values()) * SEK,
            budget={line: kronor * SEK for line, kronor in p.budget_sek.items()},
            team_ids=[person.id],
            partners=partners,
            accept_agreement=True,
        ),
        by=person,
    )
    proposals.submit_proposal(proposal, by=person)
    return proposal


def _history_review(challenges: dict[str, Challenge], by_key: dict[str, Proposal], manager: User) -> None:
    """The deadline closes both challenges and the worker opens their reviews; screening, two
    evaluators per proposal, a conflict of interest, the reviews, the decisions."""
    with _step("2016-04-15 12:00"):
        for challenge in challenges.values():
            calls.close_challenge(challenge)
    keys = {proposal.id: key for key, proposal in by_key.items()}
    with _step("2016-04-18 09:30"):
        for challenge in challenges.values():
            review = _review(challenge)
            reviews.update_settings(
                review,
                reviews.ReviewSettings(
                    review_deadline=review.review_deadline,
                    evaluators_per_proposal=2,
                    max_per_evaluator=review.max_per_evaluator,
                    blind=review.blind,
                    calibration=review.calibration,
                    disagreement_tenths=review.disagreement_tenths,
                ),
                by=manager,
            )
            for assessment in review.assessments:
                key = keys[assessment.proposal_id]
                reviews.screen_proposal(
                    assessment, eligible=key not in INELIGIBLE, reason=INELIGIBLE.get(key, ""), by=manager
                )
            assignments.assign_automatically(review, by=manager)
    evaluator, org_name, relation, when = CONFLICT
    with _step(when):  # the worker steps the evaluator back and finds nobody else free
        org = db.session.scalar(sa.select(Organisation).where(Organisation.name == org_name))
        assert org is not None
        reviews.declare_conflict(_person(evaluator), org.org_number, "", relation)
    for key, email, when, scores, comment in HISTORY_REVIEWS:
        with _step(when):
            person = _person(email)
            assessment = _assessment(by_key[key])
            assignment = next(a for a in assessment.active_assignments if a.evaluator_id == person.id)
            criteria = assessment.review.challenge.criteria
            scoring.submit_review(
                assignment, {c.id: s for c, s in zip(criteria, scores, strict=True)}, comment, "", by=person
            )
    with _step("2016-05-16 15:00"):
        for key, (decision, reason) in DECISIONS.items():
            reviews.decide_proposal(_assessment(by_key[key]), decision, reason, by=manager)
        for challenge in challenges.values():
            reviews.publish_decisions(_review(challenge), by=manager)


def _review(challenge: Challenge) -> ChallengeReview:
    review = reviews.review_of(challenge)
    assert review is not None
    return review


def _assessment(proposal: Proposal) -> Assessment:
    assessment = reviews.assessment_of(proposal)
    assert assessment is not None
    return assessment


def _pay_start(proposal: Proposal, manager: User) -> None:
    award = funding.current_award(proposal)
    assert award is not None
    for instalment in award.instalments:
        if instalment.condition is InstalmentCondition.start:
            funding.approve_payment(instalment, by=manager)


def _book_admin_cost(year: ProgrammeYear, manager: User) -> None:
    kronor, memo = HISTORY_ADMIN_COSTS[year.year]
    funding.book_admin_cost(year, kronor * SEK, memo, by=manager)


def _report(proposal: Proposal, kind: ReportKind) -> ProjectReport:
    award = funding.current_award(proposal)
    assert award is not None
    report = db.session.scalar(
        sa.select(ProjectReport).join(Project).where(Project.award_id == award.id, ProjectReport.kind == kind)
    )
    assert report is not None
    return report


def _file_report(by_key: dict[str, Proposal], key: str, kind: ReportKind) -> None:
    applicant = _person(next(p.applicant for p in HISTORY_PROPOSALS if p.key == key))
    projects.submit_report(_report(by_key[key], kind), HISTORY_REPORTS[key, kind], by=applicant)
