"""Forms for registration, login, passwords, invitations, roles and profiles."""

from __future__ import annotations

import enum

from wtforms import EmailField, PasswordField, RadioField, SelectField, StringField
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
)

from challenges.accounts.models import MailMode, OrganisationKind, Role
from challenges.core.forms import ConfirmForm as ConfirmForm
from challenges.core.forms import (
    Form,
    IntegerField,
    MoneyField,
    RequiredWhen,
    good_password,
    org_number,
    single_line,
    strip,
)
from challenges.core.translation import lazy_gettext as _l

LANGUAGE_CHOICES = [("en", "English"), ("sv", "Svenska")]


def _new(form) -> bool:
    return form.organisation_choice.data == "new"


def _new_sme(form) -> bool:
    return _new(form) and form.kind.data == OrganisationKind.sme.value


def email_field(label=None):
    return EmailField(
        label or _l("Email address"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter your email address.")),
            Length(max=254, message=_l("Use at most 254 characters.")),
            Email(_l("Enter an email address like name@example.se."), check_deliverability=False),
            single_line,
        ],
    )


def name_field(label=None):
    return StringField(
        label or _l("Your name"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter your name.")),
            Length(max=120, message=_l("Use at most 120 characters.")),
            single_line,
        ],
    )


def new_password_fields():
    return (
        PasswordField(_l("Password"), validators=[DataRequired(_l("Choose a password.")), good_password]),
        PasswordField(
            _l("Repeat the password"),
            validators=[
                DataRequired(_l("Repeat the password.")),
                EqualTo("password", _l("The two passwords are not the same.")),
            ],
        ),
    )


class RegistrationForm(Form):
    name = name_field()
    email = email_field()
    password, password_confirm = new_password_fields()
    organisation_choice = RadioField(
        _l("Organisation"),
        choices=[
            ("new", _l("Register a new organisation")),
            ("existing", _l("Join an organisation that is already registered")),
        ],
        validators=[InputRequired(_l("Choose whether to register or join an organisation."))],
    )
    org_number = StringField(
        _l("Organisation number"),
        description=_l("Ten digits, for example 556016-0680."),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the organisation number.")),
            Length(max=13, message=_l("Enter ten digits in the form NNNNNN-NNNN.")),
            org_number,
        ],
    )
    org_name = StringField(
        _l("Organisation name"),
        filters=[strip],
        validators=[
            RequiredWhen(_new, _l("Enter the organisation's name.")),
            Length(max=200, message=_l("Use at most 200 characters.")),
            single_line,
        ],
    )
    kind = RadioField(
        _l("Kind of organisation"),
        choices=[
            (OrganisationKind.industrial.value, _l("Industrial company (publishes challenges)")),
            (OrganisationKind.sme.value, _l("Small or medium-sized enterprise (submits proposals)")),
        ],
        validators=[RequiredWhen(_new, _l("Choose the kind of organisation."))],
    )
    staff_headcount = IntegerField(
        _l("Staff headcount"),
        validators=[
            RequiredWhen(_new_sme, _l("Enter the staff headcount (an SME must give it).")),
            NumberRange(min=0, max=10_000_000, message=_l("Enter a whole number of 0 or more.")),
        ],
    )
    annual_turnover = IntegerField(
        _l("Annual turnover (SEK)"),
        validators=[
            RequiredWhen(_new_sme, _l("Enter the annual turnover in kronor (an SME must give it).")),
            NumberRange(min=0, max=10**13, message=_l("Enter a whole number of kronor, 0 or more.")),
        ],
    )
    balance_sheet_total = IntegerField(
        _l("Balance-sheet total (SEK)"),
        validators=[
            RequiredWhen(_new_sme, _l("Enter the balance-sheet total in kronor (an SME must give it).")),
            NumberRange(min=0, max=10**13, message=_l("Enter a whole number of kronor, 0 or more.")),
        ],
    )


class LoginForm(Form):
    email = email_field()
    password = PasswordField(
        _l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=256)]
    )


class ForgotPasswordForm(Form):
    email = email_field()


class ResetPasswordForm(Form):
    password, password_confirm = new_password_fields()


class ChangePasswordForm(Form):
    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired(_l("Enter your current password."))]
    )
    password, password_confirm = new_password_fields()


def _enum_value(value) -> str:
    return value.value if isinstance(value, enum.Enum) else str(value)


class ProfileForm(Form):
    name = name_field()
    language = SelectField(_l("Language for pages and email"), choices=LANGUAGE_CHOICES)
    mail_mode = RadioField(
        _l("Email about challenges you follow, questions and answers"),
        description=_l(
            "Deadlines, decisions, awards, payments and account security are always emailed at once."
        ),
        choices=[
            (MailMode.immediate.value, _l("At once, one email each")),
            (MailMode.daily.value, _l("One summary a day (in the morning)")),
            (MailMode.off.value, _l("Not by email: only under Messages on the site")),
        ],
        coerce=_enum_value,
        default=MailMode.immediate.value,
    )


class InviteForm(Form):
    email = email_field(_l("Evaluator's email address"))
    language = SelectField(_l("Language of the invitation"), choices=LANGUAGE_CHOICES)


class AcceptInvitationNewForm(Form):
    name = name_field()
    password, password_confirm = new_password_fields()


class AcceptInvitationExistingForm(Form):
    password = PasswordField(
        _l("Your current password"), validators=[DataRequired(_l("Enter your password."))]
    )


class RoleForm(Form):
    role = SelectField(
        _l("Role"),
        choices=[
            (Role.programme_manager.value, _l("Programme manager")),
            (Role.evaluator.value, _l("Evaluator")),
        ],
    )


class OrganisationFiguresForm(Form):
    """What the EU SME test needs, kept up to date by the organisation's members."""

    org_number = StringField(
        _l("Organisation number"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the organisation number.")),
            Length(max=13, message=_l("Enter ten digits in the form NNNNNN-NNNN.")),
            org_number,
        ],
    )
    staff_headcount = IntegerField(
        _l("Staff headcount"),
        validators=[
            InputRequired(_l("Enter the staff headcount.")),
            NumberRange(min=0, max=10_000_000, message=_l("Enter a whole number of 0 or more.")),
        ],
    )
    annual_turnover = MoneyField(
        _l("Annual turnover (SEK)"), validators=[InputRequired(_l("Enter the annual turnover in kronor."))]
    )
    balance_sheet_total = MoneyField(
        _l("Balance-sheet total (SEK)"),
        validators=[InputRequired(_l("Enter the balance-sheet total in kronor."))],
    )
