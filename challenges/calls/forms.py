"""Forms for drafting and amending challenges, questions, follows and topics."""

from __future__ import annotations

from datetime import datetime, time

import wtforms
from wtforms import (
    BooleanField,
    EmailField,
    FieldList,
    FormField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from challenges.calls.models import OFFER_LABELS, Challenge, Topic, TopicKind
from challenges.calls.services import ChallengeContent
from challenges.core.formatting import to_local
from challenges.core.forms import (
    Form,
    IntegerField,
    LocalDateField,
    LocalTimeField,
    MoneyField,
    TextAreaField,
    local_instant,
    single_line,
    strip,
)
from challenges.core.translation import lazy_gettext as _l
from challenges.programmes.models import ProgrammeYear

DEFAULT_CRITERIA = [  # the programme's three criteria; each scored 1–7
    (_l("Potential"), 40),
    (_l("Team and capacity"), 30),
    (_l("Feasibility of implementation"), 30),
]
CRITERIA_ROWS = 6


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _text(label, required_message, max_length, description=None, markdown=True):
    return TextAreaField(
        label,
        description=description,
        filters=[strip],
        markdown=markdown,
        validators=[
            DataRequired(required_message),
            Length(max=max_length, message=_l("Use at most %(max)d characters.")),
        ],
    )


def _deadline_fields(label):
    return (
        LocalDateField(
            label,
            description=_l("Swedish time (Europe/Stockholm)."),
            years_back=30,
            years_ahead=3,
            validators=[InputRequired(_l("Enter the date of the deadline."))],
        ),
        LocalTimeField(
            _l("Time of day"),
            default=time(12, 0),
            validators=[InputRequired(_l("Enter the time of the deadline."))],
        ),
    )


class CriterionForm(wtforms.Form):
    name = StringField(
        _l("Criterion"),
        filters=[strip],
        validators=[Length(max=200, message=_l("Use at most %(max)d characters."))],
    )
    weight = IntegerField(
        _l("Weight"),
        validators=[Optional(), NumberRange(min=0, max=100, message=_l("Enter a weight from 0 to 100."))],
    )


class ChallengeForm(Form):
    programme_year = SelectField(
        _l("Programme year"), coerce=int, validators=[InputRequired(_l("Choose a programme year."))]
    )
    title = StringField(
        _l("Title"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter a title.")),
            Length(max=200, message=_l("Use at most %(max)d characters for the title.")),
            single_line,
        ],
    )
    summary = StringField(
        _l("One-line summary"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter a one-line summary.")),
            Length(max=300, message=_l("Use at most %(max)d characters.")),
            single_line,
        ],
    )
    description = _text(
        _l("Description"),
        _l("Describe the challenge."),
        20000,
        _l("Markdown: **bold**, *italic*, lists, links and tables. HTML is shown as text."),
    )
    area = SelectField(
        _l("Priority area"),
        coerce=int,
        validators=[InputRequired(_l("Choose one of the programme's priority areas."))],
    )
    themes = MultiCheckboxField(
        _l("Technology themes"),
        coerce=int,
        validators=[DataRequired(_l("Choose at least one technology theme."))],
    )
    must_demonstrate = _text(
        _l("What a solution must demonstrate"), _l("Say what a solution must demonstrate."), 10000
    )
    max_funding = MoneyField(
        _l("Maximum funding per proposal (SEK)"),
        validators=[InputRequired(_l("Enter the maximum funding per proposal in kronor."))],
    )
    awards_planned = IntegerField(
        _l("Number of awards planned"),
        default=1,
        validators=[
            InputRequired(_l("Enter the number of awards planned.")),
            NumberRange(min=1, max=100, message=_l("Enter a number of awards from 1 to 100.")),
        ],
    )
    deadline_date, deadline_time = _deadline_fields(_l("Submission deadline"))
    criteria = FieldList(FormField(CriterionForm), min_entries=CRITERIA_ROWS, max_entries=CRITERIA_ROWS)
    agreement = _text(
        _l("Challenge agreement"),
        _l("Enter the challenge agreement that applicants accept."),
        20000,
        _l("The terms on intellectual property and confidentiality that every applicant accepts."),
    )
    offers = MultiCheckboxField(
        _l("What you offer solvers"), choices=[(k.value, v) for k, v in OFFER_LABELS.items()]
    )
    offers_details = TextAreaField(
        _l("Details of what you offer"),
        filters=[strip],
        markdown=True,
        validators=[Length(max=5000, message=_l("Use at most %(max)d characters."))],
    )
    contact_name = StringField(
        _l("Contact person"),
        filters=[strip],
        validators=[DataRequired(_l("Enter the contact person's name.")), Length(max=120), single_line],
    )
    contact_email = EmailField(
        _l("Contact person's email address"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the contact person's email address.")),
            Length(max=254),
            Email(_l("Enter an email address like name@example.se."), check_deliverability=False),
            single_line,
        ],
    )

    deadline: datetime | None = None

    def set_choices(self, years: list[ProgrammeYear], areas: list[Topic], themes: list[Topic]) -> None:
        self.programme_year.choices = [(y.id, f"{y.programme.name} {y.year}") for y in years]
        self.area.choices = [(t.id, t.label) for t in areas]
        self.themes.choices = [(t.id, t.label) for t in themes]

    def fill_defaults(self, user) -> None:
        for row, (name, weight) in zip(self.criteria, DEFAULT_CRITERIA, strict=False):
            row.form.name.data, row.form.weight.data = str(name), weight
        self.contact_name.data, self.contact_email.data = user.name, user.email

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        self.deadline = local_instant(self.deadline_date, self.deadline_time)
        # Flatten the rows' errors into one list of messages for the summary and the fieldset.
        messages = [str(m) for row in self.criteria for f in row.form for m in f.errors]
        if any(
            bool(r.form.name.data) != (r.form.weight.data is not None)
            for r in self.criteria
            if not r.form.weight.errors
        ):
            messages.append(str(_l("Give each criterion both a name and a weight.")))
        self.criteria.errors = list(dict.fromkeys(messages))
        return ok and not messages and self.deadline is not None

    def content(self) -> ChallengeContent:
        assert self.deadline is not None
        return ChallengeContent(
            programme_year_id=self.programme_year.data,
            title=self.title.data,
            summary=self.summary.data,
            description=self.description.data,
            area_id=self.area.data,
            theme_ids=list(self.themes.data),
            must_demonstrate=self.must_demonstrate.data,
            max_funding_ore=int(self.max_funding.data or 0),
            awards_planned=self.awards_planned.data,
            deadline=self.deadline,
            agreement=self.agreement.data,
            contact_name=self.contact_name.data,
            contact_email=self.contact_email.data,
            criteria=[(r.form.name.data, r.form.weight.data) for r in self.criteria if r.form.name.data],
            offers=list(self.offers.data or []),
            offers_details=self.offers_details.data or "",
        )

    def load(self, challenge: Challenge) -> None:
        """Fill a GET form from a saved draft (deadline in Stockholm time, money in kronor)."""
        self.process(obj=challenge)
        self.programme_year.data = challenge.programme_year_id
        self.area.data = challenge.area_id
        self.themes.data = [t.id for t in challenge.themes]
        self.max_funding.data = challenge.max_funding_ore
        local = to_local(challenge.deadline)
        self.deadline_date.data, self.deadline_time.data = local.date(), local.time()
        for i, row in enumerate(self.criteria):
            c = challenge.criteria[i] if i < len(challenge.criteria) else None
            row.form.name.data, row.form.weight.data = (c.name, c.weight) if c else (None, None)


class ClarificationForm(Form):
    text = _text(
        _l("Clarification"),
        _l("Write the clarification."),
        10000,
        _l("Appended to the challenge with today's date. The published text does not change."),
    )


class ExtendDeadlineForm(Form):
    deadline_date, deadline_time = _deadline_fields(_l("New deadline"))
    reason = TextAreaField(
        _l("Reason (optional)"),
        filters=[strip],
        validators=[Length(max=2000, message=_l("Use at most %(max)d characters."))],
    )

    deadline: datetime | None = None

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        self.deadline = local_instant(self.deadline_date, self.deadline_time)
        return ok and self.deadline is not None


class QuestionForm(Form):
    text = _text(
        _l("Your question"),
        _l("Write your question."),
        2000,
        _l("The answer is published on this page. Your name and company are not shown."),
        markdown=False,
    )


class AnswerForm(Form):
    text = _text(_l("Answer"), _l("Write the answer."), 10000)


class ReturnForm(Form):
    comment = _text(
        _l("What should the owner change?"), _l("Say what the owner should change."), 5000, markdown=False
    )


class FollowTopicsForm(Form):
    topics = MultiCheckboxField(_l("Areas and themes"), coerce=int)


class TopicForm(Form):
    kind = RadioField(
        _l("Kind"),
        choices=[
            (TopicKind.area.value, _l("Priority area")),
            (TopicKind.theme.value, _l("Technology theme")),
        ],
        default=TopicKind.theme.value,
    )
    name_en = StringField(
        _l("Name in English"),
        filters=[strip],
        validators=[DataRequired(_l("Enter the name in English.")), Length(max=120), single_line],
    )
    name_sv = StringField(
        _l("Name in Swedish"),
        filters=[strip],
        validators=[DataRequired(_l("Enter the name in Swedish.")), Length(max=120), single_line],
    )
    active = BooleanField(_l("Offered for new challenges and follows"), default=True)
