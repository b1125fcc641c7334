"""Public pages kept for visitors: served again until what they show changes or their time runs out,
never to people who are logged in, never with someone else's messages or tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from challenges.calls import services as calls
from challenges.calls.models import Challenge
from challenges.core.models import utcnow
from challenges.core.pagecache import PAGE_PREFIX, VERSION_KEY
from challenges.extensions import db, get_redis
from tests.calls.test_catalogue import counting_queries
from tests.factories import make_challenge


def _kept_keys() -> list[bytes]:
    return list(get_redis().scan_iter(f"{PAGE_PREFIX}*"))


def test_a_visitor_gets_the_kept_page_until_a_change_is_committed(people, client):
    challenge = make_challenge(people["owner"], title="Kept challenge")
    db.session.commit()
    url = f"/challenges/{challenge.id}"
    first = client.get(url)
    assert first.status_code == 200 and "Kept challenge" in first.get_data(as_text=True)
    with counting_queries() as statements:
        again = client.get(url)
    assert statements == [] and again.get_data() == first.get_data()  # from the kept page, no SQL
    assert again.headers["Content-Security-Policy"] == first.headers["Content-Security-Policy"]
    assert "csrf_token" not in first.get_data(as_text=True) and "Set-Cookie" not in first.headers

    calls.add_clarification(challenge, "The line runs at 40 m/min.", by=people["owner"])
    db.session.commit()
    with counting_queries() as statements:
        renewed = client.get(url).get_data(as_text=True)
    assert statements and "The line runs at 40 m/min." in renewed
    catalogue = client.get("/challenges").get_data(as_text=True)
    db.session.execute(
        sa.update(Challenge).where(Challenge.id == challenge.id).values(title="Renamed in bulk")
    )
    db.session.commit()  # a bulk update of a table the pages show renews them too
    assert "Renamed in bulk" in client.get("/challenges").get_data(as_text=True) != catalogue


def test_a_page_is_kept_once_whatever_arguments_its_view_does_not_read(people, client, app, monkeypatch):
    make_challenge(people["owner"], title="One copy")
    db.session.commit()
    get_redis().flushdb()
    plain = client.get("/challenges?status=open").get_data()
    for junk in ("&utm_source=x", "&fresh=1", "&fresh=2&utm_medium=y"):
        with counting_queries() as statements:
            assert client.get(f"/challenges?status=open{junk}").get_data() == plain
        assert statements == []
    assert len(_kept_keys()) == 1
    client.get("/challenges?status=closed")  # an argument it reads is another page
    assert len(_kept_keys()) == 2
    monkeypatch.setitem(app.config, "PAGE_CACHE_SECONDS", 0)  # the operator keeps none
    get_redis().flushdb()
    with counting_queries() as statements:
        client.get("/challenges?status=open")
    assert statements and _kept_keys() == []


def test_a_kept_page_holds_no_argument_its_view_does_not_read(people, client):
    challenge = make_challenge(people["owner"])
    db.session.commit()
    get_redis().flushdb()
    url = f"/challenges/{challenge.id}"
    for first in (f"{url}?gclid=SECRET-TOKEN", "/challenges?status=open&utm_source=SECRET-TOKEN"):
        page = client.get(first).get_data(as_text=True)  # rendered now, and kept for everyone
        assert "SECRET-TOKEN" not in page
    page = client.get(url).get_data(as_text=True)
    assert "SECRET-TOKEN" not in page and f'name="next" value="{url}"' in page  # the language switch
    catalogue = client.get("/challenges?status=open").get_data(as_text=True)
    assert "SECRET-TOKEN" not in catalogue and 'name="next" value="/challenges?status=open"' in catalogue


def test_every_value_of_an_argument_the_view_reads_is_in_the_key(people, client):
    from tests.calls.test_catalogue import topic

    make_challenge(people["owner"], title="Simulated", theme_ids=[topic("Simulation").id])
    make_challenge(people["owner"], title="Measured", theme_ids=[topic("Sensors").id])
    db.session.commit()
    get_redis().flushdb()
    nonsense = "&".join(["theme=x"] * 20)  # values the view ignores, as many as it reads
    every = client.get(f"/challenges?{nonsense}").get_data(as_text=True)
    assert ">Simulated<" in every and ">Measured<" in every
    one = client.get(f"/challenges?{nonsense}&theme={topic('Simulation').id}").get_data(as_text=True)
    assert ">Simulated<" in one and ">Measured<" not in one


def test_people_who_are_logged_in_get_their_own_page_every_time(people, client, make_browser):
    challenge = make_challenge(people["owner"])
    db.session.commit()
    url = f"/challenges/{challenge.id}"
    assert "Log in" in client.get(url).get_data(as_text=True)  # kept for visitors
    sme = make_browser("sara@sensors.example.com")
    for _ in range(2):
        with counting_queries() as statements:
            page = sme.get(url).get_data(as_text=True)
        assert statements and "Log out" in page and "Send the question" in page
    visitor = client.get(url).get_data(as_text=True)
    assert "Log out" not in visitor and "Send the question" not in visitor


def test_a_visitor_with_a_message_waiting_gets_a_fresh_page_with_it(people, client, make_browser):
    challenge = make_challenge(people["owner"])
    db.session.commit()
    url = f"/challenges/{challenge.id}"
    client.get(url)  # kept
    b = make_browser("sara@sensors.example.com")
    b.submit("/logout", {})  # logging out leaves a message for the next page
    page = b.get(url).get_data(as_text=True)
    assert 'class="flash' in page
    assert 'class="flash' not in client.get(url).get_data(as_text=True)


def test_a_kept_page_lasts_no_longer_than_the_deadline_it_shows(people, client):
    soon = make_challenge(people["owner"], title="Closing soon")
    soon.deadline = utcnow() + timedelta(seconds=20)
    later = make_challenge(people["owner"], title="Closing later")
    db.session.commit()
    get_redis().flushdb()
    client.get(f"/challenges/{later.id}")
    [key] = _kept_keys()
    assert 20 < get_redis().ttl(key) <= 60  # the longest a page is kept
    get_redis().flushdb()
    client.get(f"/challenges/{soon.id}")
    client.get("/challenges")  # the list changes when any of its challenges closes
    assert [get_redis().ttl(key) <= 20 for key in _kept_keys()] == [True, True]


def test_languages_are_kept_apart(people, client):
    make_challenge(people["owner"])
    db.session.commit()
    english = client.get("/challenges", headers={"Accept-Language": "en"}).get_data(as_text=True)
    swedish = client.get("/challenges", headers={"Accept-Language": "sv"}).get_data(as_text=True)
    assert '<html lang="en">' in english and '<html lang="sv">' in swedish
    assert client.get("/challenges", headers={"Accept-Language": "en"}).get_data(as_text=True) == english


def test_a_visitor_switches_language_without_a_token_and_a_member_needs_one(people, client, make_browser):
    response = client.post("/language", data={"language": "sv", "next": "/challenges"})
    assert response.status_code == 303 and response.headers["Location"] == "/challenges"
    assert '<html lang="sv">' in client.get("/challenges").get_data(as_text=True)
    sme = make_browser("sara@sensors.example.com")
    assert sme.client.post("/language", data={"language": "sv"}).status_code == 400  # no token
    assert sme.submit("/language", {"language": "sv", "next": "/"}).status_code == 303
    db.session.expire_all()
    assert people["sme"].language == "sv"


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://elsewhere.example"},
    ],
)
def test_another_sites_post_cannot_switch_the_language_or_touch_the_cookie(client, headers):
    # Another site's form arrives without the Lax session cookie: answering it with a new
    # session would log out whoever is logged in on this browser.
    response = client.post("/language", data={"language": "sv", "next": "/challenges"}, headers=headers)
    assert response.status_code == 403
    assert "can only be changed from this site" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert '<html lang="en">' in client.get("/challenges", headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )


def test_a_post_from_this_sites_page_switches_the_language(client):
    response = client.post(
        "/language",
        data={"language": "sv", "next": "/challenges"},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": "https://localhost"},
    )
    assert response.status_code == 303


@pytest.mark.parametrize(
    "target",
    [
        "//elsewhere.example/x",
        "/\t/elsewhere.example",
        "/\\elsewhere.example",
        "https://elsewhere.example/",
        "/\n/elsewhere.example",
        "challenges",
    ],
)
def test_the_language_switch_sends_the_browser_nowhere_else(client, target):
    response = client.post("/language", data={"language": "sv", "next": target})
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_pages_are_rendered_when_redis_is_away(people, client, redis_server):
    challenge = make_challenge(people["owner"], title="Without Redis")
    db.session.commit()
    redis_server.stop()
    try:
        assert "Without Redis" in client.get(f"/challenges/{challenge.id}").get_data(as_text=True)
        assert client.get("/challenges").status_code == 200
    finally:
        redis_server.start()
    assert get_redis().get(VERSION_KEY) is None  # Redis came back empty: pages are rendered and kept again
    client.get("/challenges")
    assert _kept_keys()


def test_a_page_that_gave_a_visitor_a_token_or_a_message_is_not_kept(people, client, monkeypatch):
    from flask import flash
    from flask_wtf.csrf import generate_csrf

    from challenges.calls import views

    challenge = make_challenge(people["owner"])
    db.session.commit()
    render = views._detail
    for personal in (generate_csrf, lambda: flash("Just for you")):
        get_redis().flushdb()

        def detail(*args, personal=personal, **kwargs):
            personal()  # a form's token in the session, or a message for this visitor
            return render(*args, **kwargs)

        monkeypatch.setattr(views, "_detail", detail)
        assert client.get(f"/challenges/{challenge.id}").status_code == 200
        assert _kept_keys() == []
