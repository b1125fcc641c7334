"""Registration, login, passwords, organisation membership, and account administration."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from challenges.accounts import bp, forms, links, passwords, people, services, sessions
from challenges.accounts.models import (
    MailMode,
    MembershipState,
    OrganisationKind,
    TokenKind,
    User,
)
from challenges.core.errors import PermissionDenied, ServiceError
from challenges.core.pages import form_error
from challenges.core.security import DEVICE_DAYS, device_user, device_value, from_this_site, local_target
from challenges.extensions import csrf, db, limiter, login_manager


@login_manager.user_loader
def load_user(token: str) -> User | None:
    user = sessions.load_session(token, **sessions.SESSION_COUNTS)
    if user is not None:
        user.session_token = token
    return user


# --- registration and login ----------------------------------------------------------------


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(
    "10 per hour", methods=["POST"], key_func=lambda: _login_key("register", request.remote_addr or "unknown")
)
def register():
    form = forms.RegistrationForm()
    if form.validate_on_submit():
        new_org = join = None
        if form.organisation_choice.data == "new":
            sme = form.kind.data == OrganisationKind.sme.value
            new_org = services.NewOrganisation(
                name=form.org_name.data,
                org_number=form.org_number.data,
                kind=OrganisationKind(form.kind.data),
                staff_headcount=form.staff_headcount.data if sme else None,
                annual_turnover_ore=form.annual_turnover.data * 100 if sme else None,
                balance_sheet_total_ore=form.balance_sheet_total.data * 100 if sme else None,
            )
        else:
            join = form.org_number.data
        try:
            services.request_registration(
                services.Registration(
                    name=form.name.data,
                    email=form.email.data,
                    password=form.password.data,
                    language=str(get_locale() or "en")[:2],
                    new_organisation=new_org,
                    join_org_number=join,
                )
            )
            db.session.flush()
        except ServiceError as exc:
            form_error(form, exc)
        else:
            return render_template("accounts/registration_sent.html", email=form.email.data.strip().lower())
    return render_template("accounts/register.html", form=form)


@bp.route("/register/confirm/<token>", methods=["GET", "POST"])
def confirm_registration(token: str):
    """The emailed link: a page with a button (mail scanners open links; only a person posts the form)."""
    try:
        found = links.find_token(token, TokenKind.registration)
    except ServiceError as exc:
        return render_template("accounts/link_invalid.html", message=exc.message, again="register"), 410
    form = forms.ConfirmForm()
    if form.validate_on_submit():
        try:
            user = services.confirm_registration(token)
            session_token = sessions.start_session(user)
            db.session.flush()
        except (ServiceError, IntegrityError) as exc:
            db.session.rollback()
            message = (
                exc.message
                if isinstance(exc, ServiceError)
                else _(
                    "An account or organisation with these details was registered a moment ago. Register again."
                )
            )
            return render_template("accounts/link_invalid.html", message=message, again="register"), 409
        log_in(user, session_token)
        if user.membership and user.membership.state is MembershipState.pending:
            flash(
                _("Your account is ready. A member of the organisation must approve your request to join it.")
            )
        else:
            flash(_("Welcome! Your address is confirmed and your account is ready."))
        return _remember_device(redirect(url_for("core.home"), 303), user)
    return render_template("accounts/confirm_registration.html", form=form, email=found.email)


def _login_key(prefix: str, value: str) -> str:
    return f"{prefix}:{value}"


def _form_email() -> str:
    """The email address a login or reset form was posted with ("" if the body is unreadable)."""
    try:
        return (request.form.get("email") or "").strip().lower()
    except HTTPException:  # e.g. 413: the error page is shown; no account to count against
        return ""


def _failed(response) -> bool:
    return response.status_code != 303


def _device_cookie() -> str:
    return "__Host-device" if current_app.config["SESSION_COOKIE_SECURE"] else "device"


def _known_device() -> bool:
    """The browser carries the device cookie of the account it is logging in to: it logged in here before."""
    user_id = device_user(request.cookies.get(_device_cookie()))
    if user_id is None:
        return False
    user = people.user_by_email(_form_email())
    return user is not None and user.id == user_id


def _remember_device(response, user: User):
    """Mark this browser as one where *user* has proved who they are (a login, a reset by email)."""
    config = current_app.config
    response.set_cookie(
        _device_cookie(),
        device_value(user.id),
        max_age=DEVICE_DAYS * 24 * 3600,
        secure=config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
        path="/",
    )
    return response


# Failed logins are counted per address and per account and address, so that guesses from one place
# cannot keep the owner out from another; and per account from browsers where it has never logged in,
# so that guesses spread over many addresses slow down while the owner's own browser gets in.
@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_ADDRESS_LIMIT"],
    methods=["POST"],
    deduct_when=_failed,
    key_func=lambda: _login_key("ip", request.remote_addr or "unknown"),
)
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT"],
    methods=["POST"],
    deduct_when=_failed,
    key_func=lambda: _login_key("account-ip", f"{_form_email()}|{request.remote_addr or 'unknown'}"),
)
@limiter.limit(
    lambda: current_app.config["LOGIN_ACCOUNT_LIMIT"],
    methods=["POST"],
    deduct_when=_failed,
    key_func=lambda: _login_key("account", _form_email()),
    exempt_when=_known_device,
)
def login():
    form = forms.LoginForm()
    if form.validate_on_submit():
        user = sessions.authenticate(form.email.data, form.password.data)
        if user is not None:
            token = sessions.start_session(user)
            log_in(user, token)
            return _remember_device(redirect(local_target(request.args.get("next")), 303), user)
        db.session.rollback()
        form.form_errors.append(
            _("The email address or password is not correct, or the account is disabled.")
        )
    return render_template("accounts/login.html", form=form)


def log_in(user: User, token: str) -> None:
    session.clear()  # a fresh session on login: nothing survives from before
    user.session_token = token
    login_user(user)


@bp.post("/logout")
@login_required
def logout():
    if forms.ConfirmForm().validate_on_submit():
        sessions.end_session(current_user.session_token)
    logout_user()
    session.clear()
    flash(_("You have logged out."))
    return redirect(url_for("core.home"), 303)


# --- passwords -----------------------------------------------------------------------------


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"], key_func=lambda: _login_key("reset", _form_email()))
def forgot_password():
    form = forms.ForgotPasswordForm()
    if form.validate_on_submit():
        passwords.request_password_reset(form.email.data)
        return render_template("accounts/reset_sent.html", email=form.email.data)
    return render_template("accounts/forgot_password.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    try:
        found = links.find_token(token, TokenKind.password_reset)
    except ServiceError as exc:
        return render_template("accounts/link_invalid.html", message=exc.message), 410
    form = forms.ResetPasswordForm()
    form.person = (found.user.name, found.user.email) if found.user else ()  # not in the new password
    if form.validate_on_submit():
        try:
            user = passwords.reset_password(token, form.password.data)
            db.session.flush()
        except ServiceError as exc:
            form_error(form, exc)
        else:
            logout_user()
            session.clear()
            flash(_("Your password has been changed. Log in with the new password."))
            # The link proved the address: this browser logs in even while guesses elsewhere are slowed.
            return _remember_device(redirect(url_for("accounts.login"), 303), user)
    return render_template("accounts/reset_password.html", form=form)


# --- own account ---------------------------------------------------------------------------


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    form = forms.ProfileForm(obj=current_user)
    password_form = forms.ChangePasswordForm(prefix="pw")
    if form.validate_on_submit():
        services.update_profile(
            current_user,
            name=form.name.data,
            language=form.language.data,
            mail_mode=MailMode(form.mail_mode.data),
        )
        session["language"] = form.language.data
        flash(_("Your details have been saved."))
        return redirect(url_for("accounts.account"), 303)
    return render_template("accounts/account.html", form=form, password_form=password_form)


@bp.post("/account/password")
@login_required
def change_password():
    form = forms.ProfileForm(obj=current_user, formdata=None)
    password_form = forms.ChangePasswordForm(prefix="pw")
    password_form.person = (current_user.name, current_user.email)  # not in the new password
    if password_form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            passwords.change_password(user, password_form.current_password.data, password_form.password.data)
            token = sessions.start_session(user)
            db.session.flush()
        except ServiceError as exc:
            form_error(password_form, exc)
        else:
            log_in(user, token)
            flash(_("Your password has been changed. Your other sessions have been logged out."))
            return redirect(url_for("accounts.account"), 303)
    return render_template("accounts/account.html", form=form, password_form=password_form)


@bp.post("/language")
@csrf.exempt
def set_language():
    """Switch the language.

    A visitor's choice changes only their own cookie, so it needs no CSRF token (the public
    pages carry none and read the same for every visitor), but it must come from this site:
    a browser leaves the Lax session cookie off another site's POST, and answering it would
    replace the cookie of someone logged in. The choice of someone logged in is saved to
    their account, and their request must carry a token.
    """
    if current_user.is_authenticated:
        csrf.protect()
    elif not from_this_site():
        raise PermissionDenied(_("The language can only be changed from this site's own pages."))
    language = request.form.get("language", "")
    if language in current_app.config["LANGUAGES"]:
        session["language"] = language
        if current_user.is_authenticated:
            services.set_language(current_user, language)
    return redirect(local_target(request.form.get("next")), 303)
