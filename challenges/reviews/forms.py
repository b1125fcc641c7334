"""Forms for conflicts of interest, scoring, recusal, screening, assignment and decisions."""

from __future__ import annotations

import functools
import re
from datetime import datetime

from wtforms import (
    BooleanField,
    DecimalField,
    RadioField,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from challenges.core.forms import (
    Form,
    IntegerField,
    LocalDateField,
    LocalTimeField,
    TextAreaField,
    local_instant,
    org_number,
    single_line,
    strip,
)
from challenges.core.translation import lazy_gettext as _l
from challenges.reviews.models import DECISION_LABELS, RELATION_LABELS, SCALE, SCALE_LABELS

_TOO_LONG = _l("Use at most %(max)d characters.")


def _text(label, message, max_length=5000, description=None, required=True):
    validators = [DataRequired(message)] if required else []
    return TextAreaField(
        label,
        description=description,
        filters=[strip],
        validators=[*validators, Length(max=max_length, message=_TOO_LONG)],
    )


class ConflictForm(Form):
    org_number = StringField(
        _l("Organisation number"),
        filters=[strip],
        description=_l("Ten digits, NNNNNN-NNNN."),
        validators=[
            DataRequired(_l("Enter the organisation number.")),
            Length(max=13, message=_l("Enter ten digits in the form NNNNNN-NNNN.")),
            org_number,
        ],
    )
    organisation_name = StringField(
        _l("Organisation name"),
        filters=[strip],
        description=_l("Needed only if the organisation is not registered here."),
        validators=[Length(max=200, message=_TOO_LONG), single_line],
    )
    relation = RadioField(
        _l("Your relation to it"),
        choices=[(k.value, v) for k, v in RELATION_LABELS.items()],
        validators=[InputRequired(_l("Choose your relation to the organisation."))],
    )


class RecuseForm(Form):
    reason = _text(
        _l("Why you recuse"),
        _l("Give the reason for your recusal."),
        2000,
        _l("The programme manager reads it; the applicant does not."),
    )


def score_form(criteria, formdata=None) -> Form:
    """A form with one 1–7 or N/A choice per criterion of the challenge, and the two comments."""
    form_class = _score_form_class(tuple((c.id, c.name) for c in criteria))
    return form_class(formdata=formdata) if formdata is not None else form_class()


@functools.lru_cache(maxsize=512)
def _score_form_class(criteria: tuple[tuple[int, str], ...]) -> type[Form]:
    """The form class for these criteria (id, name), made once: a review page is shown far more often
    than a challenge's criteria change."""

    class ScoreForm(Form):
        # Required, but checked by the service so that every missing part is named at once.
        comment_to_applicant = _text(
            _l("Comment to the applicant"),
            "",
            5000,
            _l("The applicant reads it with the decision, without your name."),
            required=False,
        )
        comment_to_programme = _text(
            _l("Private comment to the programme manager"),
            "",
            5000,
            _l("Only programme managers read it."),
            required=False,
        )

    choices = [(str(n), SCALE_LABELS[n]) for n in SCALE] + [("na", _l("N/A – cannot be judged"))]
    for criterion_id, name in criteria:
        setattr(
            ScoreForm, f"criterion_{criterion_id}", RadioField(name, choices=choices, validate_choice=False)
        )
    return ScoreForm


def scores_from(form, criteria) -> dict[int, int | None]:
    """The chosen scores: N/A is None; a criterion left out is missing (the service says so)."""
    scores: dict[int, int | None] = {}
    for c in criteria:
        value = getattr(form, f"criterion_{c.id}").data
        if value in (None, "", "None"):
            continue
        scores[c.id] = (
            None if value == "na" else (int(value) if re.fullmatch(r"[0-9]{1,3}", str(value)) else -1)
        )
    return scores


class PointsField(DecimalField):
    """A number of points, with a decimal comma or point ("1,5" or "1.5")."""

    def process_formdata(self, valuelist) -> None:
        super().process_formdata([str(v).strip().replace(",", ".") for v in valuelist])
        value = self.data  # type: ignore[has-type]
        if value is not None and not value.is_finite():
            self.data = None
            raise ValueError(_l("Enter a threshold from 0.1 to 6 points."))


class SettingsForm(Form):
    deadline_date = LocalDateField(
        _l("Review deadline"),
        years_back=30,
        years_ahead=5,
        validators=[InputRequired(_l("Enter the review deadline."))],
    )
    deadline_time = LocalTimeField(_l("Time of day"), validators=[InputRequired(_l("Enter the time."))])
    evaluators_per_proposal = IntegerField(
        _l("Evaluators per proposal"),
        validators=[
            InputRequired(_l("Enter a number of evaluators from 1 to 10.")),
            NumberRange(min=1, max=10, message=_l("Enter a number of evaluators from 1 to 10.")),
        ],
    )
    max_per_evaluator = IntegerField(
        _l("Most proposals per evaluator"),
        validators=[
            InputRequired(_l("Enter a maximum from 1 to 200.")),
            NumberRange(min=1, max=200, message=_l("Enter a maximum from 1 to 200.")),
        ],
    )
    disagreement = PointsField(
        _l("Flag disagreement above (points)"),
        places=1,
        validators=[
            InputRequired(_l("Enter a threshold from 0.1 to 6 points.")),
            NumberRange(min=0.1, max=6, message=_l("Enter a threshold from 0.1 to 6 points.")),
        ],
    )
    blind = BooleanField(_l("Blind review: hide the applicant's identity from evaluators"))
    calibration = BooleanField(_l("Show calibrated scores (z-scores per evaluator)"))

    deadline: datetime | None = None

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        self.deadline = local_instant(self.deadline_date, self.deadline_time)
        return ok and self.deadline is not None


class ScreenForm(Form):
    eligible = RadioField(
        _l("Screening"),
        choices=[("yes", _l("Eligible")), ("no", _l("Not eligible"))],
        validators=[InputRequired(_l("Choose eligible or not eligible."))],
    )
    reason = _text(_l("Reason the applicant will read (if not eligible)"), "", 2000, required=False)


class AssignForm(Form):
    evaluator = SelectField(
        _l("Evaluator"), coerce=int, validators=[InputRequired(_l("Choose an evaluator."))]
    )
    justification = _text(
        _l("Justification (needed if there is a conflict of interest)"), "", 2000, required=False
    )


class DecisionForm(Form):
    decision = RadioField(
        _l("Decision"),
        choices=[(k.value, v) for k, v in DECISION_LABELS.items()],
        validators=[InputRequired(_l("Choose a decision."))],
    )
    reason = _text(
        _l("Reason"),
        _l("Give the reason for the decision."),
        5000,
        _l("The applicant reads it when the decisions are published."),
    )
    override = _text(_l("Why decide before every review is in"), "", 2000, required=False)
