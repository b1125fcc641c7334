"""The project's own widgets write what WTForms's write, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from wtforms import PasswordField, StringField, widgets
from wtforms.validators import DataRequired, Length
from wtforms.widgets.core import html_params

from challenges.core.forms import (
    Form,
    IntegerField,
    LocalDateField,
    LocalTimeField,
    MoneyField,
    TextAreaField,
    html_attributes,
    single_line,
)
from challenges.core.translation import lazy_gettext as _l

ODD = ['a "quoted" <b>word</b> & more', Markup('<i class="x">already safe</i>'), "plain", 7, "åäö"]


@pytest.mark.parametrize("value", ODD)
def test_attributes_are_written_as_wtforms_writes_them(value):
    attributes = {
        "value": value,
        "class_": "wide",
        "data_role": value,
        "aria_describedby": "x-hint",
        "required": True,
        "disabled": False,
        "rows": 5,
    }
    assert html_attributes(**attributes) == html_params(**attributes)


class _Notes(Form):
    class Meta:
        csrf = False

    note = TextAreaField("Note", validators=[DataRequired(), Length(min=2, max=50)])
    free = TextAreaField("Free")


@pytest.mark.parametrize("typed", ['Line one\r\nline "two" <script>', ""])
def test_text_areas_and_tokens_render_as_with_wtforms(app, typed):
    with app.test_request_context("/"):
        form = _Notes(formdata=MultiDict({"note": typed, "free": typed}))
        for field, kwargs in ((form.note, {"rows": 5, "aria_invalid": "true"}), (form.free, {})):
            assert type(field.widget) is not widgets.TextArea  # the project's own
            assert field(**kwargs) == widgets.TextArea()(field, **kwargs)
        assert 'maxlength="50"' in form.note() and "required" in form.note()  # from the validators' flags
        with_token = Form()
        token = with_token.csrf_token
        assert token(id=False) == widgets.HiddenInput()(token, id=False)
        assert f'value="{token.current_token}"' in token(id=False)


def test_the_field_macro_writes_a_hint_only_for_a_field_that_has_one(app):
    class Described(Form):
        class Meta:
            csrf = False

        with_hint = TextAreaField("With", description=_l("Only programme managers read it."))
        without = TextAreaField("Without", description=None)  # as the text helpers pass it

    with app.test_request_context("/"):
        form = Described(formdata=None)
        field = app.jinja_env.get_template("_forms.html").module.field
        described, bare = str(field(form.with_hint)), str(field(form.without))
    assert 'class="hint"' in described and "Only programme managers read it." in described
    assert 'aria-describedby="with_hint-hint"' in described
    assert "hint" not in bare and "None" not in bare


class _Typed(Form):
    class Meta:
        csrf = False

    name = StringField("Name", validators=[single_line])
    amount = MoneyField("Amount")
    count = IntegerField("Count")
    day = LocalDateField("Day", years_back=1, years_ahead=10)
    clock = LocalTimeField("Time")
    text = TextAreaField("Text")
    password = PasswordField("Password")


def _typed(app, **values) -> _Typed:
    with app.test_request_context("/"):
        form = _Typed(formdata=MultiDict(values))
        form.validate()
        return form


@pytest.mark.parametrize(
    ("field", "typed"),
    [
        ("amount", "1٠0"),
        ("amount", "１００"),
        ("amount", "4٠٠ ٠٠٠"),
        ("amount", "100,٥0"),
        ("count", "١٢"),
        ("count", "１２"),
        ("day", "２０２７-03-01"),
        ("day", "2027-٠3-01"),
        ("clock", "１２:００"),
    ],
)
def test_digits_other_than_0_to_9_are_refused(app, field, typed):
    """Python's \\d, int() and strptime take Arabic-Indic and full-width digits, which read as something else."""
    form = _typed(app, **{field: typed})
    assert form[field].errors and form[field].data is None


def test_the_digits_0_to_9_and_the_usual_separators_are_taken(app):
    form = _typed(app, amount="1\u00a0250,50", count=" 12 ", day="2027-03-01", clock="09:30")
    assert (form.amount.data, form.count.data, str(form.day.data), str(form.clock.data)) == (
        125_050,
        12,
        "2027-03-01",
        "09:30:00",
    )


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("Sara\u200b Nilsson", "Sara Nilsson"),  # a zero-width space
        ("Invoice \u202egnp.exe", "Invoice gnp.exe"),  # a right-to-left override
        ("Soft\u00adhyphen and \u2066isolate\u2069", "Softhyphen and isolate"),
        ("Bell\x07 and escape\x1b[31m", "Bell and escape[31m"),
    ],
)
def test_single_lines_lose_what_shows_nothing(app, typed, kept):
    form = _typed(app, name=typed, text=typed + "\nsecond line\ttab")
    assert form.name.data == kept and not form.name.errors
    assert form.text.data == kept + "\nsecond line\ttab"  # a text area keeps its lines and tabs


def test_a_password_is_taken_as_typed(app):
    assert _typed(app, password="pass\u200bword\u202e").password.data == "pass\u200bword\u202e"


def test_a_line_break_in_a_single_line_is_still_refused_not_dropped(app):
    assert _typed(app, name="Eve\r\nBcc: x@example.com").name.errors


@pytest.mark.parametrize("years", [-1900, 7000, -2, 11])
def test_a_date_outside_its_bounds_is_refused_with_them(app, years):
    """The field takes a year back to ten ahead of Stockholm's today."""
    today = datetime.now(UTC).date()
    form = _typed(app, day=f"{today.year + years:04d}-06-01")
    assert form.day.data is None and "Enter a date from" in str(form.day.errors[0])
