"""Funded projects: a booked award starts one; the company reports, the programme approves or asks for
changes, and the approved final report releases the last instalment exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from challenges.core.errors import PermissionDenied, ServiceError
from challenges.core.formatting import STOCKHOLM
from challenges.extensions import db
from challenges.funding import services as funding
from challenges.funding.models import (
    Award,
    AwardStatus,
    Instalment,
    InstalmentCondition,
    Transfer,
    TransferKind,
)
from challenges.projects import jobs, services
from challenges.projects.models import Project, ProjectReport, ReportKind, ReportStatus
from challenges.projects.services import ReportContent
from tests.calls.test_catalogue import counting_queries

SEK = 100
GOOD = {
    "text": "We built and tested the sensor rig.",
    "trl": "6",
    "pilot_with_owner": "yes",
    "follow_on_with_owner": "no",
    "other_customers": "2",
    "private_cofunding": "150 000",
    "jobs_created": "3",
}


@pytest.fixture
def project(people, decided, drain) -> int:
    funding.award_funding(
        decided.proposals["sme"], decided.challenge.programme_year, 400_000 * SEK, by=people["manager"]
    )
    db.session.commit()
    drain()
    found = db.session.scalar(sa.select(Project))
    assert found is not None
    return found.id


def _report(project_id: int, kind: ReportKind) -> ProjectReport:
    db.session.rollback()
    return db.session.scalar(
        sa.select(ProjectReport).where(ProjectReport.project_id == project_id, ProjectReport.kind == kind)
    )


def _paid_instalments() -> list[InstalmentCondition]:
    db.session.rollback()
    return [
        i.condition
        for i in db.session.scalars(sa.select(Instalment).where(Instalment.approved_at.is_not(None)))
    ]


def test_a_booked_award_starts_a_project_with_its_work_plan_and_reports(people, decided, project, smtp):
    p = db.session.get(Project, project)
    assert p.award.status.value == "booked"
    assert [m["title"] for m in p.milestones] == [
        m["title"] for m in p.award.proposal.latest_version.content["milestones"]
    ]
    progress, final = p.reports
    assert (progress.kind, final.kind) == (ReportKind.progress, ReportKind.final)
    assert p.started_on < progress.due_on < final.due_on == p.ends_on
    assert {r.status for r in p.reports} == {ReportStatus.due}
    # the company heard of the award, with the plan
    [booked] = [m for m in smtp.to("sara@sensors.example.com") if m["Subject"] == "Funding has been awarded"]
    assert services.start_project(p.award) is p  # once per award


def test_the_company_reports_and_the_final_approval_pays_the_last_instalment_once(
    people, project, make_browser, drain, smtp
):
    sara = make_browser("sara@sensors.example.com")
    final = _report(project, ReportKind.final)
    url = f"/projects/reports/{final.id}"
    assert "Final report" in sara.get(f"/projects/{project}").get_data(as_text=True)
    response = sara.submit(url, dict(GOOD, milestones_reached="0"), page_url=url)
    assert response.status_code == 303
    report = _report(project, ReportKind.final)
    assert (report.status, report.trl, report.private_cofunding_ore, report.milestones_reached) == (
        ReportStatus.submitted,
        6,
        150_000 * SEK,
        [0],
    )
    drain()
    assert any(
        m["Subject"] == "A project report is waiting for your approval"
        for m in smtp.to("manager@agency.example.com")
    )

    manager = make_browser("manager@agency.example.com")
    assert manager.submit(f"{url}/approve", {}, page_url=url).status_code == 303
    assert _paid_instalments() == [InstalmentCondition.final_report]
    # approving twice is refused and pays nothing more
    again = manager.submit(f"{url}/approve", {}, page_url=url)
    assert "approved already" in manager.get(again.headers["Location"]).get_data(as_text=True)
    drain()
    assert len([c for c in _paid_instalments() if c is InstalmentCondition.final_report]) == 1
    transfers = db.session.scalar(
        sa.select(sa.func.count()).select_from(Transfer).where(Transfer.kind == TransferKind.payment)
    )
    assert transfers == 1  # the ledger booked the final payment once
    subjects = [m["Subject"] for m in smtp.to("sara@sensors.example.com")]
    assert "Your project report has been approved" in subjects and "A payment has been made" in subjects


def test_bad_reports_are_refused_and_change_nothing(people, project, make_browser):
    sara = make_browser("sara@sensors.example.com")
    progress = _report(project, ReportKind.progress)
    url = f"/projects/reports/{progress.id}"
    for changes, message in [
        ({"text": ""}, "Describe what was done"),
        ({"trl": "12"}, "technology readiness level"),
        ({"jobs_created": "-1"}, "0 or more"),
        ({"other_customers": "many"}, "Not a valid integer"),
        ({"private_cofunding": "-5"}, "0 or more"),
        ({"pilot_with_owner": ""}, "Answer yes or no"),
        ({"milestones_reached": "42"}, "Choose milestones"),
    ]:
        page = sara.submit(url, dict(GOOD, **changes), page_url=url)
        assert page.status_code == 200, changes
        assert message in page.get_data(as_text=True), changes
        assert _report(project, ReportKind.progress).status is ReportStatus.due


def test_changes_requested_then_filed_again(people, project, drain, smtp):
    report = _report(project, ReportKind.progress)
    content = ReportContent(
        text="Half-way.",
        trl=4,
        pilot_with_owner=False,
        follow_on_with_owner=False,
        other_customers=0,
        private_cofunding_ore=0,
        jobs_created=0,
    )
    services.submit_report(report, content, by=people["sme"])
    with pytest.raises(ServiceError, match="Say what should be changed"):
        services.request_changes(report, " ", by=people["manager"])
    services.request_changes(report, "Add the test results.", by=people["manager"])
    db.session.commit()
    drain()
    [mail] = [
        m
        for m in smtp.to("sara@sensors.example.com")
        if m["Subject"] == "The programme asks for changes to your project report"
    ]
    assert "Add the test results." in mail.get_body(("plain",)).get_content()
    report = _report(project, ReportKind.progress)
    services.submit_report(
        report, ReportContent(**dict(content.__dict__, text="Half-way, with results.")), by=people["sme"]
    )
    services.approve_report(report, by=people["manager"])
    db.session.commit()
    assert _report(project, ReportKind.progress).status is ReportStatus.approved
    assert InstalmentCondition.final_report not in _paid_instalments()  # a progress report pays nothing


def test_only_the_company_reports_and_only_a_manager_decides(people, project, make_browser):
    report = _report(project, ReportKind.final)
    content = ReportContent(
        text="x",
        trl=5,
        pilot_with_owner=True,
        follow_on_with_owner=True,
        other_customers=1,
        private_cofunding_ore=0,
        jobs_created=1,
    )
    for who in ("other_sme", "owner", "evaluator", "manager"):
        with pytest.raises(PermissionDenied):
            services.submit_report(report, content, by=people[who])
        db.session.rollback()
    services.submit_report(report, content, by=people["sme"])
    for who in ("sme", "owner", "evaluator"):
        with pytest.raises(PermissionDenied):
            services.approve_report(report, by=people[who])
        db.session.rollback()
    db.session.commit()
    for email in ("jonas@robots.example.com", "owner@steel.example.com", "eva@evaluators.example.com"):
        browser = make_browser(email)
        assert browser.get(f"/projects/{project}").status_code == 404, email
        assert browser.get(f"/projects/reports/{report.id}").status_code == 404, email
        assert "400,000" not in browser.get("/projects").get_data(as_text=True)
    jonas = make_browser("jonas@robots.example.com")
    assert jonas.submit(f"/projects/reports/{report.id}/approve", {}, page_url="/projects").status_code == 403


def test_report_reminders_a_week_before_and_on_the_day_once(people, project, drain, smtp):
    report = _report(project, ReportKind.progress)
    due = datetime.combine(report.due_on, time(9), STOCKHOLM).astimezone(UTC)
    assert jobs.send_report_reminders(now=due - timedelta(days=8)) == 0
    assert jobs.send_report_reminders(now=due - timedelta(days=6)) == 1
    assert jobs.send_report_reminders(now=due - timedelta(days=5)) == 0
    assert jobs.send_report_reminders(now=due) == 1
    assert jobs.send_report_reminders(now=due + timedelta(hours=3)) == 0
    drain()
    subjects = [m["Subject"] for m in smtp.to("sara@sensors.example.com")]
    assert subjects.count("Reminder: a project report is due in a week") == 1
    assert subjects.count("Reminder: a project report is due today") == 1
    assert jobs.send_report_reminders(now=due + timedelta(days=1)) == 0  # past: no more


def test_an_award_not_booked_starts_no_project(people, decided):
    award = funding.award_funding(
        decided.proposals["sme"], decided.challenge.programme_year, 400_000 * SEK, by=people["manager"]
    )
    db.session.flush()
    assert award.status.value == "pending"
    assert services.start_project(award) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Project)) == 0


def test_a_manager_lists_every_project_in_a_fixed_number_of_statements(
    people, decided, project, make_browser
):
    manager = make_browser("manager@agency.example.com")
    with counting_queries() as one:
        page = manager.get("/projects").get_data(as_text=True)
    assert "Sensors AB" in page
    # a second project (Robots AB's proposal, booked by hand here): the list costs the same
    other = Award(
        proposal_id=decided.proposals["other_sme"].id,
        programme_year_id=decided.challenge.programme_year.id,
        amount_ore=100_000 * SEK,
        status=AwardStatus.booked,
    )
    db.session.add(other)
    db.session.flush()
    services.start_project(other)
    db.session.commit()
    with counting_queries() as two:
        page = manager.get("/projects").get_data(as_text=True)
    assert page.count('href="/projects/') >= 2 and len(two) == len(one)
    sara = make_browser("sara@sensors.example.com")  # the company sees its own only
    own = sara.get("/projects").get_data(as_text=True)
    assert f'href="/projects/{project}"' in own and page.count('href="/projects/') > own.count(
        'href="/projects/'
    )


def test_a_filed_report_is_not_reminded(people, project):
    report = _report(project, ReportKind.progress)
    services.submit_report(
        report,
        ReportContent(
            text="Done early.",
            trl=4,
            pilot_with_owner=False,
            follow_on_with_owner=False,
            other_customers=0,
            private_cofunding_ore=0,
            jobs_created=0,
        ),
        by=people["sme"],
    )
    db.session.commit()
    due = datetime.combine(report.due_on, time(9), STOCKHOLM).astimezone(UTC)
    assert jobs.send_report_reminders(now=due - timedelta(days=6)) == 0
    assert jobs.send_report_reminders(now=due) == 0


def test_a_cancelled_awards_final_report_is_approved_and_pays_nothing(people, project, drain):
    award_id = db.session.get(Project, project).award_id
    funding.cancel_award(db.session.get(Award, award_id), by=people["manager"])
    db.session.commit()
    drain()
    report = _report(project, ReportKind.final)
    services.submit_report(
        report,
        ReportContent(
            text="Stopped early.",
            trl=4,
            pilot_with_owner=False,
            follow_on_with_owner=False,
            other_customers=0,
            private_cofunding_ore=0,
            jobs_created=0,
        ),
        by=people["sme"],
    )
    services.approve_report(report, by=people["manager"])
    db.session.commit()
    drain()
    assert _report(project, ReportKind.final).status is ReportStatus.approved
    assert InstalmentCondition.final_report not in _paid_instalments()
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Transfer).where(Transfer.kind == TransferKind.payment)
        )
        == 0
    )


def test_only_a_manager_sends_a_report_back_and_says_why(people, project, make_browser):
    report = _report(project, ReportKind.progress)
    services.submit_report(
        report,
        ReportContent(
            text="Half-way.",
            trl=4,
            pilot_with_owner=False,
            follow_on_with_owner=False,
            other_customers=0,
            private_cofunding_ore=0,
            jobs_created=0,
        ),
        by=people["sme"],
    )
    db.session.commit()
    url = f"/projects/reports/{report.id}"
    sara = make_browser("sara@sensors.example.com")
    assert sara.submit(f"{url}/changes", {"comment": "Redo it."}, page_url=url).status_code == 403
    manager = make_browser("manager@agency.example.com")
    blank = manager.submit(f"{url}/changes", {"comment": " "}, page_url=url)
    assert blank.status_code == 303 and "Say what should be changed" in manager.get(
        blank.headers["Location"]
    ).get_data(as_text=True)
    assert _report(project, ReportKind.progress).status is ReportStatus.submitted
    sent = manager.submit(f"{url}/changes", {"comment": "Add the test results."}, page_url=url)
    assert sent.status_code == 303
    assert _report(project, ReportKind.progress).status is ReportStatus.changes_requested
