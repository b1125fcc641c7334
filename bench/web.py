"""Web pages under gunicorn, against a minimal Flask + SQLAlchemy + Jinja page, as the data grows.

    python -m bench.web [--scales 1000:10000 10000:100000 100000:100000] [--seconds 10] [--connections 4]

The demo programme is seeded, then grown in steps to each scale's number of challenges and
proposals (bulk inserts copying a published demo challenge, its themes and criteria, and a
submitted demo proposal with its version, spread over generated companies). At each step, with
gunicorn (2 sync workers) and Debian's ``wrk`` on loopback, it measures the requests per second of
four pages:

- the catalogue, with a search word and a theme filter (the word is in one title in eight);
- a challenge page (an open demo challenge with its questions and history);
- an SME's proposal list (Sensorik's Sara, logged in);
- an evaluator's review page (Karin's open assignment);

and of the minimal page, which lists 20 public challenges with their company by deadline (as many
rows as a catalogue page). A visitor gets the catalogue and a challenge page from the pages kept for
visitors; each is also measured *rendered*, from a second gunicorn started with PAGE_CACHE_SECONDS=0
(it keeps no page), so that every request renders the page. It prints
each page's SQL statement count (counted in-process, once per page and scale), its rate against the
minimal page's at the same scale, and its rate at the first scale against its rate at the last (at
most 1.3 is the target: no cost growing with the data). The peak resident memory of each gunicorn
worker of both servers is read at the end. Every response must be a 200.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from redis import Redis

from bench._services import fresh_database, gunicorn, platform
from challenges.core.pagecache import VERSION_KEY

SEARCH_WORDS = ("hydrogen", "timber", "battery", "drone", "textile", "recycling", "ceramic", "glacier")
SME = "sara.nilsson@sensorik.example.com"
EVALUATOR = "karin.holm@evaluators.example.com"


# --- data -----------------------------------------------------------------------------------------


def _counts(connection) -> tuple[int, int]:
    return (
        connection.scalar(sa.text("SELECT count(*) FROM challenge")),
        connection.scalar(sa.text("SELECT count(*) FROM proposal")),
    )


def _columns(connection, table: str) -> list[str]:
    """The table's columns that take a value on insert (not the key, not generated columns)."""
    return [
        name
        for (name,) in connection.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns WHERE table_name = :t AND column_name <> 'id' "
                "AND is_generated = 'NEVER' ORDER BY ordinal_position"
            ),
            {"t": table},
        )
    ]


def _copy(
    connection,
    table: str,
    template: str,
    series: str,
    overrides: dict[str, str],
    params: dict,
    conflict: str = "",
) -> None:
    """INSERT INTO *table* one copy of the *template* row per number in *series*, with *overrides*."""
    columns = _columns(connection, table)
    values = ", ".join(overrides.get(c, f"t.{c}") for c in columns)
    connection.execute(
        sa.text(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} "  # noqa: S608 - our names
            f"FROM {table} t CROSS JOIN {series} WHERE {template} {conflict}"
        ),
        params,
    )


