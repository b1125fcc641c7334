"""The lists of challenges for their owners and the programme, and the topics programme managers keep."""

from __future__ import annotations

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import joinedload

from challenges.calls import bp, forms
from challenges.calls import topics as topic_services
from challenges.calls.models import (
    Challenge,
    ChallengeStatus,
    Topic,
    TopicKind,
)
from challenges.calls.views import PAGE_SIZE
from challenges.core.models import utcnow
from challenges.core.pages import commit_change, manager_required, requires
from challenges.core.views import page_arg
from challenges.extensions import db

# --- lists for owners and the programme -----------------------------------------------------------


def _challenge_list(query: sa.Select):
    query = query.options(joinedload(Challenge.organisation), joinedload(Challenge.area))
    return db.paginate(query, page=page_arg(), per_page=PAGE_SIZE, error_out=False)


@bp.get("/challenges/mine")
@requires(lambda person: person.is_challenge_owner)
def mine():
    page = _challenge_list(
        sa.select(Challenge)
        .where(Challenge.organisation_id == current_user.organisation.id)
        .order_by(Challenge.updated_at.desc())
    )
    return render_template("calls/mine.html", page=page, now=utcnow())


@bp.get("/admin/challenges")
@manager_required
def admin_challenges():
    status = request.args.get("status", ChallengeStatus.submitted.value)
    query = sa.select(Challenge).order_by(Challenge.updated_at.desc())
    if status in {s.value for s in ChallengeStatus}:
        query = query.where(Challenge.status == ChallengeStatus(status))
    else:
        status = ""
    return render_template(
        "calls/admin_challenges.html",
        page=_challenge_list(query),
        status=status,
        statuses=list(ChallengeStatus),
        now=utcnow(),
    )


@bp.route("/admin/topics", methods=["GET", "POST"])
@manager_required
def admin_topics():
    return _topic_page(None)


@bp.route("/admin/topics/<int:topic_id>", methods=["GET", "POST"])
@manager_required
def admin_topic(topic_id: int):
    return _topic_page(db.get_or_404(Topic, topic_id))


def _topic_page(topic: Topic | None):
    form = forms.TopicForm(obj=topic)
    if topic is not None:
        del form.kind  # a topic keeps its kind
    kind = topic.kind if topic is not None else TopicKind(form.kind.data or TopicKind.theme.value)
    if form.validate_on_submit() and commit_change(
        form,
        lambda: topic_services.save_topic(
            topic,
            kind=kind,
            name_en=form.name_en.data,
            name_sv=form.name_sv.data,
            active=form.active.data,
            by=current_user,
        ),
    ):
        flash(_("Saved."))
        return redirect(url_for("calls.admin_topics"), 303)
    topics = db.session.scalars(sa.select(Topic).order_by(Topic.kind, Topic.position, Topic.id)).all()
    return render_template("calls/admin_topics.html", form=form, topic=topic, topics=topics)
