"""The programme manager's lessons for one report."""

from __future__ import annotations

from wtforms.validators import InputRequired

from challenges.core.forms import Form, LocalDateField, TextAreaField
from challenges.core.translation import lazy_gettext as _l


class LessonsForm(Form):
    as_of = LocalDateField(
        _l("The report's day (as of)"),
        years_back=30,
        years_ahead=20,
        validators=[InputRequired(_l("Enter the day the report is as of."))],
    )
    text = TextAreaField(_l("The programme manager's lessons (Markdown)"), markdown=True)
