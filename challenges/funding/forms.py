"""Forms for the programme's settings."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms.validators import InputRequired

from challenges.core.forms import Form, MoneyField


class ExchangeRateForm(Form):
    eur_rate = MoneyField(_l("Kronor per euro"), description=_l(
        "Used to test applicants against the EU SME thresholds (€50 million turnover, €43 million balance sheet)."),
        validators=[InputRequired(_l("Enter the price of one euro in kronor, for example 11,25."))])
