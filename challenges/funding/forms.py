"""Forms for the programme's set-up, awards, payments and the ledger."""

from __future__ import annotations

from wtforms import SelectField, StringField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

from challenges.core.forms import (
    Form,
    IntegerField,
    LocalDateField,
    MoneyField,
    TextAreaField,
    single_line,
    strip,
)
from challenges.core.translation import lazy_gettext as _l


class ExchangeRateForm(Form):
    eur_rate = MoneyField(
        _l("Kronor per euro"),
        description=_l(
            "Used to test applicants against the EU SME thresholds (€50 million turnover, €43 million balance sheet)."
        ),
        validators=[InputRequired(_l("Enter the price of one euro in kronor, for example 11,25."))],
    )


PROGRAMME_DATES = {"years_back": 30, "years_ahead": 20}  # a programme's dates


class ProgrammeForm(Form):
    admin_cap = MoneyField(
        _l("Administration cap (% of each year's allocation)"),
        description=_l(
            "For example 5. The administration envelope of a year is opened with this share when the year is added."
        ),
        validators=[InputRequired(_l("Enter the cap as a percentage, for example 5."))],
    )
    eur_rate = ExchangeRateForm.eur_rate
    return_deadline = LocalDateField(
        _l("Return unspent money by"), **PROGRAMME_DATES, validators=[Optional()]
    )
    report_dates = StringField(
        _l("Report dates"),
        filters=[strip],
        description=_l(
            "Dates the programme reports by, separated by commas: 2016-10-15, 2017-03-31, 2018-03-31."
        ),
        validators=[Length(max=500), single_line],
    )


class YearForm(Form):
    year = IntegerField(
        _l("Year"),
        validators=[
            InputRequired(_l("Enter the year.")),
            NumberRange(min=2000, max=2100, message=_l("Enter a year from 2000 to 2100.")),
        ],
    )
    allocation = MoneyField(
        _l("Allocation (SEK)"), validators=[InputRequired(_l("Enter the year's allocation in kronor."))]
    )
    requisition_deadline = LocalDateField(
        _l("Requisition deadline"), **PROGRAMME_DATES, validators=[Optional()]
    )

    def validate_requisition_deadline(self, field) -> None:
        """The money of a year is requisitioned in that year, or the one before or after it."""
        if field.data and self.year.data and not self.year.data - 1 <= field.data.year <= self.year.data + 1:
            raise ValidationError(
                _l(
                    "Enter a requisition deadline from %(first)d to %(last)d.",
                    first=self.year.data - 1,
                    last=self.year.data + 1,
                )
            )


class AwardForm(Form):
    programme_year = SelectField(
        _l("From the programme year"), coerce=int, validators=[InputRequired(_l("Choose a programme year."))]
    )
    amount = MoneyField(
        _l("Amount awarded (SEK)"), validators=[InputRequired(_l("Enter the amount in kronor."))]
    )


class PaymentForm(Form):
    """Approving a payment is one button (the final instalment is released by the final report)."""


class ReduceForm(Form):
    amount = MoneyField(
        _l("New amount (SEK)"), validators=[InputRequired(_l("Enter the new amount in kronor."))]
    )


class AdminCostForm(Form):
    amount = MoneyField(_l("Amount (SEK)"), validators=[InputRequired(_l("Enter the amount in kronor."))])
    memo = TextAreaField(_l("What it is for"), filters=[strip], validators=[Length(max=500)])
