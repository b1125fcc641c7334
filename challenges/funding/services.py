"""Changes to the programme's money: settings, opening a year, awards, payments, admin costs,
closing a year. Services check, record the ledger event and flush; the ledger worker books it."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import ngettext

from challenges.accounts.models import User
from challenges.accounts.permissions import require_manager
from challenges.core.bus import LEDGER_QUEUE, get_bus
from challenges.core.errors import InvalidInput, PermissionDenied, ServiceError
from challenges.core.events import record
from challenges.core.formatting import sek
from challenges.core.models import Event, EventHandling, HandlingState, utcnow
from challenges.extensions import db
from challenges.funding import events, ledger
from challenges.funding.models import (
    AWARD_STATUS_LABELS,
    Account,
    AccountKind,
    Award,
    AwardStatus,
    Instalment,
    InstalmentCondition,
    Programme,
    ProgrammeYear,
)
from challenges.proposals.models import Proposal
from challenges.reviews.models import Decision
from challenges.reviews.services import assessment_of

MAX_EUR_RATE_ORE = 100_00  # 100 kronor per euro: anything above is a typing error
DEFAULT_PLAN = ((InstalmentCondition.start, 60), (InstalmentCondition.final_report, 40))


def set_exchange_rate(programme: Programme, eur_rate_ore: int, *, by: User) -> None:
    """The price of one euro in öre, used to test applicants against the EU SME thresholds."""
    require_manager(by, _("Only a programme manager can change the programme's settings."))
    if not 0 < eur_rate_ore <= MAX_EUR_RATE_ORE:
        raise ServiceError(_("Enter the price of one euro in kronor, for example 11,25."), "eur_rate")
    programme.eur_rate_ore = eur_rate_ore
    db.session.flush()
    record(events.ExchangeRateSet(programme_id=programme.id, eur_rate_ore=eur_rate_ore), by=by)


def update_programme(
    programme: Programme,
    *,
    admin_cap_basis_points: int,
    eur_rate_ore: int,
    return_deadline,
    report_dates: list,
    by: User,
) -> None:
    require_manager(by)
    errors = {}
    if not 0 <= admin_cap_basis_points <= 10000:
        errors["admin_cap"] = _("Enter a percentage from 0 to 100.")
    if not 0 < eur_rate_ore <= MAX_EUR_RATE_ORE:
        errors["eur_rate"] = _("Enter the price of one euro in kronor, for example 11,25.")
    if errors:
        raise InvalidInput(errors)
    programme.admin_cap_basis_points = admin_cap_basis_points
    programme.return_deadline = return_deadline
    programme.report_dates = sorted(d.isoformat() for d in report_dates)
    if programme.eur_rate_ore != eur_rate_ore:
        set_exchange_rate(programme, eur_rate_ore, by=by)
    db.session.flush()


def add_year(
    programme: Programme, year: int, allocation_ore: int, requisition_deadline, *, by: User
) -> ProgrammeYear:
    """A new programme year with its allocation; its ledger opens at once."""
    require_manager(by)
    if any(y.year == year for y in programme.years):
        raise ServiceError(_("The programme already has the year %(year)s.", year=year), "year")
    if allocation_ore <= 0:
        raise ServiceError(_("Enter an amount greater than zero."), "allocation")
    row = ProgrammeYear(
        programme=programme,
        year=year,
        allocation_ore=allocation_ore,
        requisition_deadline=requisition_deadline,
    )
    db.session.add(row)
    db.session.flush()
    open_year(row, by=by)
    return row


# --- the ledger's years -------------------------------------------------------------------------------


def open_year(year: ProgrammeYear, *, by: User | None = None) -> None:
    """Open the year's ledger: the allocation split into the available budget and the capped
    administration envelope. Posted at once (the same transaction); idempotent."""
    if db.session.scalar(sa.select(Account.id).where(Account.programme_year_id == year.id).limit(1)):
        return
    row = record(
        events.YearOpened(
            programme_year_id=year.id, amount_ore=year.allocation_ore, admin_cap_ore=year.admin_cap_ore
        ),
        by=by,
    )
    db.session.flush()
    ledger.post(get_bus().fact(row))


def balance(year: ProgrammeYear, kind: AccountKind) -> int:
    """What *year*'s accounts of *kind* hold together (0 when it has none yet)."""
    total = sa.select(sa.func.sum(Account.balance_ore)).where(
        Account.programme_year_id == year.id, Account.kind == kind
    )
    return db.session.scalar(total) or 0


def _require_open(year: ProgrammeYear) -> None:
    """Refuse a change on a year that is closed or closing. Under the year's row lock, which every
    change of its money takes (last, after the proposal's or award's), so that a close and an award
    committed at once cannot both pass: one of them sees the other."""
    db.session.flush()
    db.session.execute(sa.select(ProgrammeYear.id).where(ProgrammeYear.id == year.id).with_for_update())
    db.session.refresh(year, ["closed_at", "closing_requested_at"])  # pragma: no mutate (all or these two)
    if year.closed_at is not None or year.closing_requested_at is not None:
        raise ServiceError(_("The year %(year)s is closed: it takes no more postings.", year=year.year))


