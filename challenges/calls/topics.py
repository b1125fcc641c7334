"""The themes and areas challenges are filed under: kept by programme managers, with a default set."""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import gettext as _

from challenges.accounts.models import User
from challenges.accounts.permissions import require_manager
from challenges.calls.models import (
    Topic,
    TopicKind,
)
from challenges.core.errors import ServiceError
from challenges.extensions import db


def save_topic(
    topic: Topic | None, *, kind: TopicKind, name_en: str, name_sv: str, active: bool, by: User
) -> Topic:
    """Add a priority area or theme, or rename, retire or restore one."""
    require_manager(by)
    clash = db.session.scalar(sa.select(Topic).where(Topic.kind == kind, Topic.name_en == name_en.strip()))
    if clash is not None and clash is not topic:
        raise ServiceError(_("There is already one with this name."), "name_en")
    if topic is None:
        position = (
            db.session.scalar(
                sa.select(sa.func.coalesce(sa.func.max(Topic.position), 0)).where(Topic.kind == kind)
            )
            or 0
        )
        topic = Topic(kind=kind, position=position + 1)
        db.session.add(topic)
    topic.name_en = name_en.strip()
    topic.name_sv = name_sv.strip()
    topic.active = active
    db.session.flush()
    return topic


# The programme's priority areas and the technology themes of the call (English, Swedish).
DEFAULT_TOPICS = {
    TopicKind.area: [
        ("Ecosystems and SMEs", "Ekosystem och små och medelstora företag"),
        ("Digital infrastructure and technology", "Digital infrastruktur och teknik"),
        ("Data", "Data"),
        ("Knowledge and leadership", "Kunskap och ledarskap"),
        ("Policy and regulatory development", "Policy- och regelutveckling"),
    ],
    TopicKind.theme: [
        ("Automation and robotics", "Automation och robotik"),
        ("Connectivity and control of equipment", "Uppkoppling och styrning av utrustning"),
        ("Sensors", "Sensorer"),
        ("Simulation", "Simulering"),
        ("Analysis of large data sets", "Analys av stora datamängder"),
        ("Machine learning and AI", "Maskininlärning och AI"),
    ],
}


def ensure_default_topics() -> None:
    """Add the default areas and themes when there are none (the first migration adds them too)."""
    if db.session.scalar(sa.select(Topic.id).limit(1)) is not None:
        return
    for kind, names in DEFAULT_TOPICS.items():
        for position, (en, sv) in enumerate(names, start=1):
            db.session.add(Topic(kind=kind, name_en=en, name_sv=sv, position=position))
    db.session.flush()


def topic_named(kind: TopicKind, name_en: str) -> Topic:
    topic = db.session.scalar(sa.select(Topic).where(Topic.kind == kind, Topic.name_en == name_en))
    if topic is None:
        raise LookupError(f"no {kind.value} called {name_en!r}")
    return topic