def grow(url: str, challenges: int, proposals: int) -> None:
    """Bring the database up to *challenges* challenges and *proposals* proposals."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as c:
        have_challenges, have_proposals = _counts(c)
        template = c.scalar(
            sa.text(
                "SELECT id FROM challenge WHERE status = 'published' AND deadline > now() ORDER BY id LIMIT 1"
            )
        )
        proposal = c.scalar(
            sa.text(
                "SELECT p.id FROM proposal p JOIN proposal_version v ON v.proposal_id = p.id "
                "WHERE p.status = 'submitted' ORDER BY p.id LIMIT 1"
            )
        )
        owners = max(10, challenges // 20)
        smes = 2000
        for kind, count, prefix in (("industrial", owners, "71"), ("sme", smes, "72")):
            c.execute(
                sa.text(
                    "INSERT INTO organisation (name, org_number, kind, staff_headcount, annual_turnover_ore, "
                    "balance_sheet_total_ore, created_at) SELECT :name || ' ' || g, :prefix || lpad(g::text, 4, '0') "
                    "|| '-' || lpad(g::text, 4, '0'), :kind, CASE WHEN :sme THEN 40 END, "
                    "CASE WHEN :sme THEN 5000000000 END, CASE WHEN :sme THEN 3000000000 END, now() "
                    "FROM generate_series(1, :count) g ON CONFLICT (org_number) DO NOTHING"
                ),
                {
                    "name": "Bench owner" if kind == "industrial" else "Bench SME",
                    "prefix": prefix,
                    "kind": kind,
                    "sme": kind == "sme",
                    "count": count,
                },
            )
        owner_ids = [
            i
            for (i,) in c.execute(
                sa.text("SELECT id FROM organisation WHERE name LIKE 'Bench owner %' ORDER BY id")
            )
        ]
        sme_ids = [
            i
            for (i,) in c.execute(
                sa.text("SELECT id FROM organisation WHERE name LIKE 'Bench SME %' ORDER BY id")
            )
        ]
        if challenges > have_challenges:
            first = c.scalar(sa.text("SELECT coalesce(max(id), 0) FROM challenge")) + 1
            series = "generate_series(CAST(:start AS integer), CAST(:stop AS integer)) g"
            _copy(
                c,
                "challenge",
                "t.id = :template",
                series,
                {
                    "organisation_id": "(CAST(:owners AS integer[]))[1 + g % cardinality(CAST(:owners AS integer[]))]",
                    "title": "(CAST(:words AS text[]))[1 + g % 8] || ' challenge ' || g",
                    "deadline": "now() + interval '2 days' + (g % 90) * interval '1 day'",
                    "published_at": "now() - (g % 60) * interval '1 day'",
                    "created_at": "now() - (g % 60) * interval '1 day'",
                    "updated_at": "now() - (g % 60) * interval '1 day'",
                },
                {
                    "template": template,
                    "start": have_challenges + 1,
                    "stop": challenges,
                    "owners": owner_ids,
                    "words": list(SEARCH_WORDS),
                },
            )
            new = "(SELECT id FROM challenge WHERE id >= :first) n"
            c.execute(
                sa.text(
                    f"INSERT INTO challenge_theme (challenge_id, topic_id) SELECT n.id, t.topic_id "  # noqa: S608
                    f"FROM challenge_theme t CROSS JOIN {new} WHERE t.challenge_id = :template"
                ),
                {"template": template, "first": first},
            )
            _copy(
                c,
                "challenge_criterion",
                "t.challenge_id = :template",
                new,
                {"challenge_id": "n.id"},
                {"template": template, "first": first},
            )
        if proposals > have_proposals:
            first = c.scalar(sa.text("SELECT coalesce(max(id), 0) FROM proposal")) + 1
            bench_challenges = [
                i
                for (i,) in c.execute(
                    sa.text("SELECT id FROM challenge WHERE title LIKE '% challenge %' ORDER BY id")
                )
            ]
            missing, start = proposals - have_proposals, first
            while missing > 0:  # one proposal per company and challenge: a pair drawn twice is skipped
                _copy(
                    c,
                    "proposal",
                    "t.id = :template",
                    "generate_series(CAST(:start AS integer), CAST(:stop AS integer)) g",
                    {
                        "challenge_id": "(CAST(:challenges AS integer[]))[1 + g % cardinality(CAST(:challenges AS "
                        "integer[]))]",
                        "organisation_id": "(CAST(:smes AS integer[]))[1 + (g * 7919) % cardinality(CAST(:smes "
                        "AS integer[]))]",
                        "title": "'Proposal ' || g",
                        "created_by_id": "NULL",
                        "agreement_accepted_by_id": "NULL",
                    },
                    {
                        "template": proposal,
                        "start": start,
                        "stop": start + missing - 1,
                        "challenges": bench_challenges,
                        "smes": sme_ids,
                    },
                    conflict="ON CONFLICT DO NOTHING",
                )
                start, missing = start + missing, proposals - _counts(c)[1]
            _copy(
                c,
                "proposal_version",
                "t.proposal_id = :template",
                "(SELECT id FROM proposal WHERE id >= :first) n",
                {"proposal_id": "n.id", "submitted_by_id": "NULL", "event_id": "NULL"},
                {"template": proposal, "first": first},
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


# --- pages ----------------------------------------------------------------------------------------


def _login(app, email: str) -> str:
    """The session cookie of a logged-in user (through the login form, as a browser would)."""
    from challenges.demo import DEMO_PASSWORD

    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    response = client.post(
        "/login", data={"csrf_token": token.group(1), "email": email, "password": DEMO_PASSWORD}
    )
    assert response.status_code in (302, 303), f"login as {email} failed ({response.status_code})"
    # The cookie a browser holds once it has shown a page: the first page after the login adds the
    # secret behind the forms' CSRF tokens to the session (wrk sends one cookie and keeps no other).
    client.get(response.headers["Location"])
    cookie = client.get_cookie("session")
    assert cookie is not None, f"no session cookie for {email}"
    return f"session={cookie.value}"


@dataclass(frozen=True)
class Page:
    path: str
    cookie: str = ""  # a logged-in person's session
    rendered: bool = False  # asked of a server that keeps no page for visitors


def pages(app) -> dict[str, Page]:
    """Each page's path, the cookie it is requested with, and whether it is asked of the server that keeps
    no page."""
    from challenges.extensions import db

    with app.app_context():
        theme = db.session.execute(
            sa.text(
                "SELECT t.topic_id FROM challenge_theme t JOIN challenge c ON c.id = t.challenge_id "
                "WHERE c.status = 'published' AND c.deadline > now() ORDER BY c.id LIMIT 1"
            )
        ).scalar_one()
        challenge = (
            db.session.execute(
                sa.text(
                    "SELECT c.id FROM challenge c WHERE c.status = 'published' AND c.deadline > now() "
                    "AND EXISTS (SELECT 1 FROM challenge_question q WHERE q.challenge_id = c.id) ORDER BY c.id LIMIT 1"
                )
            ).scalar()
            or db.session.execute(
                sa.text("SELECT id FROM challenge WHERE status = 'published' ORDER BY id LIMIT 1")
            ).scalar_one()
        )
        assignment = db.session.execute(
            sa.text(
                "SELECT a.id FROM review_assignment a JOIN user_account u ON u.id = a.evaluator_id "
                "LEFT JOIN review r ON r.assignment_id = a.id WHERE u.email = :email AND r.id IS NULL "
                "ORDER BY a.id LIMIT 1"
            ),
            {"email": EVALUATOR},
        ).scalar_one()
        db.session.remove()
    sme, evaluator = _login(app, SME), _login(app, EVALUATOR)
    catalogue, challenge_page = f"/challenges?q={SEARCH_WORDS[2]}&theme={theme}", f"/challenges/{challenge}"
    return {
        "catalogue": Page(catalogue),
        "catalogue, rendered": Page(catalogue, rendered=True),
        "challenge": Page(challenge_page),
        "challenge, rendered": Page(challenge_page, rendered=True),
        "proposals": Page("/proposals", sme),
        "review": Page(f"/reviews/{assignment}", evaluator),
    }


def statements(app, page: Page) -> int:
    """How many SQL statements one request for *page* runs (a kept page: none, once it is kept)."""
    from challenges.extensions import db

    count = 0

    def counted(*_args) -> None:
        nonlocal count
        count += 1

    with app.app_context():
        engine = db.engine
    client = app.test_client(use_cookies=False)  # the cookie goes in the header, as wrk sends it
    headers = {"Cookie": page.cookie} if page.cookie else {}
    seconds = app.config["PAGE_CACHE_SECONDS"]
    app.config["PAGE_CACHE_SECONDS"] = 0 if page.rendered else seconds
    try:
        client.get(page.path, headers=headers)  # a kept page is kept now
        sa.event.listen(engine, "before_cursor_execute", counted)
        try:
            response = client.get(page.path, headers=headers)
        finally:
            sa.event.remove(engine, "before_cursor_execute", counted)
    finally:
        app.config["PAGE_CACHE_SECONDS"] = seconds
    assert response.status_code == 200, f"{page.path}: {response.status_code}"
    return count


# --- load -----------------------------------------------------------------------------------------


def workers_peak_kib(master: subprocess.Popen) -> list[int]:
    """The peak resident memory (VmHWM) of each of a gunicorn master's workers."""
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    peaks = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        peaks.append(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)))  # type: ignore[union-attr]
    return peaks


