"""A funding programme, configured by a programme manager, and its years' allocations, in integer öre."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from challenges.core.models import UTCDateTime, utcnow
from challenges.extensions import Model


class Programme(Model):
    """A programme such as *open innovation in industry*, configured by a programme manager."""

    __tablename__ = "programme"
    __table_args__ = (
        sa.CheckConstraint("admin_cap_basis_points BETWEEN 0 AND 10000", name="admin_cap_range"),
        sa.CheckConstraint("eur_rate_ore > 0", name="eur_rate_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    # The share of each year's allocation that may go to administration: 500 = 5 %.
    admin_cap_basis_points: Mapped[int] = mapped_column(sa.Integer)
    return_deadline: Mapped[date | None] = mapped_column(sa.Date)
    # The exchange rate used for the EU SME thresholds: the price of one euro in öre
    # (1100 = 11,00 SEK per euro).
    eur_rate_ore: Mapped[int] = mapped_column(sa.Integer, default=1100, server_default="1100")
    # When the programme reports to the ministry (ISO dates), for example two partial and a final report.
    report_dates: Mapped[list[str]] = mapped_column(sa.JSON, default=list, server_default=sa.text("'[]'"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    years: Mapped[list[ProgrammeYear]] = relationship(
        back_populates="programme", order_by="ProgrammeYear.year", cascade="all, delete-orphan"
    )


class ProgrammeYear(Model):
    """One year's allocation from the treasury."""

    __tablename__ = "programme_year"
    __table_args__ = (
        sa.UniqueConstraint("programme_id", "year", name="one_per_year"),
        sa.CheckConstraint("allocation_ore >= 0", name="allocation_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programme.id", ondelete="CASCADE"))
    year: Mapped[int] = mapped_column(sa.Integer)
    allocation_ore: Mapped[int] = mapped_column(sa.BigInteger)
    requisition_deadline: Mapped[date | None] = mapped_column(sa.Date)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # after the close it accepts no posting
    # Set when a manager closes the year, before the worker has posted it: nothing new is accepted.
    closing_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    programme: Mapped[Programme] = relationship(back_populates="years")

    @property
    def admin_cap_ore(self) -> int:
        """floor(cap × allocation), in whole öre."""
        return self.allocation_ore * self.programme.admin_cap_basis_points // 10000
