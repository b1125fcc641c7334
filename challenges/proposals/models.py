"""SME proposals to challenges: the working copy, its submitted versions and its attachments."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from challenges.core.models import UTCDateTime, enum_column, utcnow
from challenges.core.translation import lazy_gettext as _l
from challenges.extensions import Model

if TYPE_CHECKING:
    from challenges.accounts.models import Organisation, User
    from challenges.calls.models import Challenge


class ProposalStatus(enum.Enum):
    draft = "draft"
    submitted = "submitted"
    withdrawn = "withdrawn"


PROPOSAL_STATUS_LABELS = {
    ProposalStatus.draft: _l("Draft"),
    ProposalStatus.submitted: _l("Submitted"),
    ProposalStatus.withdrawn: _l("Withdrawn"),
}


class BudgetLine(enum.Enum):
    personnel = "personnel"
    equipment = "equipment"
    services = "services"
    other = "other"


BUDGET_LABELS = {
    BudgetLine.personnel: _l("Personnel"),
    BudgetLine.equipment: _l("Equipment"),
    BudgetLine.services: _l("External services"),
    BudgetLine.other: _l("Other costs"),
}


class PartnerKind(enum.Enum):
    university = "university"
    institute = "institute"
    company = "company"
    other = "other"


PARTNER_LABELS = {
    PartnerKind.university: _l("University"),
    PartnerKind.institute: _l("Research institute"),
    PartnerKind.company: _l("Company"),
    PartnerKind.other: _l("Other organisation"),
}


proposal_member = sa.Table(
    "proposal_member",
    Model.metadata,
    sa.Column("proposal_id", sa.ForeignKey("proposal.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Proposal(Model):
    """An SME's proposal to one challenge: the copy its team edits until the deadline.

    Each submission freezes the copy as a numbered :class:`ProposalVersion`; the owner and
    the programme read the latest version, never unsubmitted edits.
    """

    __tablename__ = "proposal"
    __table_args__ = (
        sa.UniqueConstraint("challenge_id", "organisation_id", name="one_per_organisation"),
        sa.CheckConstraint(
            "budget_personnel_ore >= 0 AND budget_equipment_ore >= 0 AND budget_services_ore >= 0"
            " AND budget_other_ore >= 0",
            name="budget_not_negative",
        ),
        sa.CheckConstraint(
            "COALESCE(requested_ore, 0) = budget_personnel_ore + budget_equipment_ore"
            " + budget_services_ore + budget_other_ore",
            name="budget_adds_up",
        ),
        sa.CheckConstraint("status = 'draft' OR version >= 1", name="submitted_has_version"),
        sa.Index("ix_proposal_challenge_status", "challenge_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(sa.ForeignKey("challenge.id"))
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    status: Mapped[ProposalStatus] = mapped_column(
        enum_column(ProposalStatus, "proposal_status"), default=ProposalStatus.draft
    )
    title: Mapped[str] = mapped_column(sa.String(200))
    summary: Mapped[str] = mapped_column(sa.String(500), default="")
    solution: Mapped[str] = mapped_column(sa.Text, default="")
    fit: Mapped[str] = mapped_column(sa.Text, default="")
    milestones: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    partners: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    requested_ore: Mapped[int | None] = mapped_column(sa.BigInteger)
    budget_personnel_ore: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    budget_equipment_ore: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    budget_services_ore: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    budget_other_ore: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    agreement_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    agreement_accepted_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="SET NULL")
    )
    version: Mapped[int] = mapped_column(sa.Integer, default=0)  # the latest submitted version, 0 if none
    revision: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")  # +1 on every save
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    challenge: Mapped[Challenge] = relationship()
    organisation: Mapped[Organisation] = relationship()
    team: Mapped[list[User]] = relationship(secondary=proposal_member, order_by="User.name")
    attachments: Mapped[list[ProposalAttachment]] = relationship(
        back_populates="proposal", order_by="ProposalAttachment.id"
    )
    versions: Mapped[list[ProposalVersion]] = relationship(
        back_populates="proposal", order_by="ProposalVersion.number"
    )

    def budget(self) -> dict[BudgetLine, int]:
        return {line: getattr(self, f"budget_{line.value}_ore") for line in BudgetLine}

    @property
    def current_attachments(self) -> list[ProposalAttachment]:
        return [a for a in self.attachments if a.removed_at is None]

    @property
    def latest_version(self) -> ProposalVersion | None:
        return self.versions[-1] if self.versions else None

    # --- who may do what ----------------------------------------------------------------

    def is_team_side(self, user: User) -> bool:
        """*user* is an active, approved member of the applicant organisation."""
        if not user.is_authenticated:  # an account turned off is not (flask-login reads is_active)
            return False
        org = user.organisation
        return org is not None and org.id == self.organisation_id

    def is_sealed(self, now: datetime | None = None) -> bool:
        """Until the challenge's deadline, nobody outside the applicant sees anything."""
        return self.challenge.is_open(now)

    def can_view(self, user: User, now: datetime | None = None) -> bool:
        """The applicant always; after the deadline the owner and the programme see what was submitted."""
        if self.is_team_side(user):
            return True
        if self.status is not ProposalStatus.submitted or self.is_sealed(now):
            return False
        return self.challenge.is_owned_by(user) or (user.is_authenticated and user.is_programme_manager)

    def can_change(self, user: User, now: datetime | None = None) -> bool:
        """Edit, submit, withdraw, reopen, upload: the applicant, while the challenge is open."""
        return self.is_team_side(user) and self.challenge.is_open(now)


class ProposalVersion(Model):
    """One submission, frozen: everything the applicant sent, as it was at that instant."""

    __tablename__ = "proposal_version"
    __table_args__ = (sa.UniqueConstraint("proposal_id", "number", name="one_per_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(sa.ForeignKey("proposal.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(sa.Integer)
    content: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    event_id: Mapped[str | None] = mapped_column(sa.ForeignKey("event_log.id"))

    proposal: Mapped[Proposal] = relationship(back_populates="versions")
    submitted_by: Mapped[User | None] = relationship()


class ProposalAttachment(Model):
    """A PDF kept outside the static folder under a random name; never deleted once uploaded,
    so every submitted version keeps its files."""

    __tablename__ = "proposal_attachment"
    __table_args__ = (sa.CheckConstraint("size > 0", name="not_empty"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(sa.ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    storage_name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    filename: Mapped[str] = mapped_column(sa.String(200))
    size: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    proposal: Mapped[Proposal] = relationship(back_populates="attachments")