def wrk(url: str, cookie: str, seconds: int, connections: int) -> float:
    """Requests per second of *url* under wrk, after a short warm-up; any non-200 answer is an error."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    connection.request(
        "GET",
        f"{parts.path}?{parts.query}" if parts.query else parts.path,
        headers={"Cookie": cookie} if cookie else {},
    )
    status = connection.getresponse().status  # wrk counts only 4xx and 5xx: a redirect to login must not pass
    connection.close()
    if status != 200:
        raise SystemExit(f"{url}: {status}, not 200")
    header = ["-H", f"Cookie: {cookie}"] if cookie else []
    base = ["wrk", "-t", "2", "-c", str(connections), *header, "--latency"]
    subprocess.run([*base, "-d", "2s", url], check=True, capture_output=True)
    out = subprocess.run([*base, "-d", f"{seconds}s", url], check=True, capture_output=True, text=True).stdout
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
        raise SystemExit(f"{url}: errors under load\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales",
        nargs="+",
        default=["1000:10000", "10000:100000", "100000:100000"],
        help="CHALLENGES:PROPOSALS, in growing order",
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk).")
    scales = [(int(s.split(":")[0]), int(s.split(":")[1])) for s in args.scales]
    with platform(SECRET_KEY="bench-" + os.urandom(8).hex(), SESSION_COOKIE_SECURE="0") as bench:
        app, database_url, env = bench.app, bench.database_url, dict(os.environ)
        fresh_database(app)
        log = bench.instance / "gunicorn.log"
        results: dict[tuple[int, int], dict[str, float]] = {}
        counts: dict[tuple[int, int], dict[str, int]] = {}
        peaks: list[int] = []
        for scale in scales:
            grow(database_url, *scale)
            Redis.from_url(bench.redis_server.url).incr(VERSION_KEY)  # written behind the app's back: renew
            targets = pages(app)
            counts[scale] = {name: statements(app, page) for name, page in targets.items()}
            results[scale] = {}
            for rendered, server_env in ((False, env), (True, {**env, "PAGE_CACHE_SECONDS": "0"})):
                with gunicorn("wsgi:app", server_env, log) as (base, master):
                    for name, page in targets.items():
                        if page.rendered is rendered:
                            results[scale][name] = wrk(
                                base + page.path, page.cookie, args.seconds, args.connections
                            )
                    peaks = (peaks if rendered else []) + workers_peak_kib(master)
            with gunicorn("bench._minimal:app", env, log) as (base, _master):
                results[scale]["minimal"] = wrk(base + "/", "", args.seconds, args.connections)
            line = ", ".join(f"{name} {rate:.0f}/s" for name, rate in results[scale].items())
            print(f"{scale[0]} challenges, {scale[1]} proposals: {line}", flush=True)
        print()
        print(
            f"{'page':<20} {'statements':>10} "
            + " ".join(f"{f'{c}/{p}':>14}" for c, p in scales)
            + f" {'vs minimal':>11} {'first/last':>11} {'÷ minimal':>10}"
        )
        last, first = scales[-1], scales[0]
        headline = scales[1] if len(scales) > 2 else last
        for name in [*targets, "minimal"]:
            rates = " ".join(f"{results[s][name]:>12.0f}/s" for s in scales)
            versus = results[headline][name] / results[headline]["minimal"]
            stmts = "/".join(str(counts[s].get(name, "")) for s in scales) if name != "minimal" else "1"
            growth = results[first][name] / results[last][name]
            steady = growth / (results[first]["minimal"] / results[last]["minimal"])
            print(f"{name:<20} {stmts:>10} {rates} {versus:>10.0%} {growth:>10.2f}x {steady:>9.2f}x")
        print(
            f"\n'vs minimal' at {headline[0]} challenges and {headline[1]} proposals (target ≥ 50 %); "
            f"'first/last': rate at {first[0]} challenges over rate at {last[0]} (target ≤ 1.3); '÷ minimal': the same "
            "over the minimal page's, which takes out a machine that got faster or slower between the sizes."
        )
        print(f"gunicorn workers' peak memory: {', '.join(f'{kib / 1024:.0f} MiB' for kib in peaks)}")


if __name__ == "__main__":
    main()
