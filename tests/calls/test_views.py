"""Drafting, approving and amending through the pages: good input saves, bad input changes nothing."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from challenges.calls import following, questions, services, topics
from challenges.calls.models import Challenge, ChallengeStatus, ChangeNote, Question, Topic
from challenges.core.errors import InvalidInput, ServiceError
from challenges.core.formatting import to_local
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.funding.models import ProgrammeYear
from tests.factories import make_challenge


def form_data(**changes) -> dict:
    by_name = {t.name_en: t for t in db.session.scalars(sa.select(Topic))}
    local = to_local(utcnow() + timedelta(days=20))
    data = {
        "programme_year": str(db.session.scalar(sa.select(ProgrammeYear.id))),
        "title": "Detect cracks in cast parts",
        "summary": "Find cracks before machining.",
        "description": "We cast **engine blocks**.",
        "area": str(by_name["Data"].id),
        "themes": [str(by_name["Sensors"].id), str(by_name["Simulation"].id)],
        "must_demonstrate": "A prototype.",
        "max_funding": "500 000",
        "awards_planned": "2",
        "deadline_date": local.date().isoformat(),
        "deadline_time": "12:00",
        "criteria-0-name": "Relevance",
        "criteria-0-weight": "60",
        "criteria-1-name": "Feasibility",
        "criteria-1-weight": "40",
        "agreement": "Results belong to the applicant.",
        "offers": ["data_sets", "mentoring"],
        "offers_details": "",
        "contact_name": "Olle Owner",
        "contact_email": "olle@steel.example.com",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def count() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Challenge))


def test_owner_drafts_a_challenge_with_stockholm_deadline(people, browser):
    browser.login("owner@steel.example.com")
    year = to_local(utcnow()).year + 1  # 31 March is always in summer time, and next year's is ahead
    data = form_data(deadline_date=f"{year}-03-31", deadline_time="23:59", max_funding="1 250 000,50")
    response = browser.submit("/challenges/new", data)
    assert response.status_code == 303, response.get_data(as_text=True)
    challenge = db.session.scalar(sa.select(Challenge))
    assert challenge.status is ChallengeStatus.draft
    assert challenge.deadline.isoformat() == f"{year}-03-31T21:59:00+00:00"  # CEST is UTC+2
    assert challenge.max_funding_ore == 125_000_050
    assert [(c.name, c.weight) for c in challenge.criteria] == [("Relevance", 60), ("Feasibility", 40)]
    assert challenge.offers == ["data_sets", "mentoring"]
    page = browser.get(f"/challenges/{challenge.id}").get_data(as_text=True)
    assert f"31 Mar {year} 23:59" in page and "<strong>engine blocks</strong>" in page


def test_new_challenge_form_has_default_criteria(people, browser):
    browser.login("owner@steel.example.com")
    page = browser.get("/challenges/new").get_data(as_text=True)
    assert 'value="Potential"' in page and 'value="40"' in page and 'value="Team and capacity"' in page


def test_preview_renders_markdown_and_saves_nothing(people, browser):
    browser.login("owner@steel.example.com")
    response = browser.submit(
        "/challenges/new", form_data(preview="1", description="# Big\n\n*soft* <script>x()</script>")
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Preview" in page
    assert "<h2>Big</h2>" in page and "<em>soft</em>" in page and "<script>x()" not in page
    assert count() == 0


def _in_two_hours() -> dict:
    """A deadline two hours from when the test runs (one reading of the clock)."""
    local = to_local(utcnow() + timedelta(hours=2))
    return {"deadline_date": local.date().isoformat(), "deadline_time": local.strftime("%H:%M")}


def _skipped_by_summer_time() -> dict:
    """02:30 on next year's last Sunday of March, when Stockholm's clocks jump from 02:00 to 03:00."""
    last = date(to_local(utcnow()).year + 1, 3, 31)
    return {
        "deadline_date": (last - timedelta(days=(last.weekday() + 1) % 7)).isoformat(),
        "deadline_time": "02:30",
    }


BAD_INPUT = [  # the changes to a good form, or what gives them when the test runs
    ("deadline in the past", {"deadline_date": "2020-01-01"}, "already passed"),
    ("deadline under 24 hours", _in_two_hours, "at least 24 hours"),
    ("unparseable date", {"deadline_date": "next friday"}, "Enter a real date"),
    ("impossible date", {"deadline_date": "2027-02-30"}, "Enter a real date"),
    ("unparseable time", {"deadline_time": "25:61"}, "Enter a time"),
    ("time skipped by summer time", _skipped_by_summer_time, "does not exist"),
    ("zero funding", {"max_funding": "0"}, "greater than zero"),
    ("negative funding", {"max_funding": "-5000"}, "greater than zero"),
    ("funding not a number", {"max_funding": "lots"}, "Enter an amount in kronor"),
    ("funding above the allocation", {"max_funding": "8 000 001"}, "allocation"),
    ("negative weight", {"criteria-0-weight": "-5"}, "from 0 to 100"),
    ("all weights zero", {"criteria-0-weight": "0", "criteria-1-weight": "0"}, "weight above zero"),
    ("criterion without weight", {"criteria-1-weight": ""}, "both a name and a weight"),
    ("title over 200 characters", {"title": "x" * 201}, "at most 200"),
    ("no theme", {"themes": None}, "at least one technology theme"),
    ("unknown area", {"area": "99999"}, "Not a valid choice"),
    ("missing agreement", {"agreement": ""}, "challenge agreement"),
    ("title with a line break", {"title": "One\r\nBcc: x@example.com"}, "single line"),
]


@pytest.mark.parametrize(("case", "changes", "message"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_refused_with_a_message_and_keeps_what_was_typed(
    people, browser, case, changes, message
):
    browser.login("owner@steel.example.com")
    response = browser.submit("/challenges/new", form_data(**(changes() if callable(changes) else changes)))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert message in page, case
    assert 'class="error-summary"' in page
    assert 'value="Feasibility"' in page  # what was typed is still there
    assert count() == 0


def test_every_refused_field_is_shown_at_once(people, browser):
    browser.login("owner@steel.example.com")
    page = browser.submit("/challenges/new", form_data(deadline_date="2020-01-01", max_funding="0")).get_data(
        as_text=True
    )
    assert "already passed" in page and "greater than zero" in page
    assert count() == 0


def test_a_date_out_of_range_is_a_message_not_an_error(people, browser):
    browser.login("owner@steel.example.com")
    for far in ("0001-01-01", "9000-06-01"):
        response = browser.submit("/challenges/new", form_data(deadline_date=far, deadline_time="00:30"))
        assert response.status_code == 200 and "Enter a date from" in response.get_data(as_text=True)
    assert count() == 0


def test_the_owner_page_has_no_duplicate_ids(people, browser):
    from collections import Counter

    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    questions.ask_question(challenge, "One?", by=people["sme"])
    questions.ask_question(challenge, "Two?", by=people["sme"])
    db.session.commit()
    browser.login("owner@steel.example.com")
    page = browser.get(f"/challenges/{challenge.id}").get_data(as_text=True)
    ids = Counter(re.findall(r'\sid="([^"]+)"', page))
    assert [i for i, n in ids.items() if n > 1] == []


def test_editing_a_draft_keeps_the_rules(people, browser):
    challenge = make_challenge(people["owner"], ChallengeStatus.draft)
    db.session.commit()
    browser.login("colleague@steel.example.com")
    form = browser.get(f"/challenges/{challenge.id}/edit").get_data(as_text=True)
    assert 'value="Detect cracks in cast parts"' in form and 'value="500000"' in form
    response = browser.submit(
        f"/challenges/{challenge.id}/edit", form_data(title="Cracks, revised", max_funding="0")
    )
    assert "greater than zero" in response.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(Challenge, challenge.id).title == "Detect cracks in cast parts"
    response = browser.submit(f"/challenges/{challenge.id}/edit", form_data(title="Cracks, revised"))
    assert response.status_code == 303
    db.session.rollback()
    assert db.session.get(Challenge, challenge.id).title == "Cracks, revised"


def test_submit_approve_and_the_timeline(people, make_browser, drain, smtp):
    challenge = make_challenge(people["owner"], ChallengeStatus.draft)
    db.session.commit()
    owner, manager = make_browser(), make_browser()
    owner.login("owner@steel.example.com")
    page = f"/challenges/{challenge.id}"
    assert owner.submit(f"{page}/submit", {}, page_url=page).status_code == 303
    drain()
    assert [m["Subject"] for m in smtp.to("manager@agency.example.com")] == [
        "A challenge is waiting for your approval"
    ]

    manager.login("manager@agency.example.com")
    response = manager.submit(f"{page}/approve", {}, page_url=page, follow_redirects=True)
    assert "The challenge is published." in response.get_data(as_text=True)
    timeline = manager.get(page).get_data(as_text=True)
    for entry in ("Draft created", "Submitted for approval", "Approved and published"):
        assert entry in timeline
    assert "Programme Manager" in timeline  # the actor, for the owner and the programme

    public = make_browser().get(page).get_data(as_text=True)
    assert "Approved and published" in public and "Submitted for approval" not in public


def test_a_step_not_in_the_table_is_refused_with_a_message(people, browser):
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    db.session.commit()
    browser.login("manager@agency.example.com")
    page = f"/challenges/{challenge.id}"
    response = browser.submit(f"{page}/archive", {}, page_url=page, follow_redirects=True)
    assert "cannot go from" in response.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(Challenge, challenge.id).status is ChallengeStatus.published


def test_approval_by_anyone_but_a_manager_is_forbidden(people, make_browser):
    challenge = make_challenge(people["owner"], ChallengeStatus.submitted)
    db.session.commit()
    page = f"/challenges/{challenge.id}"
    for who in ("owner@steel.example.com", "sara@sensors.example.com", "eva@evaluators.example.com"):
        b = make_browser()
        b.login(who)
        token = b.csrf("/challenges")
        response = b.client.post(
            f"{page}/approve", data={"csrf_token": token}, headers={"Referer": "https://localhost/challenges"}
        )
        assert response.status_code in (403, 404), who
    db.session.rollback()
    assert db.session.get(Challenge, challenge.id).status is ChallengeStatus.submitted


def test_return_with_comment_reaches_the_owner(people, browser, drain, smtp):
    challenge = make_challenge(people["owner"], ChallengeStatus.submitted)
    db.session.commit()
    browser.login("manager@agency.example.com")
    page = f"/challenges/{challenge.id}"
    empty = browser.submit(f"{page}/return", {"comment": " "}, page_url=page)
    assert "Say what the owner should change." in empty.get_data(as_text=True)
    assert (
        browser.submit(f"{page}/return", {"comment": "Name the data format."}, page_url=page).status_code
        == 303
    )
    drain()
    mail = next(m for m in smtp.to("owner@steel.example.com") if "returned" in m["Subject"])
    assert "Name the data format." in mail.get_body(("plain",)).get_content()
    assert "Detect cracks" not in mail["Subject"]  # no user text in headers


def test_extension_moves_later_only_and_tells_followers(people, make_browser, drain, smtp):
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    db.session.commit()
    sme = make_browser()
    sme.login("sara@sensors.example.com")
    page = f"/challenges/{challenge.id}"
    assert sme.submit(f"{page}/follow", {}, page_url=page).status_code == 303

    owner = make_browser()
    owner.login("owner@steel.example.com")
    current = to_local(challenge.deadline)
    earlier = owner.submit(
        f"{page}/deadline",
        {"deadline_date": (current - timedelta(days=1)).date().isoformat(), "deadline_time": "12:00"},
        page_url=page,
    )
    assert "never shortened" in earlier.get_data(as_text=True)
    later = (current + timedelta(days=7)).date().isoformat()
    response = owner.submit(
        f"{page}/deadline",
        {"deadline_date": later, "deadline_time": "15:00", "reason": "More time for tests."},
        page_url=page,
    )
    assert response.status_code == 303
    db.session.rollback()
    challenge = db.session.get(Challenge, challenge.id)
    assert to_local(challenge.deadline).strftime("%Y-%m-%d %H:%M") == f"{later} 15:00"
    note = db.session.scalar(sa.select(ChangeNote))
    assert note.old_deadline < note.new_deadline == challenge.deadline
    drain()
    mail = smtp.to("sara@sensors.example.com")
    assert [m["Subject"] for m in mail] == ["A challenge has a new deadline"]
    assert "More time for tests." in mail[0].get_body(("plain",)).get_content()


def test_clarification_is_appended_with_its_date(people, browser, drain, smtp):
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    db.session.commit()
    browser.login("owner@steel.example.com")
    page = f"/challenges/{challenge.id}"
    assert (
        browser.submit(
            f"{page}/clarifications", {"text": "Parts weigh up to **40 kg**."}, page_url=page
        ).status_code
        == 303
    )
    public = browser.get(page).get_data(as_text=True)
    assert "Changes since publication" in public and "<strong>40 kg</strong>" in public
    assert "We cast" in public  # the published text itself is unchanged


def test_questions_are_answered_in_public_without_the_asker(people, make_browser, drain, smtp):
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    db.session.commit()
    page = f"/challenges/{challenge.id}"
    sme = make_browser()
    sme.login("sara@sensors.example.com")
    assert sme.submit(f"{page}/questions", {"text": ""}, page_url=page).status_code == 200
    assert (
        sme.submit(f"{page}/questions", {"text": "May we bring our own camera?"}, page_url=page).status_code
        == 303
    )
    anonymous = make_browser()
    assert "May we bring our own camera?" not in anonymous.get(page).get_data(as_text=True)
    drain()
    assert "A question about your challenge" in [m["Subject"] for m in smtp.to("owner@steel.example.com")]

    question = db.session.scalar(sa.select(Question))
    owner = make_browser()
    owner.login("owner@steel.example.com")
    response = owner.submit(
        f"{page}/questions/{question.id}/answer", {f"q{question.id}-text": "Yes."}, page_url=page
    )
    assert response.status_code == 303
    public = anonymous.get(page).get_data(as_text=True)
    assert "May we bring our own camera?" in public and "Yes." in public
    assert "Sara" not in public and "sara@sensors" not in public and "Sensors AB" not in public
    drain()
    # The asker's organisation follows the challenge from the moment it asked.
    assert [m["Subject"] for m in smtp.to("sara@sensors.example.com")] == [
        "A question about a challenge has been answered"
    ]


def test_owners_see_their_own_drafts_only(people, make_browser):
    mine = make_challenge(people["owner"], ChallengeStatus.draft, title="Ours")
    make_challenge(people["other_owner"], ChallengeStatus.draft, title="Theirs")
    db.session.commit()
    b = make_browser()
    b.login("colleague@steel.example.com")
    listing = b.get("/challenges/mine").get_data(as_text=True)
    assert "Ours" in listing and "Theirs" not in listing
    other = make_browser()
    other.login("owner@cars.example.com")
    assert other.get(f"/challenges/{mine.id}").status_code == 404
    manager = make_browser()
    manager.login("manager@agency.example.com")
    everything = manager.get("/admin/challenges?status=all").get_data(as_text=True)
    assert "Ours" in everything and "Theirs" in everything


def test_manager_configures_topics(people, browser):
    browser.login("manager@agency.example.com")
    response = browser.submit(
        "/admin/topics",
        {"kind": "theme", "name_en": "Quantum sensing", "name_sv": "Kvantsensorer", "active": "y"},
    )
    assert response.status_code == 303
    topic = db.session.scalar(sa.select(Topic).where(Topic.name_en == "Quantum sensing"))
    duplicate = browser.submit(
        "/admin/topics", {"kind": "theme", "name_en": "Quantum sensing", "name_sv": "X"}
    )
    assert "already one with this name" in duplicate.get_data(as_text=True)
    url = f"/admin/topics/{topic.id}"
    assert browser.submit(url, {"name_en": "Quantum sensing", "name_sv": "Kvantsensorer"}).status_code == 303
    db.session.rollback()
    assert db.session.get(Topic, topic.id).active is False  # retired: an unticked box


def test_the_xss_corpus_is_harmless_on_the_challenge_page(people, client):
    from tests.core.test_markdown import CORPUS, Collector

    text = "\n\n".join(c for c in CORPUS if "\x00" not in c)  # forms drop NUL before services see it
    challenge = make_challenge(
        people["owner"], description=text, must_demonstrate=text, agreement=text, offers_details=text
    )
    db.session.commit()
    parsed = Collector()
    parsed.feed(client.get(f"/challenges/{challenge.id}").get_data(as_text=True))
    for tag, attrs in parsed.tags:
        assert tag not in {"script", "img", "iframe", "svg", "object", "style", "base", "meta"} or (
            tag == "meta" and {"charset", "name"} & {a for a, _v in attrs}
        ), tag
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src", "action"):
                assert (
                    not "".join((value or "").split())
                    .lower()
                    .startswith(("javascript:", "vbscript:", "data:"))
                )


def test_a_text_stored_before_the_bounds_is_shown_as_written(people, client):
    """The forms refuse such texts now; one saved before still shows, as plain text, and fast."""
    challenge = make_challenge(
        people["owner"], description="- " * 3000 + "deep", must_demonstrate="[" * 20_000
    )
    db.session.commit()
    response = client.get(f"/challenges/{challenge.id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<p>" + "- " * 3000 + "deep</p>" in page and "<p>" + "[" * 20_000 + "</p>" in page


def test_nul_characters_are_dropped_not_a_database_error(people, browser):
    browser.login("owner@steel.example.com")
    response = browser.submit("/challenges/new", form_data(title="Cracks\x00 in parts", description="A\x00B"))
    assert response.status_code == 303
    challenge = db.session.scalar(sa.select(Challenge))
    assert (challenge.title, challenge.description) == ("Cracks in parts", "AB")


def test_a_retired_area_stays_on_its_challenge_but_is_refused_for_new_ones(people):
    from tests.factories import challenge_content

    challenge = make_challenge(people["owner"], ChallengeStatus.draft)
    area = challenge.area
    topics.save_topic(
        area, kind=area.kind, name_en=area.name_en, name_sv=area.name_sv, active=False, by=people["manager"]
    )
    services.update_challenge(
        challenge, challenge_content(title="Still in the retired area"), by=people["owner"]
    )
    assert challenge.area_id == area.id
    with pytest.raises(InvalidInput) as refused:
        services.create_challenge(challenge_content(), by=people["owner"])
    assert "area" in refused.value.errors


def test_follow_choices_keep_only_offered_topics_and_unfollow_works(people, browser):
    by_name = {t.name_en: t for t in db.session.scalars(sa.select(Topic))}
    retired = by_name["Simulation"]
    retired.active = False
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    db.session.commit()
    following.set_followed_topics([by_name["Sensors"].id, retired.id, 99999], by=people["sme"])
    assert following.followed_topic_ids(people["sme"].organisation) == {by_name["Sensors"].id}

    browser.login("sara@sensors.example.com")
    page = f"/challenges/{challenge.id}"
    browser.submit(f"{page}/follow", {}, page_url=page)
    assert "Stop following this challenge" in browser.get(page).get_data(as_text=True)
    browser.submit(f"{page}/unfollow", {}, page_url=page)
    db.session.rollback()
    assert not following.is_following(people["sme"].organisation, challenge)


def test_followers_are_told_of_a_clarification(people, browser, drain, smtp):
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    following.follow_challenge(challenge, by=people["sme"])
    db.session.commit()
    drain()
    smtp.reset()
    browser.login("owner@steel.example.com")
    page = f"/challenges/{challenge.id}"
    browser.submit(f"{page}/clarifications", {"text": "Parts weigh up to 40 kg."}, page_url=page)
    drain()
    [mail] = smtp.to("sara@sensors.example.com")
    assert mail["Subject"] == "A challenge has a clarification"
    assert "Parts weigh up to 40 kg." in mail.get_body(("plain",)).get_content()


def test_a_question_is_answered_once(people):
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    question = questions.ask_question(challenge, "Which protocol?", by=people["sme"])
    questions.answer_question(question, "OPC UA.", by=people["owner"])
    db.session.commit()
    with pytest.raises(ServiceError, match="already been answered"):
        questions.answer_question(question, "Modbus, after all.", by=people["colleague"])
    db.session.rollback()
    assert db.session.get(Question, question.id).answer == "OPC UA."
