"""The public catalogue: filters, full-text search, sorting, the feed, and a fixed number of queries."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa

from challenges.calls.models import Challenge, ChallengeStatus, Topic, challenge_theme
from challenges.core.formatting import to_local
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.funding.models import ProgrammeYear
from tests.factories import make_challenge


def topic(name: str) -> Topic:
    return db.session.scalar(sa.select(Topic).where(Topic.name_en == name))


def add_published(n: int, owner, *, title: str = "Generic challenge", days: int = 30) -> None:
    """*n* published challenges written in bulk (the factory goes through every service)."""
    now = utcnow()
    year_id = db.session.scalar(sa.select(ProgrammeYear.id))
    rows = [
        dict(
            organisation_id=owner.organisation.id,
            programme_year_id=year_id,
            created_by_id=owner.id,
            status=ChallengeStatus.published,
            title=f"{title} {i}",
            summary="A summary.",
            description="A description of the work.",
            area_id=topic("Data").id,
            must_demonstrate="x",
            max_funding_ore=100_000_00,
            awards_planned=1,
            deadline=now + timedelta(days=days, minutes=i),
            agreement="x",
            offers=[],
            offers_details="",
            contact_name="x",
            contact_email="x@example.com",
            created_at=now,
            updated_at=now,
            published_at=now - timedelta(minutes=i),
        )
        for i in range(n)
    ]
    ids = db.session.scalars(sa.insert(Challenge).returning(Challenge.id), rows).all()
    db.session.execute(
        sa.insert(challenge_theme), [{"challenge_id": i, "topic_id": topic("Sensors").id} for i in ids]
    )
    db.session.commit()


@contextmanager
def counting_queries():
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)


@pytest.mark.parametrize(
    "url",
    [
        "/challenges",
        "/challenges?q=generic+descr&sort=newest",
        "/challenges?status=open&theme={sensors}&area={data}",
        "/challenges/feed.atom",
    ],
)
def test_catalogue_queries_do_not_grow_with_the_rows(people, client, url):
    url = url.format(sensors=topic("Sensors").id, data=topic("Data").id)
    add_published(10, people["owner"])
    with counting_queries() as small:
        assert client.get(url).status_code == 200
    add_published(990, people["owner"])
    with counting_queries() as large:
        response = client.get(url)
    assert response.status_code == 200
    assert len(small) == len(large), (small, large)
    assert len(large) <= 8


def test_search_finds_words_and_prefixes_in_title_summary_and_description(people, client):
    make_challenge(
        people["owner"],
        title="Predict roll wear",
        summary="Forecast wear of work rolls.",
        description="We log **vibration** every second.",
    )
    make_challenge(
        people["owner"],
        title="Inspect painted panels",
        summary="Find paint defects.",
        description="Cameras on a moving line.",
    )
    db.session.commit()

    def titles(query: str) -> list[str]:
        page = client.get("/challenges", query_string={"q": query}).get_data(as_text=True)
        return [t for t in ("Predict roll wear", "Inspect painted panels") if t in page]

    assert titles("roll") == ["Predict roll wear"]
    assert titles("forecast") == ["Predict roll wear"]  # summary
    assert titles("vibrat") == ["Predict roll wear"]  # description, prefix
    assert titles("PAINT defects") == ["Inspect painted panels"]  # every word must match
    assert titles("roll cameras") == []
    assert titles('") OR 1=1 --') == []  # operators are dropped; the words match nothing
    assert titles("*") == ["Predict roll wear", "Inspect painted panels"]  # no words: no search


def test_search_sees_edits_and_drops_deleted_rows(people, client):
    challenge = make_challenge(people["owner"], title="Hydraulic press monitoring")
    db.session.commit()
    assert "Hydraulic press" in client.get("/challenges?q=hydraulic").get_data(as_text=True)
    challenge.title = "Pneumatic press monitoring"
    db.session.commit()
    assert "Pneumatic press" in client.get("/challenges?q=pneumatic").get_data(as_text=True)
    assert "press monitoring" not in client.get("/challenges?q=hydraulic").get_data(as_text=True)


def test_filters_by_area_theme_status_and_deadline_window(people, client):
    soon = make_challenge(people["owner"], title="Soon", deadline=utcnow() + timedelta(days=3))
    later = make_challenge(
        people["owner"],
        title="Later",
        deadline=utcnow() + timedelta(days=60),
        area_id=topic("Knowledge and leadership").id,
        theme_ids=[topic("Simulation").id],
    )
    make_challenge(people["owner"], ChallengeStatus.closed, title="Finished")
    make_challenge(people["owner"], ChallengeStatus.draft, title="Secret draft")
    make_challenge(people["owner"], ChallengeStatus.submitted, title="Awaiting")
    db.session.commit()

    def shown(**args) -> set[str]:
        page = client.get("/challenges", query_string=args).get_data(as_text=True)
        return {t for t in ("Soon", "Later", "Finished", "Secret draft", "Awaiting") if f">{t}<" in page}

    assert shown() == {"Soon", "Later", "Finished"}
    assert shown(status="open") == {"Soon", "Later"}
    assert shown(status="closed") == {"Finished"}
    assert shown(area=topic("Knowledge and leadership").id) == {"Later"}
    assert shown(theme=topic("Simulation").id) == {"Later"}
    assert shown(theme=topic("Sensors").id) == {"Soon", "Finished"}
    window_end = to_local(soon.deadline).date() + timedelta(days=1)
    assert shown(to=window_end.isoformat(), status="open") == {"Soon"}
    assert shown(**{"from": to_local(later.deadline).date().isoformat()}) == {"Later"}
    assert shown(status="nonsense", to="not-a-date", area="x") == {"Soon", "Later", "Finished"}


def test_a_published_challenge_past_its_deadline_shows_as_closed_before_the_sweep(people, client):
    challenge = make_challenge(people["owner"], title="Just missed")
    challenge.deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert ">Just missed<" not in client.get("/challenges?status=open").get_data(as_text=True)
    assert ">Just missed<" in client.get("/challenges?status=closed").get_data(as_text=True)


def test_sorting_by_deadline_and_newest(people, client):
    first = make_challenge(people["owner"], title="Alpha", deadline=utcnow() + timedelta(days=40))
    make_challenge(people["owner"], title="Beta", deadline=utcnow() + timedelta(days=20))
    first.published_at = utcnow() - timedelta(days=5)
    db.session.commit()
    by_deadline = client.get("/challenges").get_data(as_text=True)
    assert by_deadline.index(">Beta<") < by_deadline.index(">Alpha<")
    newest = client.get("/challenges?sort=newest").get_data(as_text=True)
    assert newest.index(">Beta<") < newest.index(">Alpha<")
    first.published_at = utcnow()
    db.session.commit()
    newest = client.get("/challenges?sort=newest").get_data(as_text=True)
    assert newest.index(">Alpha<") < newest.index(">Beta<")


def test_pagination(people, client):
    add_published(45, people["owner"])
    page1 = client.get("/challenges").get_data(as_text=True)
    page3 = client.get("/challenges?page=3").get_data(as_text=True)
    assert "45 challenges" in page1 and "Page 1 of 3" in page1
    assert page1.count('class="card"') == 20 and page3.count('class="card"') == 5
    assert client.get("/challenges?page=99").status_code == 200


def test_a_broad_list_is_counted_up_to_a_limit_and_paged_that_far(people, client, monkeypatch):
    from challenges.core.pagecache import VERSION_KEY
    from challenges.extensions import get_redis

    add_published(45, people["owner"])
    monkeypatch.setattr("challenges.calls.views.COUNT_LIMIT", 40)
    with counting_queries() as statements:
        page1 = client.get("/challenges").get_data(as_text=True)
    count = next(s for s in statements if "count(" in s.lower())
    assert "LIMIT" in count.upper()  # the count stops at the limit instead of reading every match
    assert "More than 40 challenges: add a word or a filter" in page1 and "Page 1 of more than 2" in page1
    assert "45 challenges" not in page1
    page2 = client.get("/challenges?page=2").get_data(as_text=True)
    assert page2.count('class="card"') == 20 and "Next page" not in page2
    narrowed = client.get("/challenges?q=generic+44").get_data(as_text=True)  # under the limit: exact again
    assert 'role="status">1 challenge' in narrowed and "more than" not in narrowed.lower()
    monkeypatch.setattr("challenges.calls.views.COUNT_LIMIT", 45)  # exactly at the limit is still exact
    get_redis().incr(VERSION_KEY)  # the pages kept for visitors were counted to the other limit
    page1 = client.get("/challenges").get_data(as_text=True)
    assert "45 challenges" in page1 and "Page 1 of 3" in page1


def test_atom_feed_is_valid_xml_with_the_public_challenges(people, client):
    make_challenge(people["owner"], title="Feed me <now> & \x0b later")
    make_challenge(people["owner"], ChallengeStatus.draft, title="Not in the feed")
    db.session.commit()
    response = client.get("/challenges/feed.atom")
    assert response.content_type.startswith("application/atom+xml")
    root = ET.fromstring(response.data)  # noqa: S314 - our own response
    ns = {"a": "http://www.w3.org/2005/Atom"}
    titles = [e.findtext("a:title", namespaces=ns) for e in root.findall("a:entry", ns)]
    assert titles == ["Feed me <now> &  later"]
    link = root.find("a:entry/a:link", ns).get("href")
    assert link.startswith("https://localhost/challenges/")


@pytest.mark.parametrize(
    "query",
    [
        "area=%C2%B2",
        "theme=99999999999999999999999",
        "to=9999-12-31",
        "from=0001-01-01",
        "page=99999999999999999999",
        "page=-3",
        "endpoint=x&page=2",
        "q=%00%22*",
        "sort=drop+table",
        "status=%F0%9F%92%A5",
        "theme=1&theme=2&theme=x",
    ],
)
@pytest.mark.parametrize(
    "path", ["/challenges", "/challenges/feed.atom", "/challenges/mine", "/admin/challenges"]
)
def test_odd_query_strings_are_ignored_never_an_error(people, make_browser, query, path):
    b = make_browser()
    b.login("manager@agency.example.com" if path.startswith("/admin") else "owner@steel.example.com")
    assert b.get(f"{path}?{query}").status_code == 200, (path, query)


def test_repeated_theme_filters_survive_in_the_feed_link(people, client):
    page = client.get("/challenges?theme=1&theme=2&endpoint=x").get_data(as_text=True)
    assert 'href="/challenges/feed.atom?theme=1&amp;theme=2"' in page  # no stray endpoint argument


def test_the_window_and_the_full_text_index_give_the_same_pages_and_counts(people, monkeypatch):
    """A filter is first tried on the first WINDOW challenges of the list; when that does not settle
    the count, the full-text index finds the matches. Both ways must list and count the same."""
    from challenges.calls import catalogue
    from challenges.calls.catalogue import CatalogueFilter, catalogue_query, find

    owner, now = people["owner"], utcnow()
    year_id = db.session.scalar(sa.select(ProgrammeYear.id))
    areas, themes = topic("Data"), (topic("Sensors"), topic("Simulation"))
    words = ["hydrogen turbine", "timber", "hydrogen", "glacier melt"]
    rows = [
        dict(
            organisation_id=owner.organisation.id,
            programme_year_id=year_id,
            created_by_id=owner.id,
            status=ChallengeStatus.published,
            title=f"{words[i % 4] if i % 9 else 'rare glacier'} {i}",
            summary="A summary.",
            description="A description.",
            must_demonstrate="x",
            area_id=areas.id if i % 2 else topic("Policy and regulatory development").id,
            max_funding_ore=100_000_00,
            awards_planned=1,
            deadline=now + timedelta(days=1 + (i * 7) % 40),
            agreement="x",
            offers=[],
            offers_details="",
            contact_name="x",
            contact_email="x@example.com",
            created_at=now,
            updated_at=now,
            published_at=now - timedelta(hours=(i * 11) % 37),
        )
        for i in range(40)
    ]
    ids = db.session.scalars(sa.insert(Challenge).returning(Challenge.id), rows).all()
    db.session.execute(
        sa.insert(challenge_theme),
        [{"challenge_id": c, "topic_id": themes[i % 3 == 0].id} for i, c in enumerate(ids)],
    )
    db.session.commit()
    monkeypatch.setattr(catalogue, "WINDOW", 12)
    limit, per_page = 8, 4  # as in the catalogue, the count limit is a whole number of pages
    by_index = catalogue.count_matching
    paths = []

    def counted(*args, **kwargs):
        paths.append("index")
        return by_index(*args, **kwargs)

    monkeypatch.setattr(catalogue, "count_matching", counted)
    filters = [
        CatalogueFilter(),
        CatalogueFilter(q="hydrogen"),
        CatalogueFilter(q="glacier"),
        CatalogueFilter(q="rare"),
        CatalogueFilter(q="hydro turb"),
        CatalogueFilter(themes=[themes[0].id]),
        CatalogueFilter(area=areas.id, sort="newest"),
        CatalogueFilter(q="hydrogen", themes=[themes[1].id]),
        CatalogueFilter(q="nothing"),
        CatalogueFilter(deadline_to=to_local(now + timedelta(days=8)).date()),
        CatalogueFilter(q="timber", sort="newest"),
    ]
    for f in filters:
        expected = [c.id for c in db.session.scalars(catalogue_query(f, now)).unique()]
        found = find(f, now, limit)
        assert found.count == min(len(expected), limit + 1), f
        for offset in range(0, min(len(expected), limit), per_page):
            page = db.session.scalars(found.query.limit(per_page).offset(offset)).unique().all()
            assert [c.id for c in page] == expected[offset : offset + per_page], (f, offset)
    assert 0 < paths.count("index") < len(filters)  # both ways were taken
