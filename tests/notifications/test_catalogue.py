"""The catalogue of notices: every event type decided (told or silent), every template present, and
every notice written, through the real services and handlers, in Swedish and in English."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from challenges.accounts import passwords
from challenges.accounts import services as accounts
from challenges.accounts.models import MailMode, Membership, OrganisationKind, Role, User
from challenges.calls import following, questions
from challenges.calls import jobs as call_jobs
from challenges.calls import services as calls
from challenges.calls.models import Challenge, ChallengeStatus
from challenges.core.formatting import STOCKHOLM
from challenges.core.models import EventHandling, HandlingState, utcnow
from challenges.core.translation import MissingTranslationLog
from challenges.extensions import db
from challenges.funding import services as funding
from challenges.funding.models import Award, AwardStatus, Posting, Programme, ProgrammeYear
from challenges.notifications import jobs as notification_jobs
from challenges.notifications import services as notifications
from challenges.notifications.catalogue import CATALOGUE, NOTICES, SILENT, Notice
from challenges.notifications.models import MailMessage, MessageState
from challenges.projects import jobs as project_jobs
from challenges.projects import services as projects
from challenges.projects.models import Project, ProjectReport
from challenges.proposals import services as proposals
from challenges.proposals.models import Proposal
from challenges.reviews import assignments, scoring
from challenges.reviews import jobs as review_jobs
from challenges.reviews import services as reviews
from challenges.reviews.models import Assessment, Assignment, ChallengeReview, Decision
from tests.factories import (
    TEST_PASSWORD,
    challenge_content,
    make_manager,
    make_org,
    make_user,
    make_year,
    topics,
    valid_org_number,
)
from tests.proposals.conftest import make_proposal
from tests.reviews.conftest import CRITERIA

SEK = 100


# --- the catalogue against the bus and the templates -------------------------------------------------


def test_every_event_type_has_a_catalogue_entry(app):
    bus = app.extensions["event_bus"]
    declared = set(bus.event_types)
    told = {n.event for n in NOTICES}
    silent = set(SILENT)

    assert len(CATALOGUE) == len(NOTICES), "two notices share a key"
    assert told & silent == set(), f"both told and silent: {sorted(told & silent)}"
    assert declared - told - silent == set(), f"undecided event types: {sorted(declared - told - silent)}"
    assert told - declared == set(), f"notices for undeclared event types: {sorted(told - declared)}"
    assert silent - declared == set(), f"silent entries that are not event types: {sorted(silent - declared)}"

    for notice in NOTICES:
        queues = [h.queue for h in bus.handlers[notice.event]]
        assert "notifications" in queues, (
            f"nothing on the notifications queue sends {notice.key} ({notice.event})"
        )
    for type_name in silent:
        mailers = [h.name for h in bus.handlers[type_name] if h.queue == "notifications"]
        assert mailers == [], f"{type_name} is silent but {mailers} mail about it"

    templates = Path(app.template_folder, "email")
    for notice in NOTICES:
        for suffix in (".txt", ".html"):
            assert (templates / f"{notice.template}{suffix}").is_file(), (
                f"{notice.key}: templates/email/{notice.template}{suffix} is missing"
            )
    used = {n.template for n in NOTICES}
    unused = sorted(
        p.name
        for p in templates.iterdir()
        if p.is_file() and not p.name.startswith("_") and p.name.rsplit(".", 1)[0] not in used
    )
    assert unused == [], f"email templates no notice uses: {unused}"


# --- every notice, in both languages ------------------------------------------------------------------


URL_RE = re.compile(r"https?://[^\s<>\"')\]]+")
HREF_RE = re.compile(r'href="([^"]*)"')


class RenderSpy:
    """Stands in for ``render_message``: renders each notice in the language asked for and in the other
    one, checks both, and remembers what it saw. Runs on the worker, where an exception would only mark
    the handler failed, so problems are collected and asserted by the test."""

    def __init__(self, real: Callable, base_url: str) -> None:
        self.real = real
        self.base_url = base_url
        self.seen: set[str] = set()
        self.languages: set[str] = set()
        self.problems: list[str] = []

    def _check(self, key: str, language: str, subject: str, text: str, html: str) -> None:
        where = f"{key} [{language}]"
        for name, part in (("subject", subject), ("text", text), ("html", html)):
            if not part or not part.strip():
                self.problems.append(f"{where}: empty {name}")
            for marker in ("{{", "{%", "}}", "%}"):
                if marker in part:
                    self.problems.append(f"{where}: {marker!r} left in the {name}")
        links = [("html href", u) for u in HREF_RE.findall(html)] + [
            ("html", u) for u in URL_RE.findall(html)
        ]
        links += [("text", u) for u in URL_RE.findall(text)]
        left_out = {
            notifications._link_left_out(lang) for lang in ("en", "sv")
        }  # a one-time link, sent alone
        for place, url in links:
            if not (url == self.base_url or url.startswith(self.base_url + "/") or url in left_out):
                self.problems.append(
                    f"{where}: {place} link {url!r} is not an absolute link to {self.base_url}"
                )

    def __call__(self, notice: Notice, language: str, context: dict, subject_args: dict | None = None):
        rendered = {}
        for lang in ("en", "sv"):
            rendered[lang] = self.real(notice, lang, context, subject_args)
            self._check(notice.key, lang, *rendered[lang])
        (en_subject, en_text, en_html), (sv_subject, sv_text, sv_html) = rendered["en"], rendered["sv"]
        if sv_subject == en_subject:
            self.problems.append(f"{notice.key}: the Swedish subject is the English one: {en_subject!r}")
        if sv_text == en_text:
            self.problems.append(f"{notice.key}: the Swedish text is the English one")
        if sv_html == en_html:
            self.problems.append(f"{notice.key}: the Swedish html is the English one")
        self.seen.add(notice.key)
        self.languages.add(language)
        return rendered[language]


@pytest.fixture
def untranslated(monkeypatch, caplog) -> Callable[[], list[str]]:
    """What was shown in English for want of a translation. The log says so once per process and
    message; forget what was logged, so that a message an earlier test met is reported here too."""
    caplog.set_level(logging.WARNING, logger="challenges.core.translation")
    missing = MissingTranslationLog._missing

    def log_every_time(self: MissingTranslationLog, message: str) -> str:
        self.logged.discard(message)
        return missing(self, message)

    monkeypatch.setattr(MissingTranslationLog, "_missing", log_every_time)
    return lambda: [r.getMessage() for r in caplog.records if r.name == "challenges.core.translation"]


@pytest.fixture
def spy(app, monkeypatch) -> RenderSpy:
    found = RenderSpy(notifications.render_message, app.config["BASE_URL"])
    monkeypatch.setattr(notifications, "render_message", found)
    return found


def _sent(key: str) -> list[MailMessage]:
    return list(db.session.scalars(sa.select(MailMessage).where(MailMessage.notice == key)))


def _recipients(key: str) -> set[str]:
    return {m.recipient for m in _sent(key)}


def _accounts(manager: User, drain) -> dict[str, int]:
    """Registration, joining, approval and rejection, passwords, an invitation, roles, disabling.
    Returns the ids of the people the rest of the scenario needs."""
    sven = accounts.register_user(
        name="Sven Svensson",
        email="sven@sensorer.example.se",
        password=TEST_PASSWORD,
        language="sv",
        new_organisation=accounts.NewOrganisation(
            name="Sensorer i Norr AB",
            org_number=valid_org_number(),
            kind=OrganisationKind.sme,
            staff_headcount=12,
            annual_turnover_ore=9_000_000_00,
            balance_sheet_total_ore=4_000_000_00,
        ),
    )
    org_number = sven.organisation.org_number
    anna = accounts.register_user(
        name="Anna Andersson",
        email="anna@sensorer.example.se",
        password=TEST_PASSWORD,
        language="en",
        join_org_number=org_number,
    )
    kalle = accounts.register_user(
        name="Kalle Karlsson",
        email="kalle@sensorer.example.se",
        password=TEST_PASSWORD,
        language="sv",
        join_org_number=org_number,
    )
    ids = {"sven": sven.id, "anna": anna.id, "kalle": kalle.id}
    db.session.commit()
    drain()

    membership = {m.user_id: m for m in db.session.scalars(sa.select(Membership))}
    sven = db.session.get(User, ids["sven"])
    accounts.decide_membership(membership[ids["anna"]], approve=True, by=sven)
    accounts.decide_membership(membership[ids["kalle"]], approve=False, by=sven)
    passwords.request_password_reset("sven@sensorer.example.se")
    passwords.change_password(sven, TEST_PASSWORD, "an even longer passphrase for Sven")
    accounts.request_registration(
        accounts.Registration(  # a new address: the link to confirm it
            name="Nils Ny",
            email="nils@nya.example.se",
            password=TEST_PASSWORD,
            language="sv",
            new_organisation=accounts.NewOrganisation(
                name="Nya AB", org_number=valid_org_number(), kind=OrganisationKind.industrial
            ),
        )
    )
    accounts.request_registration(
        accounts.Registration(  # a known one: its owner is told
            name="Sven",
            email="sven@sensorer.example.se",
            password=TEST_PASSWORD,
            language="sv",
            join_org_number=org_number,
        )
    )
    accounts.invite_evaluator("new.evaluator@granskning.example.se", "sv", by=manager)
    anna = db.session.get(User, ids["anna"])
    accounts.grant_role(anna, Role.evaluator, by=manager)
    db.session.commit()
    drain()

    anna, kalle = db.session.get(User, ids["anna"]), db.session.get(User, ids["kalle"])
    accounts.revoke_role(anna, Role.evaluator, by=manager)
    accounts.disable_account(kalle, by=manager)
    db.session.commit()
    drain()
    accounts.enable_account(db.session.get(User, ids["kalle"]), by=manager)
    db.session.commit()
    drain()
    assert _recipients("membership_requested") == {"sven@sensorer.example.se"}
    return ids


def test_every_notice_is_written_in_swedish_and_english(app, ctx, drain, spy, untranslated):
    # The programme: two managers (English and Swedish), the topics, this year.
    manager = make_manager()
    make_user("chef@agency.example.com", name="Karin Chef", roles=(Role.programme_manager,), language="sv")
    by_name = topics()
    year = make_year()
    db.session.commit()
    manager_id, programme_id = manager.id, year.programme_id

    # --- accounts ---
    ids = _accounts(manager, drain)

    # Sensorer i Norr follows the challenge's area; Sven (Swedish) reads such things once a day.
    sven = db.session.get(User, ids["sven"])
    accounts.update_profile(sven, name=sven.name, language="sv", mail_mode=MailMode.daily)
    following.set_followed_topics([by_name["Data"].id], by=sven)

    # --- the challenge: drafted, submitted, returned, submitted again, published ---
    owner_org = make_org(OrganisationKind.industrial, name="Stålverket AB")
    owner = make_user("olle@stal.example.com", name="Olle Ägare", org=owner_org, language="sv")
    make_user("colleague@stal.example.com", name="Colin Colleague", org=owner_org, language="en")
    people = {
        "sara": make_user(
            "sara@sensors.example.com",
            name="Sara Sensor",
            language="sv",
            org=make_org(OrganisationKind.sme, name="Sensors AB"),
        ),
        "jonas": make_user(
            "jonas@robots.example.com",
            name="Jonas Robot",
            org=make_org(OrganisationKind.sme, name="Robots AB"),
        ),
        "dora": make_user(
            "dora@drafts.example.com",
            name="Dora Draft",
            language="sv",
            org=make_org(OrganisationKind.sme, name="Drafts AB"),
        ),
        "wilma": make_user(
            "wilma@withdraw.example.com",
            name="Wilma Withdraw",
            org=make_org(OrganisationKind.sme, name="Withdrawn AB"),
        ),
        "ines": make_user(
            "ines@ineligible.example.com",
            name="Ines Ineligible",
            language="sv",
            org=make_org(OrganisationKind.sme, name="Offside AB"),
        ),
    }
    evaluator_ids = [
        make_user(email, name=name, roles=(Role.evaluator,), language=language).id
        for email, name, language in (
            ("eva@evaluators.example.com", "Eva Evaluator", "en"),
            ("erik@granskare.example.se", "Erik Granskare", "sv"),
            ("emma@reviewers.example.org", "Emma Reviewer", "en"),
        )
    ]
    challenge = calls.create_challenge(challenge_content(year, criteria=CRITERIA), by=owner)
    calls.submit_challenge(challenge, by=owner)
    db.session.flush()
    calls.return_challenge(challenge, "Say which alloys you cast.", by=manager)
    calls.submit_challenge(challenge, by=owner)
    calls.approve_challenge(challenge, by=manager)
    challenge_id = challenge.id
    person_ids = {k: u.id for k, u in people.items()}
    owner_id = owner.id
    db.session.commit()
    drain()
    assert _recipients("challenge_match") == {"sven@sensorer.example.se", "anna@sensorer.example.se"}
    assert {m.state for m in _sent("challenge_match") if m.recipient.startswith("sven")} == {
        MessageState.held
    }

    # --- proposals, a clarification, an extension, questions and answers ---
    def person(key: str) -> User:
        return db.session.get(User, person_ids[key])

    challenge = db.session.get(Challenge, challenge_id)
    proposal_ids = {
        key: make_proposal(person(key), challenge, title=f"Proposal by {key}").id
        for key in ("sara", "jonas", "wilma", "ines")
    }
    make_proposal(person("dora"), challenge, submit=False, title="Never submitted")
    proposals.withdraw_proposal(db.session.get(Proposal, proposal_ids["wilma"]), by=person("wilma"))
    owner = db.session.get(User, owner_id)
    calls.add_clarification(challenge, "The parts are cast in grey iron.", by=owner)
    new_deadline = challenge.deadline + timedelta(days=7)
    calls.extend_deadline(challenge, new_deadline, "More time for the summer.", by=owner)
    question = questions.ask_question(challenge, "May we visit the foundry?", by=person("sara"))
    db.session.commit()
    drain()
    questions.answer_question(question, "Yes, on weekdays.", by=db.session.get(User, owner_id))
    db.session.commit()
    drain()
    assert "dora@drafts.example.com" in _recipients("deadline_extended")

    # --- the reminders before the deadline, to the team of the draft ---
    deadline = db.session.get(Challenge, challenge_id).deadline
    db.session.commit()
    assert call_jobs.send_closing_reminders(now=deadline - timedelta(days=2, hours=12)) == 1
    drain()
    assert call_jobs.send_closing_reminders(now=deadline - timedelta(hours=12)) == 1
    drain()
    assert (
        _recipients("closing_in_three_days") == _recipients("closing_tomorrow") == {"dora@drafts.example.com"}
    )

    # --- the close: the owner's digest of proposals, and the review opens ---
    assert call_jobs.close_due_challenges(now=deadline + timedelta(seconds=1)) == 1
    drain()
    review = db.session.scalar(sa.select(ChallengeReview).where(ChallengeReview.challenge_id == challenge_id))
    assert review is not None
    review_id = review.id
    assessments = {a.proposal_id: a for a in review.assessments}
    assert set(assessments) == {proposal_ids[k] for k in ("sara", "jonas", "ines")}

    # --- screening, assignment, a recusal nobody can fill ---
    manager = db.session.get(User, manager_id)
    reviews.screen_proposal(assessments[proposal_ids["sara"]], eligible=True, reason="", by=manager)
    reviews.screen_proposal(assessments[proposal_ids["jonas"]], eligible=True, reason="", by=manager)
    reviews.screen_proposal(
        assessments[proposal_ids["ines"]],
        eligible=False,
        reason="The company is not registered in Sweden.",
        by=manager,
    )
    created = assignments.assign_automatically(db.session.get(ChallengeReview, review_id), by=manager)
    assert len(created) == 6
    db.session.commit()
    drain()
    sara_assessment = db.session.scalar(
        sa.select(Assessment).where(Assessment.proposal_id == proposal_ids["sara"])
    )
    stepping_back = next(a for a in sara_assessment.assignments if a.evaluator_id == evaluator_ids[0])
    assignments.recuse(stepping_back, "I advised Sensors AB last year.", by=stepping_back.evaluator)
    db.session.commit()
    drain()
    assert _recipients("review_unfilled") == {"manager@agency.example.com", "chef@agency.example.com"}
    # the manager takes one of Jonas's proposal's evaluators off it (she still has Sara's)
    jonas_assessment = db.session.scalar(
        sa.select(Assessment).where(Assessment.proposal_id == proposal_ids["jonas"])
    )
    taken = next(a for a in jonas_assessment.assignments if a.evaluator_id == evaluator_ids[1])
    taken_email = taken.evaluator.email
    assignments.unassign(taken, by=db.session.get(User, manager_id))
    db.session.commit()
    drain()
    assert _recipients("review_unassigned") == {taken_email}

    # --- the evaluators' reminders, three days before and on the day ---
    review_deadline = db.session.get(ChallengeReview, review_id).review_deadline
    deadline_day = review_deadline.astimezone(STOCKHOLM).date()
    three_days = datetime.combine(deadline_day - timedelta(days=3), time(12), STOCKHOLM).astimezone(UTC)
    assert review_jobs.send_due_reminders(now=three_days) == 1
    drain()
    assert review_jobs.send_due_reminders(now=review_deadline) == 1
    drain()
    assert len(_sent("review_reminder")) == len(_sent("review_due_today")) == 3

    # --- every review in, the decisions published ---
    review = db.session.get(ChallengeReview, review_id)
    criteria = [c.id for c in review.challenge.criteria]
    for assignment in db.session.scalars(
        sa.select(Assignment).where(Assignment.recused_at.is_(None)).order_by(Assignment.id)
    ).all():
        scoring.submit_review(
            assignment,
            dict(zip(criteria, (6, 5, 4), strict=True)),
            "Solid work.",
            "",
            by=assignment.evaluator,
        )
    db.session.commit()
    drain()
    review = db.session.get(ChallengeReview, review_id)
    assert review.completed_at is not None
    manager = db.session.get(User, manager_id)
    for key in ("sara", "jonas"):
        reviews.decide_proposal(
            db.session.scalar(sa.select(Assessment).where(Assessment.proposal_id == proposal_ids[key])),
            Decision.recommend,
            "A strong fit.",
            by=manager,
        )
    reviews.publish_decisions(review, by=manager)
    db.session.commit()
    drain()
    assert db.session.get(Challenge, challenge_id).status is ChallengeStatus.decided

    # --- funding: a small year takes one award of two; a payment, a reduction; an admin cost refused ---
    manager = db.session.get(User, manager_id)
    programme = db.session.get(Programme, programme_id)
    small = funding.add_year(programme, 2027, 500_000 * SEK, None, by=manager)  # 475 000 kr available
    small_id = small.id
    first = funding.award_funding(
        db.session.get(Proposal, proposal_ids["sara"]), small, 400_000 * SEK, by=manager
    )
    second = funding.award_funding(
        db.session.get(Proposal, proposal_ids["jonas"]), small, 400_000 * SEK, by=manager
    )
    first_id, second_id = first.id, second.id
    db.session.commit()
    drain()
    first, second = db.session.get(Award, first_id), db.session.get(Award, second_id)
    assert (first.status, second.status) == (AwardStatus.booked, AwardStatus.refused)
    manager = db.session.get(User, manager_id)
    funding.approve_payment(first.instalments[0], by=manager)
    funding.reduce_award(db.session.get(Award, first_id), 300_000 * SEK, by=manager)
    small = db.session.get(ProgrammeYear, small_id)
    funding.book_admin_cost(small, 20_000 * SEK, "Evaluator fees", by=manager)  # the envelope holds 25 000 kr
    funding.book_admin_cost(small, 20_000 * SEK, "Evaluator travel", by=manager)  # refused by the ledger
    db.session.commit()
    drain()
    refused = db.session.scalars(sa.select(Posting.reason).where(Posting.booked.is_(False))).all()
    assert sorted(refused) == ["admin_cap", "insufficient_budget"]

    # --- the funded project: reminders, a report sent back, filed again and approved ---
    project = db.session.scalar(sa.select(Project).where(Project.award_id == first_id))
    progress = project.reports[0]
    due = datetime.combine(progress.due_on, time(9), STOCKHOLM).astimezone(UTC)
    assert project_jobs.send_report_reminders(now=due - timedelta(days=6)) == 1
    assert project_jobs.send_report_reminders(now=due) == 1
    drain()
    progress = db.session.get(ProjectReport, progress.id)
    sara = db.session.scalar(sa.select(User).where(User.email == "sara@sensors.example.com"))
    content = projects.ReportContent(
        text="Half-way: the rig works.",
        trl=5,
        pilot_with_owner=True,
        follow_on_with_owner=False,
        other_customers=1,
        private_cofunding_ore=0,
        jobs_created=2,
    )
    projects.submit_report(progress, content, by=sara)
    projects.request_changes(progress, "Add the measurements.", by=db.session.get(User, manager_id))
    projects.submit_report(progress, content, by=sara)
    projects.approve_report(progress, by=db.session.get(User, manager_id))
    db.session.commit()
    drain()

    # --- the daily digest: after 07:00 Stockholm time ---
    tomorrow = (utcnow().astimezone(STOCKHOLM) + timedelta(days=1)).date()
    assert (
        notification_jobs.compile_digests(now=datetime.combine(tomorrow, time(8), STOCKHOLM).astimezone(UTC))
        == 1
    )
    drain()
    [digest] = _sent("digest")
    assert digest.recipient == "sven@sensorer.example.se" and digest.language == "sv"

    # --- everything written, in both languages, nothing untranslated, every handler done ---
    missing = sorted(set(CATALOGUE) - spy.seen)
    assert spy.seen == set(CATALOGUE), f"notices never written: {missing}"
    assert spy.problems == [], "\n".join(spy.problems)
    assert spy.languages == {"en", "sv"}
    assert untranslated() == [], "\n".join(untranslated())
    written = set(db.session.scalars(sa.select(MailMessage.notice).distinct()))
    assert written == set(CATALOGUE), f"no message row for: {sorted(set(CATALOGUE) - written)}"
    languages = set(db.session.scalars(sa.select(MailMessage.language).distinct()))
    assert languages == {"en", "sv"}
    unfinished = db.session.execute(
        sa.select(EventHandling.handler, EventHandling.state, EventHandling.last_error).where(
            EventHandling.state != HandlingState.done
        )
    ).all()
    assert unfinished == []
