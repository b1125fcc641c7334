"""The public catalogue: filters, full-text search in the database's own index, sorting.

Search uses FTS5 on SQLite (an external-content table kept in step by triggers) and a
generated ``tsvector`` column with a GIN index on PostgreSQL; both are created by the
migration. Words are matched as prefixes, so "sensor" finds "sensors".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from challenges.calls.models import PUBLIC_STATUSES, Challenge, ChallengeStatus, challenge_theme
from challenges.core.formatting import from_local
from challenges.core.models import utcnow
from challenges.extensions import db

# Schema objects that only the migration knows about (the models cannot express them).
SEARCH_OBJECTS = {
    "challenge_fts",
    "challenge_fts_data",
    "challenge_fts_idx",
    "challenge_fts_docsize",
    "challenge_fts_config",
    "search_vector",
    "ix_challenge_search_vector",
}


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic filter: leave the full-text search objects out of autogenerate comparisons."""
    return name not in SEARCH_OBJECTS


STATUS_FILTERS = ("open", "closed", "in_review", "decided", "archived")
SORTS = ("deadline", "newest")
MAX_TERMS = 12
# A list is counted up to here; a broader one says "more than" (an exact count would cost more
# the more challenges there are, on every page of the catalogue).
COUNT_LIMIT = 200
# A search or filter first reads the list in its order, testing each challenge, as far as this many
# challenges: a common word finds a page and more than COUNT_LIMIT matches long before, at the same
# cost with a thousand challenges as with a hundred thousand. Only when that does not settle the
# count does the database's full-text index find every match (a rare word has few).
WINDOW = 2000


@dataclass
class CatalogueFilter:
    q: str = ""
    area: int | None = None
    themes: list[int] = field(default_factory=list)
    status: str = ""
    deadline_from: date | None = None
    deadline_to: date | None = None
    sort: str = "deadline"


def search_terms(q: str) -> list[str]:
    """The words of a search, lower-cased; punctuation and operators are dropped."""
    return re.findall(r"\w+", q.lower())[:MAX_TERMS]


def _postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def _tsquery(terms: list[str]) -> str:
    return " & ".join(f"{t}:*" for t in terms)


def _matching_ids(terms: list[str]):
    if _postgres():
        return sa.select(Challenge.id).where(
            sa.text("search_vector @@ to_tsquery('simple', :tsquery)").bindparams(tsquery=_tsquery(terms))
        )
    match = " ".join(f'"{t}"*' for t in terms)
    return (
        sa.select(sa.literal_column("rowid"))
        .select_from(sa.table("challenge_fts"))
        .where(sa.text("challenge_fts MATCH :match").bindparams(match=match))
    )


def status_condition(status: str, now: datetime):
    """The catalogue's status filter; "open" and "closed" go by the deadline, to the second."""
    published = Challenge.status == ChallengeStatus.published
    if status == "open":
        return sa.and_(published, Challenge.deadline > now)
    if status == "closed":
        return sa.or_(
            Challenge.status == ChallengeStatus.closed, sa.and_(published, Challenge.deadline <= now)
        )
    if status in STATUS_FILTERS:
        return Challenge.status == ChallengeStatus(status)
    # Everything public except the archive.
    return Challenge.status.in_([s for s in PUBLIC_STATUSES if s is not ChallengeStatus.archived])


def _filters(f: CatalogueFilter, row) -> list:
    """Everything but the status, on *row*: the challenge model, or the columns of the window over it."""
    conditions = []
    if terms := search_terms(f.q):
        if _postgres() and row is not Challenge:  # the window carries the search vector: test it there
            # against a query parsed once (a subquery), not once per challenge in the window: a
            # prepared statement's plan does not know the words, so it cannot parse them beforehand
            query = sa.select(sa.func.to_tsquery("simple", _tsquery(terms))).scalar_subquery()
            conditions.append(row.search_vector.op("@@")(query))
        else:
            conditions.append(row.id.in_(_matching_ids(terms)))
    if f.area:
        conditions.append(row.area_id == f.area)
    if f.themes:
        conditions.append(
            sa.exists().where(
                challenge_theme.c.challenge_id == row.id, challenge_theme.c.topic_id.in_(f.themes)
            )
        )
    if f.deadline_from:
        conditions.append(row.deadline >= from_local(f.deadline_from, time(0, 0)))
    if f.deadline_to:
        conditions.append(row.deadline < from_local(f.deadline_to + timedelta(days=1), time(0, 0)))
    return conditions


def _order(f: CatalogueFilter, row) -> list:
    if f.sort == "newest":
        return [row.published_at.desc(), row.id.desc()]
    return [row.deadline, row.id]


def _window(f: CatalogueFilter, now: datetime):
    """The first WINDOW challenges of the list (its status, its order), with what the filters test."""
    columns: list[Any] = [Challenge.id, Challenge.area_id, Challenge.deadline, Challenge.published_at]
    if _postgres():
        columns.append(sa.literal_column("challenge.search_vector").label("search_vector"))
    return (
        sa.select(*columns)
        .where(status_condition(f.status, now))
        .order_by(*_order(f, Challenge))
        .limit(WINDOW)
        .subquery("window")
    )


@dataclass
class Matches:
    """What the catalogue shows of a filter: how many match (counted to ``limit`` + 1) and the query of
    the matching challenges in the list's order."""

    count: int
    query: sa.Select


def find(f: CatalogueFilter, now: datetime | None = None, limit: int = COUNT_LIMIT) -> Matches:
    """The challenges matching *f*, from the window when it settles the count (more than *limit*
    matches in it, or it holds the whole list), from the full-text index otherwise."""
    now = now or utcnow()
    window = _window(f, now)
    matched = sa.select(window.c.id).where(*_filters(f, window.c)).limit(limit + 1).subquery()
    listed = sa.select(Challenge.id).where(status_condition(f.status, now)).limit(WINDOW).subquery()
    in_window, window_size = db.session.execute(
        sa.select(
            sa.select(sa.func.count()).select_from(matched).scalar_subquery(),
            sa.select(sa.func.count()).select_from(listed).scalar_subquery(),
        )
    ).one()
    if in_window > limit or window_size < WINDOW:
        ordered = (
            sa.select(window.c.id, window.c.deadline, window.c.published_at)
            .where(*_filters(f, window.c))
            .subquery()
        )
        query = (
            sa.select(Challenge).join(ordered, ordered.c.id == Challenge.id).order_by(*_order(f, ordered.c))
        )
        return Matches(in_window, _with_row_data(query))
    return Matches(count_matching(f, now, limit), catalogue_query(f, now))


def _with_row_data(query: sa.Select) -> sa.Select:
    return query.options(
        joinedload(Challenge.organisation), joinedload(Challenge.area), selectinload(Challenge.themes)
    )


def _conditions(f: CatalogueFilter, now: datetime) -> list:
    return [status_condition(f.status, now), *_filters(f, Challenge)]


def catalogue_query(f: CatalogueFilter, now: datetime | None = None) -> sa.Select:
    """Public challenges matching *f*, with what a catalogue row shows loaded up front."""
    query = sa.select(Challenge).where(*_conditions(f, now or utcnow()))
    return _with_row_data(query.order_by(*_order(f, Challenge)))


def count_matching(f: CatalogueFilter, now: datetime | None = None, limit: int = COUNT_LIMIT) -> int:
    """How many public challenges match *f*, counted no further than *limit* + 1."""
    matching = sa.select(Challenge.id).where(*_conditions(f, now or utcnow())).limit(limit + 1).subquery()
    return db.session.scalar(sa.select(sa.func.count()).select_from(matching)) or 0
