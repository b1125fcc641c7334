"""The public catalogue: filters, full-text search in the database's own index, sorting.

Search uses FTS5 on SQLite (an external-content table kept in step by triggers) and a
generated ``tsvector`` column with a GIN index on PostgreSQL; both are created by the
migration. Words are matched as prefixes, so "sensor" finds "sensors".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from challenges.calls.models import PUBLIC_STATUSES, Challenge, ChallengeStatus, challenge_theme
from challenges.core.formatting import from_local
from challenges.core.models import utcnow
from challenges.extensions import db

# Schema objects that only the migration knows about (the models cannot express them).
SEARCH_OBJECTS = {"challenge_fts", "challenge_fts_data", "challenge_fts_idx", "challenge_fts_docsize",
                  "challenge_fts_config", "search_vector", "ix_challenge_search_vector"}


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic filter: leave the full-text search objects out of autogenerate comparisons."""
    return name not in SEARCH_OBJECTS


STATUS_FILTERS = ("open", "closed", "in_review", "decided", "archived")
SORTS = ("deadline", "newest")
MAX_TERMS = 12
# A list is counted up to here; a broader one says "more than" (an exact count would cost more
# the more challenges there are, on every page of the catalogue).
COUNT_LIMIT = 1000


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


def _matching_ids(terms: list[str]):
    if db.engine.dialect.name == "postgresql":
        query = " & ".join(f"{t}:*" for t in terms)
        return sa.select(Challenge.id).where(
            sa.text("search_vector @@ to_tsquery('simple', :tsquery)").bindparams(tsquery=query))
    match = " ".join(f'"{t}"*' for t in terms)
    return sa.select(sa.literal_column("rowid")).select_from(sa.table("challenge_fts")).where(
        sa.text("challenge_fts MATCH :match").bindparams(match=match))


def status_condition(status: str, now: datetime):
    """The catalogue's status filter; "open" and "closed" go by the deadline, to the second."""
    published = Challenge.status == ChallengeStatus.published
    if status == "open":
        return sa.and_(published, Challenge.deadline > now)
    if status == "closed":
        return sa.or_(Challenge.status == ChallengeStatus.closed, sa.and_(published, Challenge.deadline <= now))
    if status in STATUS_FILTERS:
        return Challenge.status == ChallengeStatus(status)
    # Everything public except the archive.
    return Challenge.status.in_([s for s in PUBLIC_STATUSES if s is not ChallengeStatus.archived])


def _conditions(f: CatalogueFilter, now: datetime) -> list:
    conditions = [status_condition(f.status, now)]
    if terms := search_terms(f.q):
        conditions.append(Challenge.id.in_(_matching_ids(terms)))
    if f.area:
        conditions.append(Challenge.area_id == f.area)
    if f.themes:
        conditions.append(Challenge.id.in_(
            sa.select(challenge_theme.c.challenge_id).where(challenge_theme.c.topic_id.in_(f.themes))))
    if f.deadline_from:
        conditions.append(Challenge.deadline >= from_local(f.deadline_from, time(0, 0)))
    if f.deadline_to:
        conditions.append(Challenge.deadline < from_local(f.deadline_to + timedelta(days=1), time(0, 0)))
    return conditions


def catalogue_query(f: CatalogueFilter, now: datetime | None = None) -> sa.Select:
    """Public challenges matching *f*, with what a catalogue row shows loaded up front."""
    query = sa.select(Challenge).where(*_conditions(f, now or utcnow())).options(
        joinedload(Challenge.organisation), joinedload(Challenge.area), selectinload(Challenge.themes))
    if f.sort == "newest":
        return query.order_by(Challenge.published_at.desc(), Challenge.id.desc())
    return query.order_by(Challenge.deadline, Challenge.id)


def count_matching(f: CatalogueFilter, now: datetime | None = None, limit: int = COUNT_LIMIT) -> int:
    """How many public challenges match *f*, counted no further than *limit* + 1."""
    matching = sa.select(Challenge.id).where(*_conditions(f, now or utcnow())).limit(limit + 1).subquery()
    return db.session.scalar(sa.select(sa.func.count()).select_from(matching)) or 0
