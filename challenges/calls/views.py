"""Challenge pages: the public catalogue and feed, drafting, approval, amendments, Q&A, follows."""

from __future__ import annotations

import re
from datetime import date

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload, selectinload

from challenges.accounts.models import Organisation, User
from challenges.calls import bp, forms, services
from challenges.calls import following as follows
from challenges.calls.catalogue import (
    COUNT_LIMIT,
    SORTS,
    STATUS_FILTERS,
    CatalogueFilter,
    catalogue_query,
    find,
)
from challenges.calls.models import (
    OFFER_LABELS,
    STATUS_LABELS,
    Challenge,
    ChallengeTransition,
    ChangeNote,
    Criterion,
    OfferKind,
    Question,
    Topic,
    TopicKind,
)
from challenges.core.errors import ServiceError
from challenges.core.models import utcnow
from challenges.core.pagecache import holds_until, visitor_page
from challenges.core.pages import (
    allow,
    change_and_return,
    commit_change,
    form_error,
    manager_required,
    requires,
)
from challenges.core.translation import lazy_gettext as _l
from challenges.core.views import page_arg
from challenges.extensions import db
from challenges.programmes.models import Programme, ProgrammeYear

# What the catalogue and a challenge's page show a visitor: a write to any of these renews them.
PUBLIC_MODELS = (
    Challenge,
    Topic,
    Criterion,
    ChallengeTransition,
    ChangeNote,
    Question,
    Organisation,
    ProgrammeYear,
    Programme,
)

PAGE_SIZE = 20
FEED_SIZE = 50


@bp.record_once
def _template_globals(state) -> None:
    """Labels the templates and their imported macros need (macros do not see context processors)."""
    state.app.jinja_env.globals.update(
        STATUS_LABELS=STATUS_LABELS, OFFER_LABELS=OFFER_LABELS, OfferKind=OfferKind, TopicKind=TopicKind
    )


# --- the public catalogue ------------------------------------------------------------------


FILTER_ARGS = ("q", "area", "theme", "status", "from", "to", "sort")


def _int_list(name: str) -> list[int]:
    return [int(v) for v in request.args.getlist(name) if re.fullmatch(r"[0-9]{1,9}", v)][:20]


def _date_arg(name: str) -> date | None:
    try:
        value = date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None
    return value if 1900 <= value.year <= 9000 else None


def _filter_args() -> dict[str, list[str]]:
    """The catalogue's own query arguments, for the pager and the feed link (repeats kept)."""
    return {k: request.args.getlist(k)[:20] for k in FILTER_ARGS if request.args.get(k)}


def _catalogue_filter() -> CatalogueFilter:
    """The filter in the query string; values that make no sense are ignored, never an error."""
    status = request.args.get("status", "")
    sort = request.args.get("sort", "deadline")
    areas = _int_list("area")
    return CatalogueFilter(
        q=(request.args.get("q") or "").strip()[:200],
        area=areas[0] if areas else None,
        themes=_int_list("theme"),
        status=status if status in STATUS_FILTERS else "",
        deadline_from=_date_arg("from"),
        deadline_to=_date_arg("to"),
        sort=sort if sort in SORTS else "deadline",
    )


def topics_by_kind() -> dict[TopicKind, list[Topic]]:
    topics = db.session.scalars(
        sa.select(Topic).where(Topic.active.is_(True)).order_by(Topic.position, Topic.id)
    )
    grouped: dict[TopicKind, list[Topic]] = {TopicKind.area: [], TopicKind.theme: []}
    for t in topics:
        grouped[t.kind].append(t)
    return grouped


@bp.get("/challenges")
@visitor_page(*FILTER_ARGS, "page")
def catalogue():
    f, now = _catalogue_filter(), utcnow()
    holds_until(lambda: follows.next_deadline(now))  # any open challenge closing changes a list
    found = find(f, now, limit=COUNT_LIMIT)
    page = db.paginate(found.query, page=page_arg(), per_page=PAGE_SIZE, error_out=False, count=False)
    page.total = min(found.count, COUNT_LIMIT)  # the pages go as far as the count
    return render_template(
        "calls/catalogue.html",
        page=page,
        more=found.count > COUNT_LIMIT,
        f=f,
        topics=topics_by_kind(),
        statuses=STATUS_FILTERS,
        now=now,
        args=_filter_args(),
    )


@bp.get("/challenges/feed.atom")
def feed():
    f = _catalogue_filter()
    f.sort = "newest"
    challenges = db.session.scalars(catalogue_query(f).limit(FEED_SIZE)).unique().all()
    updated = max((c.updated_at for c in challenges), default=utcnow())
    body = render_template("calls/feed.xml", challenges=challenges, updated=updated, self_url=request.url)
    return body, 200, {"Content-Type": "application/atom+xml; charset=utf-8"}


# --- one challenge -----------------------------------------------------------------------------


def load_challenge(challenge_id: int) -> Challenge:
    """The challenge if *current_user* may see it; 404 otherwise, so drafts stay unseen."""
    challenge = db.session.scalar(
        sa.select(Challenge)
        .where(Challenge.id == challenge_id)
        .options(
            joinedload(Challenge.organisation),
            joinedload(Challenge.area),
            selectinload(Challenge.themes),
            joinedload(Challenge.programme_year),
            selectinload(Challenge.criteria),
            selectinload(Challenge.notes),
            selectinload(Challenge.transitions).joinedload(ChallengeTransition.actor).lazyload(User.roles),
        )
    )
    if challenge is None or not challenge.can_view(current_user):
        abort(404)
    return challenge


