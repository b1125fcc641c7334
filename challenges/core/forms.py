"""Validators and fields shared by every module's forms."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Any, cast

from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from stdnum.exceptions import ValidationError as NumberError
from stdnum.se import orgnr
from wtforms import DateField, Field, FieldList, FormField, PasswordField, StringField, TimeField, widgets
from wtforms import IntegerField as WTFormsIntegerField
from wtforms import TextAreaField as WTFormsTextAreaField
from wtforms.csrf.core import CSRFTokenField
from wtforms.validators import StopValidation, ValidationError
from wtforms.widgets.core import clean_key
from zxcvbn import zxcvbn

from challenges.core import markdown
from challenges.core.formatting import NonexistentLocalTime, from_local, local_day
from challenges.core.models import utcnow
from challenges.core.security import is_header_safe
from challenges.core.translation import lazy_gettext as _l


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


# What a guesser tries first here, besides the person's own name and address: Swedish seasons and
# words, the platform's own, and the demo password printed in the README.
PLATFORM_WORDS = (
    "sommar",
    "vinter",
    "höst",
    "hösten",
    "vår",
    "våren",
    "lösenord",
    "losenord",
    "innovation",
    "öppen",
    "oppen",
    "industri",
    "utmaning",
    "challenge",
    "programme",
    "demo",
    "sverige",
    "stockholm",
)
KNOWN_PASSWORDS = frozenset({"demo-innovation-2016"})
GENERIC_DOMAINS = frozenset({"mail", "gmail", "hotmail", "outlook", "yahoo", "icloud", "live", "example"})
# zxcvbn's estimate of the guesses needed (its frequency lists of breached passwords, words and names,
# and its patterns: dates, sequences, keyboard walks, l33t): at least 10^9, a little above its "safely
# unguessable" band, so that a word, a year and a sign ("Sommar2016!") is refused.
MIN_GUESSES_LOG10 = 9
ZXCVBN_LENGTH = 72  # zxcvbn reads no more; a passphrase that long is not the weak one


def _personal_words(form) -> list[str]:
    """The person's name and address cut into words: from the form's own fields, or from *form.person*
    (a name and an address) where the form has none."""
    texts = [getattr(getattr(form, name, None), "data", None) for name in ("name", "email")]
    words: set[str] = set()
    for text in filter(None, [*texts, *getattr(form, "person", ())]):
        local, _at, domain = str(text).lower().partition("@")
        words.update(w for w in re.split(r"[\W_]+", local) if len(w) >= 3)
        words.update(w for w in domain.split(".")[:-1] if len(w) >= 4 and w not in GENERIC_DOMAINS)
    return sorted(words)


def good_password(form, field: Field) -> None:
    """At least 10 characters and at most 256; not common, not a common pattern, not the person's own
    name or address (checked by zxcvbn, offline, with its lists of breached passwords and words)."""
    value = field.data or ""
    if len(value) < 10:
        raise ValidationError(_l("Use at least 10 characters."))
    if len(value) > 256:
        raise ValidationError(_l("Use at most 256 characters."))
    personal = _personal_words(form)
    lowered = value.lower()
    if any(word in lowered for word in personal if len(word) >= 4) or lowered in personal:
        raise ValidationError(_l("The password must not contain your name or email address."))
    if (
        lowered in KNOWN_PASSWORDS
        or len(set(value)) < 4
        or zxcvbn(value[:ZXCVBN_LENGTH], user_inputs=[*PLATFORM_WORDS, *personal])["guesses_log10"]
        < MIN_GUESSES_LOG10
    ):
        raise ValidationError(
            _l(
                "This password is too easy to guess: it is a common one, or a word with digits or "
                "a year. A few words that do not belong together make a strong one."
            )
        )


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


# Only the digits 0-9 and the separators Swedish and English writers use: Python's \d (and int(),
# strptime) also take Arabic-Indic, full-width and other digits, which read as something else.
_AMOUNT = re.compile(r"^([0-9]{1,3}(?:[ \u00a0\u202f][0-9]{3})+|[0-9]+)(?:[,.]([0-9]{1,2}))?$")
_WHOLE = re.compile(r"^\s*[-\u2212]?[0-9]+\s*$")
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_CLOCK = re.compile(r"^[0-9]{1,2}:[0-9]{2}$")


MAX_KRONOR = 10**13  # ten thousand billion kronor: anything larger is a typing error


class MoneyField(StringField):
    """An amount typed in kronor ("250 000", "1 500,50", "250000 kr"), held as integer öre."""

    def process_formdata(self, valuelist) -> None:
        self.data = None
        if not valuelist or not str(valuelist[0]).strip():
            return
        text = str(valuelist[0]).strip().lower().removesuffix("sek").removesuffix("kr").strip()
        negative = text.startswith(("-", "\u2212"))
        match = _AMOUNT.match(text.lstrip("-\u2212").strip())
        if match is None and re.fullmatch(
            r"[0-9 \u00a0\u202f]+[,.][0-9]{3,}", text.lstrip("-\u2212").strip()
        ):
            raise ValueError(_l("Use at most two decimals: kronor and öre, for example 1 250,50."))
        if match is None:
            raise ValueError(_l("Enter an amount in kronor, for example 250 000."))
        kronor = int(re.sub(r"[^0-9]", "", match.group(1)))
        if kronor > MAX_KRONOR:
            raise ValueError(_l("This amount is too large. Check the number of digits."))
        ore = kronor * 100 + int((match.group(2) or "0").ljust(2, "0"))
        self.data = -ore if negative else ore

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        if self.data is None:
            return ""
        kronor, ore = divmod(int(self.data), 100)
        return f"{kronor}" if not ore else f"{kronor},{ore:02d}"


def date_bounds(years_back: int, years_ahead: int) -> tuple[date, date]:
    """The first and last day from *years_back* years before Stockholm's today to *years_ahead* after it."""
    today = local_day(utcnow())
    return (
        today.replace(year=today.year - years_back, day=min(today.day, 28)),
        today.replace(year=today.year + years_ahead, day=min(today.day, 28)),
    )


