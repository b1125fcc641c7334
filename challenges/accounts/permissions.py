"""The one way a service asks for a role: ``require_manager(by)`` refuses anyone else with
:class:`~challenges.core.errors.PermissionDenied`, answered as a 403 page in one place
(``core/errors.py``). Questions about one record are ``can_<verb>(user)`` on its model."""

from __future__ import annotations

from flask_babel import gettext as _

from challenges.accounts.models import User
from challenges.core.errors import PermissionDenied


def require_manager(by: User, message: str | None = None) -> None:
    """Refuse anyone but an active programme manager, saying *message* (or that only a manager may)."""
    if not by.is_programme_manager:
        raise PermissionDenied(message or _("Only a programme manager can do this."))
