"""The programme manager's written lessons, one text per programme and report date."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from challenges.core.models import UTCDateTime, utcnow
from challenges.extensions import Model


class ProgrammeLessons(Model):
    """What the agency learnt, as written for the report as of *as_of* (Markdown)."""

    __tablename__ = "programme_lessons"
    __table_args__ = (sa.UniqueConstraint("programme_id", "as_of", name="one_per_report_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programme.id", ondelete="CASCADE"), index=True)
    as_of: Mapped[date] = mapped_column(sa.Date)
    text: Mapped[str] = mapped_column(sa.Text)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