class IntegerField(WTFormsIntegerField):
    """WTForms's whole number, in the digits 0-9 only."""

    data: Any

    def process_formdata(self, valuelist) -> None:
        if valuelist and str(valuelist[0]).strip() and not _WHOLE.match(str(valuelist[0])):
            self.data = None
            raise ValueError(self.gettext("Not a valid integer value."))
        super().process_formdata([str(v).replace("\u2212", "-") for v in valuelist])


class LocalDateField(DateField):
    """A date (YYYY-MM-DD, as a date input sends it, in the digits 0-9) with a message people understand,
    between *years_back* years before today and *years_ahead* years after it (Stockholm's today): bounds
    that fit what the date means, so that a deadline in 9000 or a milestone in 1900 is a message."""

    data: Any

    def __init__(self, *args, years_back: int, years_ahead: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.years_back, self.years_ahead = years_back, years_ahead

    def bounds(self) -> tuple[date, date]:
        return date_bounds(self.years_back, self.years_ahead)

    def process_formdata(self, valuelist) -> None:
        if valuelist and str(valuelist[0]).strip() and not ISO_DATE.match(str(valuelist[0]).strip()):
            self.data = None
            raise ValueError(_l("Enter a real date, for example 2026-03-31."))
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError(_l("Enter a real date, for example 2026-03-31.")) from exc
        day = cast("date | None", self.data)
        first, last = self.bounds()
        if day is not None and not first <= day <= last:
            self.data = None
            raise ValueError(
                _l("Enter a date from %(first)s to %(last)s.", first=first.isoformat(), last=last.isoformat())
            )


class LocalTimeField(TimeField):
    """A wall-clock time (HH:MM) in Stockholm."""

    def process_formdata(self, valuelist) -> None:
        try:
            if valuelist and str(valuelist[0]).strip() and not _CLOCK.match(str(valuelist[0]).strip()):
                raise ValueError("not a time in the digits 0-9")
            super().process_formdata(valuelist)
        except ValueError as exc:
            self.data = None
            raise ValueError(_l("Enter a time as hours and minutes, for example 12:00.")) from exc


def local_instant(date_field: Field, time_field: Field) -> datetime | None:
    """The UTC instant of a Stockholm date and time, or None with the error on the time field."""
    if date_field.data is None or time_field.data is None:
        return None
    try:
        return from_local(date_field.data, time_field.data)
    except NonexistentLocalTime:
        time_field.errors = [
            *time_field.errors,
            _l(
                "This time does not exist in Sweden: the clocks go forward an hour that night. Choose another time."
            ),
        ]
        return None


def _drop_nul(value):
    return value.replace("\x00", "") if isinstance(value, str) else value


# Characters that show nothing or turn the text around: zero-width spaces and joiners, bidirectional
# overrides and isolates, soft hyphens, and the other format and control characters. A name or title
# holding them reads as something else than what is stored. Line breaks and tabs are left to the
# validators (single_line refuses them where a line break could reach a mail header).
_KEPT_CONTROLS = frozenset("\n\r\t\x0b\x0c\x1c\x1d\x1e\x85")
_ASCII_CONTROLS = {c: None for c in [*range(0x20), 0x7F] if chr(c) not in _KEPT_CONTROLS}


def _visible_only(value):
    if not isinstance(value, str):
        return value
    if value.isascii():  # the common case, without a look at each character's category
        return value.translate(_ASCII_CONTROLS)
    return "".join(c for c in value if c in _KEPT_CONTROLS or unicodedata.category(c) not in ("Cf", "Cc"))


# --- rendering ------------------------------------------------------------------------------------


def html_attributes(**attributes) -> Markup:
    """What WTForms's ``html_params`` writes (sorted, ``True`` as a bare name, ``False`` left out,
    names and values escaped), without formatting each attribute through ``Markup.format``: a review
    page's three text areas and two tokens took a tenth of its time that way."""
    written = []
    quote, entity = Markup('"'), Markup("&quot;")
    for key, value in sorted(attributes.items()):
        if value is True:
            written.append(str(escape(clean_key(key))))
        elif value is not False:
            written.append(f'{escape(clean_key(key))}="{escape(value).replace(quote, entity)}"')
    return Markup(" ".join(written))  # noqa: S704 - every name and value escaped above


class TextArea(widgets.TextArea):
    """WTForms's text area, its attributes written by :func:`html_attributes`."""

    def __call__(self, field, **kwargs) -> Markup:
        kwargs.setdefault("id", field.id)
        for name in self.validation_attrs:
            if name not in kwargs and name in vars(field.flags):
                kwargs[name] = getattr(field.flags, name)
        attributes = html_attributes(name=field.name, **kwargs)
        return Markup(f"<textarea {attributes}>\r\n{escape(field._value())}</textarea>")  # noqa: S704 - escaped


def markdown_text(form, field: Field) -> None:
    """Refuse a text that would not be shown as Markdown (lists nested too deep, too many brackets)."""
    reason = markdown.problem(field.data)
    if reason == "nesting":
        raise ValidationError(
            _l(
                "Lists and quotes are nested more than %(max)d levels deep here. Use fewer levels.",
                max=markdown.MAX_NESTING,
            )
        )
    if reason == "brackets":
        raise ValidationError(
            _l(
                "A paragraph here has too many square brackets to be shown. Split it into "
                "shorter paragraphs, or leave out brackets that are not part of a link."
            )
        )


class TextAreaField(WTFormsTextAreaField):
    """A text area; ``markdown=True`` for a text shown as Markdown, which must be one that can be."""

    widget = TextArea()

    def __init__(self, *args, markdown: bool = False, validators=(), **kwargs) -> None:
        super().__init__(*args, validators=[*validators, markdown_text] if markdown else validators, **kwargs)


class HiddenInput(widgets.HiddenInput):
    html_params = staticmethod(html_attributes)  # WTForms's place for it


class _TokenField(CSRFTokenField):
    widget = HiddenInput()


class _CSRF(FlaskForm.Meta.csrf_class):
    field_class = _TokenField  # WTForms's place for it


class Form(FlaskForm):
    """The base of every form: NUL characters never reach the database (PostgreSQL refuses them), and
    no text but a password keeps invisible or direction-changing characters."""

    class Meta:
        csrf_class = _CSRF

        def bind_field(self, form, unbound_field, options):
            if unbound_field.field_class not in (FieldList, FormField):
                # A password is taken as typed; every other text loses what shows nothing.
                first = _drop_nul if issubclass(unbound_field.field_class, PasswordField) else _visible_only
                filters = [first, *unbound_field.kwargs.get("filters", ())]
                return unbound_field.bind(form=form, **{**options, "filters": filters})
            return super().bind_field(form, unbound_field, options)  # type: ignore[misc]


class ConfirmForm(Form):
    """A button that changes state: only the CSRF token travels."""
