"""Validators and fields shared by every module's forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from stdnum.exceptions import ValidationError as NumberError
from stdnum.se import orgnr
from wtforms import Field
from wtforms.validators import StopValidation, ValidationError

from challenges.core.security import is_header_safe


def single_line(form, field: Field) -> None:
    """Refuse line breaks, NUL and encoded-word openers: such text could reach a mail header."""
    if field.data and not is_header_safe(field.data):
        raise ValidationError(_l("Use a single line without the characters “=?”."))


def strip(value):
    return value.strip() if isinstance(value, str) else value


def org_number(form, field: Field) -> None:
    """A Swedish organisation number: ten digits (NNNNNN-NNNN) with a valid check digit."""
    if not field.data:
        return
    try:
        field.data = orgnr.format(orgnr.validate(field.data))
    except NumberError as exc:
        if "checksum" in type(exc).__name__.lower():
            raise ValidationError(
                _l("The check digit does not match. Check the number for typing errors.")
            ) from exc
        raise ValidationError(_l("Enter ten digits in the form NNNNNN-NNNN.")) from exc


COMMON_PASSWORDS = frozenset(
    ["password", "password1", "password123", "passw0rd", "1234567890", "12345678910", "123456789a", "qwertyuiop", "qwerty12345", "qwerty123456", "iloveyou123", "letmein123", "welcome123", "admin12345", "lösenord", "lösenord1", "sommar2016", "sommar2017", "vinter2016", "vinter2017", "abcdefghij", "0000000000", "1111111111", "changeme123"]
)


def good_password(form, field: Field) -> None:
    """At least 10 characters, at most 256, not a well-known password, not the email address."""
    value = field.data or ""
    if len(value) < 10:
        raise ValidationError(_l("Use at least 10 characters."))
    if len(value) > 256:
        raise ValidationError(_l("Use at most 256 characters."))
    if value.lower() in COMMON_PASSWORDS or len(set(value)) < 4:
        raise ValidationError(_l("This password is too easy to guess. Choose another."))
    email = getattr(form, "email", None)
    if email is not None and email.data and value.lower() == email.data.strip().lower():
        raise ValidationError(_l("The password must not be your email address."))


class RequiredWhen:
    """Required when *condition(form)* holds; otherwise an empty field is simply optional."""

    field_flags = {"optional": True}

    def __init__(self, condition, message) -> None:
        self.condition = condition
        self.message = message

    def __call__(self, form, field: Field) -> None:
        if field.raw_data and str(field.raw_data[0]).strip():
            return
        field.errors[:] = []
        if self.condition(form):
            raise StopValidation(self.message)
        raise StopValidation()
