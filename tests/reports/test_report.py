"""The programme report: its figures reconcile with the ledger to the öre, a report as of a past day
never changes, bad periods are refused, and only programme managers see it; the public list of funded
projects is open data."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from challenges.core.errors import PermissionDenied
from challenges.core.formatting import local_day
from challenges.core.inline import handle_pending
from challenges.core.models import clock_at, utcnow
from challenges.extensions import db
from challenges.funding import services as funding
from challenges.funding.checks import live_balances
from challenges.funding.models import AccountKind, Award, InstalmentCondition, Programme
from challenges.projects import services as projects
from challenges.projects.models import Project, ProjectReport, ReportKind
from challenges.projects.services import ReportContent
from challenges.reports import periods, services
from challenges.reports.data import report_data
from challenges.reports.models import ProgrammeLessons
from challenges.reports.periods import Period

SEK = 100
FINAL = ReportContent(
    text="Tested on the line.",
    trl=7,
    pilot_with_owner=True,
    follow_on_with_owner=True,
    other_customers=2,
    private_cofunding_ore=150_000 * SEK,
    jobs_created=3,
)


def _programme(decided) -> Programme:
    return decided.challenge.programme_year.programme


def _book_award(people, decided, amount_sek: int) -> Award:
    award = funding.award_funding(
        decided.proposals["sme"], decided.challenge.programme_year, amount_sek * SEK, by=people["manager"]
    )
    handle_pending()  # the ledger books it; the project starts
    return award


def _pay_start(people, award: Award) -> None:
    db.session.refresh(award)
    [start] = [i for i in award.instalments if i.condition is InstalmentCondition.start]
    funding.approve_payment(start, by=people["manager"])
    handle_pending()


def _final_report(award: Award) -> ProjectReport:
    project = db.session.scalar(sa.select(Project).where(Project.award_id == award.id))
    return next(r for r in project.reports if r.kind is ReportKind.final)


def _comparable(report) -> dict:
    data = report_data(report)
    data.pop("made_at")
    return data


def test_the_report_reconciles_with_the_ledger_to_the_ore(people, decided, drain):
    award = _book_award(people, decided, 400_000)
    _pay_start(people, award)
    year = decided.challenge.programme_year
    funding.book_admin_cost(year, 12_345_67, "Evaluators' fees", by=people["manager"])
    final = _final_report(award)
    projects.submit_report(final, FINAL, by=people["sme"])
    projects.approve_report(final, by=people["manager"])  # releases the last instalment
    db.session.commit()
    drain()

    programme = _programme(decided)
    report = services.build(programme, Period(periods.programme_start(programme), periods.today()))
    assert report.reconciled and len(report.checks) == 2 + 7 + 3, [
        (c.label, c.from_events, c.from_ledger) for c in report.checks
    ]
    live = live_balances()
    ledger = {
        kind: sum(v for (y, k, _), v in live.items() if k is kind and y == year.id) for kind in AccountKind
    }
    money = report.total
    assert money.allocation == -ledger[AccountKind.allocation] == year.allocation_ore
    assert money.paid == ledger[AccountKind.paid_out] == 400_000 * SEK  # both instalments
    assert money.committed == ledger[AccountKind.commitment] == 0
    assert money.admin_spent == ledger[AccountKind.admin_spent] == 12_345_67
    assert money.available == ledger[AccountKind.available]
    assert money.admin_share == pytest.approx(12_345_67 / year.allocation_ore)
    [funded] = report.funded
    assert (funded.awarded_ore, funded.paid_ore, funded.status) == (400_000 * SEK, 400_000 * SEK, "completed")
    # what the report says about the challenge, its selection and the results
    [line] = report.challenges
    assert (line.proposals, line.screened_out, line.awards, line.awarded_ore) == (2, 0, 1, 400_000 * SEK)
    assert report.owners == ["Steel Works AB"]
    assert report.smes == sorted(
        [people["sme"].membership.organisation.name, people["other_sme"].membership.organisation.name]
    )
    [selection] = report.selections
    assert [c.name for c in selection.criteria] == [c.name for c in decided.challenge.criteria]
    assert sum(
        sum(c.counts) + c.not_applicable for c in selection.criteria
    ) == report.reviews_submitted * len(selection.criteria)
    assert (
        report.result_totals["jobs_created"] == 3
        and report.result_totals["private_cofunding_ore"] == 150_000 * SEK
    )
    assert report.funding_by("area") == [(decided.challenge.area.label, 400_000 * SEK)]


def test_a_report_as_of_a_past_day_is_unchanged_by_later_events(people, decided, drain):
    past = utcnow() - timedelta(days=20)
    with clock_at(past):
        award = _book_award(people, decided, 300_000)
        _pay_start(people, award)
        funding.book_admin_cost(decided.challenge.programme_year, 5_000 * SEK, "Fees", by=people["manager"])
        handle_pending()
    programme = _programme(decided)
    period = Period(periods.programme_start(programme), local_day(past))
    before = _comparable(services.build(programme, period))
    start_amount = next(
        amount
        for condition, amount in funding.plan_for(300_000 * SEK)
        if condition is InstalmentCondition.start
    )
    assert before["money"]["total"]["paid_ore"] == start_amount < 300_000 * SEK
    assert before["funded_projects"][0]["status"] == "running" and not before["results"]["per_project"]

    # later: a new year opened, the administration cap changed, the final report approved (the rest
    # paid), more administration
    funding.add_year(programme, 2041, 1_000_000 * SEK, None, by=people["manager"])
    funding.update_programme(
        programme,
        admin_cap_basis_points=300,
        eur_rate_ore=programme.eur_rate_ore,
        return_deadline=programme.return_deadline,
        report_dates=[],
        by=people["manager"],
    )
    final = _final_report(award)
    projects.submit_report(final, FINAL, by=people["sme"])
    projects.approve_report(final, by=people["manager"])
    funding.book_admin_cost(decided.challenge.programme_year, 7_000 * SEK, "More fees", by=people["manager"])
    db.session.commit()
    drain()
    after = _comparable(services.build(programme, period))
    assert after == before
    now = services.build(programme, Period(period.start, periods.today()))
    assert now.total.paid == 300_000 * SEK and now.total.admin_spent == 12_000 * SEK and now.results
    assert [m.year for m in now.years] == [m["year"] for m in before["money"]["years"]] + [2041]


def _manager_report(make_browser, programme_id: int, **args):
    manager = make_browser("manager@agency.example.com")
    return manager, manager.get(f"/admin/programmes/{programme_id}/report", query_string=args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"start": "2026-03-01", "end": "2026-02-01"}, "The period ends before it starts."),
        ({"end": "1999-12-31"}, "The programme starts on"),
        ({"start": "1999-12-31"}, "The programme starts on"),
        ({"end": "2999-01-01"}, "a day that has begun"),
        ({"end": "31/03/2017"}, "Enter a date like 2016-10-15."),
    ],
)
def test_a_bad_period_is_refused_with_a_message(people, decided, make_browser, args, message):
    programme = _programme(decided)
    if "2026" in args.get("start", ""):  # a period inside the programme, the wrong way round
        first = periods.programme_start(programme)
        args = {
            "start": (first + timedelta(days=40)).isoformat(),
            "end": (first + timedelta(days=10)).isoformat(),
        }
    manager, page = _manager_report(make_browser, programme.id, **args)
    assert page.status_code == 400
    assert message in page.get_data(as_text=True)
    data = manager.get(f"/admin/programmes/{programme.id}/report.json", query_string=args)
    assert data.status_code == 400 and message in json.dumps(data.get_json())
    csv_page = manager.get(f"/admin/programmes/{programme.id}/report/projects.csv", query_string=args)
    assert csv_page.status_code == 400


def test_the_lessons_are_kept_with_the_report_of_their_day(people, decided, make_browser):
    programme = _programme(decided)
    day = periods.today().isoformat()
    manager, _ = _manager_report(make_browser, programme.id)
    url = f"/admin/programmes/{programme.id}/report/lessons"
    page_url = f"/admin/programmes/{programme.id}/report"
    refused = manager.submit(url, {"as_of": day, "text": "  "}, page_url=page_url)
    assert refused.status_code == 400 and "Write the lessons" in refused.get_data(as_text=True)
    refused = manager.submit(url, {"as_of": "someday", "text": "x"}, page_url=page_url)
    assert refused.status_code == 400 and "Enter a real date" in refused.get_data(as_text=True)
    for far, message in (("1999-01-01", "Lessons belong to a report"), ("2999-01-01", "Enter a date from")):
        refused = manager.submit(url, {"as_of": far, "text": "x"}, page_url=page_url)
        assert refused.status_code == 400 and message in refused.get_data(as_text=True), far
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ProgrammeLessons)) == 0
    saved = manager.submit(
        url, {"as_of": day, "text": "Short deadlines **hurt** small firms."}, page_url=page_url
    )
    assert saved.status_code == 303
    page = manager.get(saved.headers["Location"]).get_data(as_text=True)
    assert "<strong>hurt</strong>" in page
    report = manager.get(
        f"/admin/programmes/{programme.id}/report.json", query_string={"end": day}
    ).get_json()
    assert report["lessons"].startswith("Short")
    yesterday = (periods.today() - timedelta(days=1)).isoformat()
    other = manager.get(f"/admin/programmes/{programme.id}/report", query_string={"end": yesterday})
    assert "hurt" not in other.get_data(as_text=True)  # lessons belong to their report's day
    # saving again replaces the text
    manager.submit(url, {"as_of": day, "text": "Longer deadlines."}, page_url=page_url)
    db.session.rollback()
    assert [row.text for row in db.session.scalars(sa.select(ProgrammeLessons))] == ["Longer deadlines."]


def test_only_a_programme_manager_writes_the_lessons(people, decided, make_browser):
    programme = _programme(decided)
    sara = make_browser("sara@sensors.example.com")
    refused = sara.submit(
        f"/admin/programmes/{programme.id}/report/lessons",
        {"as_of": periods.today().isoformat(), "text": "Ours."},
        page_url="/projects",
    )
    assert refused.status_code == 403
    with pytest.raises(PermissionDenied):
        services.save_lessons(programme, periods.today(), "Ours.", by=people["sme"])
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ProgrammeLessons)) == 0


def test_the_report_exports_and_its_csv_cannot_carry_a_formula(people, decided, make_browser):
    _book_award(people, decided, 400_000)
    decided.challenge.title = '=HYPERLINK("http://evil.example")'
    db.session.commit()
    programme = _programme(decided)
    manager, page = _manager_report(make_browser, programme.id)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for heading in (
        "Challenges and proposals",
        "How the projects were selected",
        "Funded projects",
        "Results reported",
        "The money",
        "Reconciliation with the ledger",
        "Lessons",
    ):
        assert heading in html
    assert html.count("<svg viewBox") >= 4  # areas, themes, proposals per challenge, budget over time
    for name in ("challenges", "scores", "projects", "results", "money"):
        response = manager.get(f"/admin/programmes/{programme.id}/report/{name}.csv")
        assert response.status_code == 200 and response.mimetype == "text/csv", name
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
        assert rows[0], name
        assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row), name
    challenges = list(
        csv.DictReader(
            io.StringIO(
                manager.get(f"/admin/programmes/{programme.id}/report/challenges.csv")
                .get_data(as_text=True)
                .lstrip("\ufeff")
            )
        )
    )
    assert challenges[0]["challenge"].startswith("'=HYPERLINK")
    data = manager.get(f"/admin/programmes/{programme.id}/report.json").get_json()
    assert data["funded_projects"][0]["amount_ore"] == 400_000 * SEK
    assert all(check["agrees"] for check in data["reconciliation"])
    assert manager.get(f"/admin/programmes/{programme.id}/report/secrets.csv").status_code == 404


def test_who_sees_what(people, decided, make_browser, client):
    _book_award(people, decided, 400_000)
    db.session.commit()
    programme_id = _programme(decided).id
    public = [
        f"/programmes/{programme_id}",
        f"/programmes/{programme_id}/projects.csv",
        f"/programmes/{programme_id}/projects.json",
        "/programmes",
    ]
    managers_only = [
        f"/admin/programmes/{programme_id}/report",
        f"/admin/programmes/{programme_id}/report.json",
        f"/admin/programmes/{programme_id}/report/money.csv",
    ]
    for url in public:
        assert client.get(url).status_code == 200, url
    for url in managers_only:
        assert client.get(url).status_code == 302, url  # to the login page
    for email in ("sara@sensors.example.com", "owner@steel.example.com", "eva@evaluators.example.com"):
        browser = make_browser(email)
        for url in managers_only:
            assert browser.get(url).status_code == 403, (email, url)
    manager = make_browser("manager@agency.example.com")
    for url in managers_only:
        assert manager.get(url).status_code == 200, url
    assert client.get("/programmes/999999").status_code == 404


def test_the_public_list_shows_the_funded_projects_as_open_data(people, decided, client):
    award = _book_award(people, decided, 400_000)
    db.session.commit()
    programme_id = _programme(decided).id
    page = client.get(f"/programmes/{programme_id}").get_data(as_text=True)
    title = award.proposal.title
    assert title in page and "Sensors AB" in page and "400,000" in page and "Running" in page
    [row] = client.get(f"/programmes/{programme_id}/projects.json").get_json()["projects"]
    assert (row["title"], row["sme"], row["amount_ore"], row["status"]) == (
        title,
        "Sensors AB",
        400_000 * SEK,
        "running",
    )
    rows = list(
        csv.DictReader(
            io.StringIO(
                client.get(f"/programmes/{programme_id}/projects.csv").get_data(as_text=True).lstrip("\ufeff")
            )
        )
    )
    assert [(r["title"], r["amount_ore"]) for r in rows] == [(title, str(400_000 * SEK))]
    # the rejected proposal is nowhere
    assert decided.proposals["other_sme"].title not in page