def unposted(year: ProgrammeYear) -> int:
    """How many ledger events on *year* the ledger has not yet posted (or has failed to)."""
    handlers = {
        h.name for h in get_bus().handlers[events.FundingAwarded.type_name] if h.queue == LEDGER_QUEUE
    }
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(EventHandling)
            .join(Event, Event.id == EventHandling.event_id)
            .where(
                EventHandling.handler.in_(handlers),
                EventHandling.state != HandlingState.done,
                Event.payload["programme_year_id"].as_integer() == year.id,
            )
        )
        or 0
    )


# --- awards ---------------------------------------------------------------------------------------------


def plan_for(amount_ore: int) -> list[tuple[InstalmentCondition, int]]:
    """The default plan: 60 % at the start, the rest after the approved final report."""
    first = amount_ore * DEFAULT_PLAN[0][1] // 100
    return [(DEFAULT_PLAN[0][0], first), (DEFAULT_PLAN[1][0], amount_ore - first)]


def current_award(proposal: Proposal) -> Award | None:
    return db.session.scalar(
        sa.select(Award).where(
            Award.proposal_id == proposal.id, Award.status.in_([AwardStatus.pending, AwardStatus.booked])
        )
    )


def check_awardable(proposal: Proposal, *, by: User) -> None:
    """Refuse unless *by* may award *proposal* now: a programme manager who may read it, recommended
    for funding, its challenge's decisions published, no award yet. The award form asks this before it
    shows anything, so that walking its ids lists no sealed or draft proposal."""
    require_manager(by)
    if not proposal.can_view(by):
        raise PermissionDenied(_("This proposal cannot be read yet."))
    assessment = assessment_of(proposal)
    if assessment is None or assessment.decision is not Decision.recommend:
        raise ServiceError(_("Only a proposal recommended for funding can be awarded."))
    if assessment.review.published_at is None:
        raise ServiceError(_("Publish the challenge's decisions before awarding funding."))
    if current_award(proposal) is not None:
        raise ServiceError(_("This proposal already has an award."))


def award_funding(proposal: Proposal, year: ProgrammeYear, amount_ore: int, *, by: User) -> Award:
    """Award a recommended proposal from *year*; the ledger worker books it (or refuses it)."""
    require_manager(by)
    # One award at a time per proposal, even from two managers at once.
    db.session.execute(sa.select(Proposal.id).where(Proposal.id == proposal.id).with_for_update())
    check_awardable(proposal, by=by)
    _require_open(year)
    version = proposal.versions[-1].content
    requested, maximum = version["requested_ore"] or 0, proposal.challenge.max_funding_ore
    if amount_ore <= 0:
        raise ServiceError(_("Enter an amount greater than zero."), "amount")
    if amount_ore > requested:
        raise ServiceError(
            _("The award cannot be more than the %(amount)s requested.", amount=sek(requested)), "amount"
        )
    if amount_ore > maximum:
        raise ServiceError(
            _("The award cannot be more than the challenge's maximum, %(amount)s.", amount=sek(maximum)),
            "amount",
        )
    available = balance(year, AccountKind.available)
    if amount_ore > available:
        raise ServiceError(
            _(
                "The year %(year)s has %(available)s available; this award needs %(amount)s.",
                year=year.year,
                available=sek(available),
                amount=sek(amount_ore),
            ),
            "amount",
        )
    # pending (the model's default) until the ledger books or refuses it
    award = Award(proposal=proposal, programme_year=year, amount_ore=amount_ore, awarded_by_id=by.id)
    award.instalments = [
        Instalment(position=i, condition=c, amount_ore=a)
        for i, (c, a) in enumerate(plan_for(amount_ore))
        if a > 0
    ]
    db.session.add(award)
    db.session.flush()
    row = record(
        events.FundingAwarded(award_id=award.id, programme_year_id=year.id, amount_ore=amount_ore), by=by
    )
    award.event_id = row.id
    db.session.flush()
    return award


def _lock(award: Award) -> None:
    """One change at a time to an award: no instalment paid twice, no reduce racing a cancel."""
    db.session.flush()
    db.session.execute(sa.select(Award.id).where(Award.id == award.id).with_for_update())
    db.session.expire_all()


def _require_booked(award: Award) -> None:
    _lock(award)
    if award.status is not AwardStatus.booked:
        raise ServiceError(
            _(
                "The award is not booked in the ledger (it is %(status)s).",
                status=str(AWARD_STATUS_LABELS[award.status]).lower(),
            )
        )
    _require_open(award.programme_year)


def paid(award: Award) -> int:
    return sum(i.amount_ore for i in award.instalments if i.approved_at is not None)


