"""The project's own widgets write what WTForms's write, byte for byte."""

from __future__ import annotations

import pytest
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from wtforms import widgets
from wtforms.validators import DataRequired, Length
from wtforms.widgets.core import html_params

from challenges.core.forms import Form, TextAreaField, html_attributes

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
            assert isinstance(field.widget, widgets.TextArea)
            assert field(**kwargs) == widgets.TextArea()(field, **kwargs)
        assert 'maxlength="50"' in form.note() and "required" in form.note()  # from the validators' flags
        with_token = Form()
        token = with_token.csrf_token
        assert token(id=False) == widgets.HiddenInput()(token, id=False)
        assert f'value="{token.current_token}"' in token(id=False)
