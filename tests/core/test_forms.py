"""The project's own widgets write what WTForms's write, byte for byte."""

from __future__ import annotations

import pytest
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from wtforms import widgets
from wtforms.validators import DataRequired, Length
from wtforms.widgets.core import html_params

from challenges.core.forms import Form, TextAreaField, html_attributes
from challenges.core.translation import lazy_gettext as _l

ODD = ['a "quoted" <b>word</b> & more', Markup('<i class="x">already safe</i>'), "plain", 7, "åäö"]


@pytest.mark.parametrize("value", ODD)
def test_attributes_are_written_as_wtforms_writes_them(value):
    attributes = {"value": value, "class_": "wide", "data_role": value, "aria_describedby": "x-hint",
                  "required": True, "disabled": False, "rows": 5}
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