# The last instalment is paid when the project's final report is approved. Whether it is, the projects
# package knows: it sits above this one, and gives the answer when it is imported.
_ANSWERS: dict[str, Callable[[Award], bool]] = {}


def answer_final_report_approved(answer: Callable[[Award], bool]) -> None:
    _ANSWERS["final_report_approved"] = answer


def final_report_approved(award: Award) -> bool:
    """Whether *award*'s project has its final report approved (never, without a project)."""
    answer = _ANSWERS.get("final_report_approved")
    return answer is not None and answer(award)


def approve_payment(instalment: Instalment, *, by: User) -> None:
    """Pay one instalment when its condition is met: the one rule for every door. The last one waits
    for the project's approved final report, and approving that report pays it
    (``projects.approve_report``); a manager pays it by hand only if the ledger refused that payment."""
    require_manager(by)
    award = instalment.award
    _require_booked(award)
    if instalment.approved_at is not None:
        raise ServiceError(_("This instalment has already been approved."))
    if instalment.condition is InstalmentCondition.final_report and not final_report_approved(award):
        raise ServiceError(_("This instalment is paid when the project's final report is approved."))
    remaining = award.amount_ore - paid(award)
    if instalment.amount_ore > remaining:
        raise ServiceError(
            _(
                "The payment of %(amount)s is more than the %(remaining)s that remains of the award.",
                amount=sek(instalment.amount_ore),
                remaining=sek(remaining),
            )
        )
    instalment.approved_at = utcnow()
    instalment.approved_by_id = by.id
    db.session.flush()
    row = record(
        events.PaymentApproved(
            award_id=award.id,
            instalment_id=instalment.id,
            programme_year_id=award.programme_year_id,
            amount_ore=instalment.amount_ore,
        ),
        by=by,
    )
    instalment.event_id = row.id
    db.session.flush()


def reduce_award(award: Award, new_amount_ore: int, *, by: User) -> None:
    """Lower an award; the unpaid instalments shrink (the last first) and the difference returns."""
    require_manager(by)
    _require_booked(award)
    already = paid(award)
    if not already < new_amount_ore < award.amount_ore:
        raise ServiceError(
            _(
                "Enter an amount below the award (%(award)s) and above what is paid (%(paid)s).",
                award=sek(award.amount_ore),
                paid=sek(already),
            ),
            "amount",
        )
    cut = award.amount_ore - new_amount_ore
    for instalment in reversed(award.instalments):
        # a paid instalment is never reached with some cut left (the last unpaid one can take all but an öre)
        if instalment.approved_at is None and cut:  # pragma: no mutate
            take = min(cut, instalment.amount_ore - 1)
            instalment.amount_ore -= take
            cut -= take
    if cut:
        raise ServiceError(_("The unpaid instalments cannot absorb this reduction."), "amount")
    difference = award.amount_ore - new_amount_ore
    award.amount_ore = new_amount_ore
    db.session.flush()
    record(
        events.AwardReduced(
            award_id=award.id, programme_year_id=award.programme_year_id, amount_ore=difference
        ),
        by=by,
    )


def cancel_award(award: Award, *, by: User) -> None:
    """Cancel an award; what is not paid goes back to the available budget."""
    require_manager(by)
    _require_booked(award)
    remaining = award.amount_ore - paid(award)
    award.status = AwardStatus.cancelled
    db.session.flush()
    record(
        events.AwardCancelled(
            award_id=award.id, programme_year_id=award.programme_year_id, amount_ore=remaining
        ),
        by=by,
    )


def book_admin_cost(year: ProgrammeYear, amount_ore: int, memo: str, *, by: User) -> None:
    require_manager(by)
    _require_open(year)
    errors = {}
    if amount_ore <= 0:
        errors["amount"] = _("Enter an amount greater than zero.")
    elif amount_ore > balance(year, AccountKind.admin_envelope):
        errors["amount"] = _(
            "The administration envelope has %(left)s left.",
            left=sek(balance(year, AccountKind.admin_envelope)),
        )
    if not memo.strip():
        errors["memo"] = _("Say what the cost is for.")
    if errors:
        raise InvalidInput(errors)
    record(events.AdminCostBooked(programme_year_id=year.id, amount_ore=amount_ore, memo=memo.strip()), by=by)


def close_year(year: ProgrammeYear, *, by: User) -> None:
    """Return everything left to the treasury; the ledger worker closes the year for good. Refused while
    anything on the year waits for the ledger: an award booked after the close would have its money
    returned already."""
    require_manager(by)
    _require_open(year)
    if waiting := unposted(year):
        raise ServiceError(
            ngettext(
                "%(num)d posting on the year waits for the ledger (an award, a payment, a change or a cost). "
                "Close the year once it is booked or refused.",
                "%(num)d postings on the year wait for the ledger (awards, payments, changes or costs). "
                "Close the year once they are booked or refused.",
                waiting,
            )
        )
    year.closing_requested_at = utcnow()
    db.session.flush()
    record(events.YearClosed(programme_year_id=year.id), by=by)