def _detail(challenge: Challenge, **form_overrides):
    """The challenge page, with each form either fresh or the one that failed; a visitor, who can use none
    of them, gets none (a form puts a token in their session, and their page would be theirs alone)."""
    page_forms: dict = dict.fromkeys(
        ("return_form", "clarify_form", "extend_form", "question_form", "answer_form")
    )
    if current_user.is_authenticated:
        page_forms = {
            "return_form": forms.ReturnForm(formdata=None),
            "clarify_form": forms.ClarificationForm(formdata=None),
            "extend_form": forms.ExtendDeadlineForm(formdata=None),
            "question_form": forms.QuestionForm(formdata=None),
            "answer_form": forms.AnswerForm(formdata=None),
        }
    page_forms.update(form_overrides)
    owner_view = challenge.can_see_history(current_user)
    questions = db.session.scalars(
        sa.select(Question)
        .where(Question.challenge_id == challenge.id)
        .where(sa.true() if owner_view else Question.answered_at.is_not(None))
        .order_by(Question.asked_at)
    ).all()
    timeline = [t for t in challenge.transitions if owner_view or t.is_public]
    org = current_user.organisation if current_user.is_authenticated else None
    return render_template(
        "calls/detail.html",
        challenge=challenge,
        questions=questions,
        timeline=timeline,
        owner_view=owner_view,
        actions=challenge.allowed_actions(current_user),
        following=follows.is_following(org, challenge),
        now=utcnow(),
        **page_forms,
    )


@bp.get("/challenges/<int:challenge_id>")
@visitor_page()
def detail(challenge_id: int):
    challenge = load_challenge(challenge_id)
    holds_until(challenge.deadline if challenge.deadline > utcnow() else None)
    return _detail(challenge)


# --- drafting ----------------------------------------------------------------------------------


def _challenge_form(challenge: Challenge | None = None) -> forms.ChallengeForm:
    form = forms.ChallengeForm()
    years = db.session.scalars(
        sa.select(ProgrammeYear).options(joinedload(ProgrammeYear.programme)).order_by(ProgrammeYear.year)
    ).all()
    grouped = topics_by_kind()
    areas, themes = grouped[TopicKind.area], grouped[TopicKind.theme]
    if challenge is not None:  # a retired topic stays selectable on the challenge that has it
        areas = areas + ([challenge.area] if not challenge.area.active else [])
        themes = themes + [t for t in challenge.themes if not t.active]
    form.set_choices(list(years), areas, themes)
    return form


def _save_draft(form: forms.ChallengeForm, challenge: Challenge | None):
    """Preview, or validate and save; on any refusal the page comes back with what was typed."""
    preview = "preview" in request.form
    if request.method == "POST" and form.validate_on_submit() and not preview:
        try:
            if challenge is None:
                challenge = services.create_challenge(form.content(), by=current_user)
            else:
                services.update_challenge(challenge, form.content(), by=current_user)
            db.session.flush()
        except ServiceError as exc:
            form_error(form, exc)
        else:
            flash(_("The draft has been saved. Submit it for approval when it is ready."))
            return redirect(url_for("calls.detail", challenge_id=challenge.id), 303)
    return render_template("calls/edit.html", form=form, challenge=challenge, preview=preview)


@bp.route("/challenges/new", methods=["GET", "POST"])
@requires(lambda person: person.is_challenge_owner)
def new():
    form = _challenge_form()
    if request.method == "GET":
        form.fill_defaults(current_user)
    return _save_draft(form, None)


@bp.route("/challenges/<int:challenge_id>/edit", methods=["GET", "POST"])
@login_required
def edit(challenge_id: int):
    challenge = load_challenge(challenge_id)
    allow(challenge.can_edit(current_user))
    form = _challenge_form(challenge)
    if request.method == "GET":
        form.load(challenge)
    return _save_draft(form, challenge)


# --- the lifecycle -----------------------------------------------------------------------------

DONE = {
    "submit": _l("The challenge has been submitted for approval."),
    "withdraw": _l("The challenge is a draft again. Submit it when you are ready."),
    "approve": _l("The challenge is published."),
    "start_review": _l("The review has started."),
    "decide": _l("The challenge is marked as decided."),
    "archive": _l("The challenge has been archived."),
}


@bp.post("/challenges/<int:challenge_id>/<any(submit,withdraw,approve,start_review,decide,archive):action>")
@login_required
def take_action(challenge_id: int, action: str):
    challenge = load_challenge(challenge_id)
    return change_and_return(
        lambda: services.ACTIONS[action](challenge, by=current_user),
        str(DONE[action]),
        url_for("calls.detail", challenge_id=challenge_id),
    )


def page_form(challenge: Challenge, form, name: str, change, done: str):
    """A form posted from the challenge page: validate, run one service, commit once, and on
    refusal show the page again with that form's messages and what was typed."""
    if form.validate_on_submit() and commit_change(form, change):
        flash(done)
        return redirect(url_for("calls.detail", challenge_id=challenge.id), 303)
    return _detail(challenge, **{name: form})


@bp.post("/challenges/<int:challenge_id>/return")
@manager_required
def return_challenge(challenge_id: int):
    challenge = load_challenge(challenge_id)
    form = forms.ReturnForm()
    return page_form(
        challenge,
        form,
        "return_form",
        lambda: services.return_challenge(challenge, form.comment.data, by=current_user),
        _("The challenge has been returned to its owner with your comment."),
    )
