"""Changes to the programme's settings. Services check permission, record the event, flush."""

from __future__ import annotations

from flask_babel import gettext as _

from challenges.accounts.models import User
from challenges.core.errors import PermissionDenied, ServiceError
from challenges.core.events import record
from challenges.extensions import db
from challenges.funding import events
from challenges.funding.models import Programme

MAX_EUR_RATE_ORE = 100_00  # 100 kronor per euro: anything above is a typing error


def set_exchange_rate(programme: Programme, eur_rate_ore: int, *, by: User) -> None:
    """The price of one euro in öre, used to test applicants against the EU SME thresholds."""
    if not by.is_programme_manager:
        raise PermissionDenied(_("Only a programme manager can change the programme's settings."))
    if not 0 < eur_rate_ore <= MAX_EUR_RATE_ORE:
        raise ServiceError(_("Enter the price of one euro in kronor, for example 11,25."), "eur_rate")
    programme.eur_rate_ore = eur_rate_ore
    db.session.flush()
    record(events.ExchangeRateSet(programme_id=programme.id, eur_rate_ore=eur_rate_ore), by=by)
