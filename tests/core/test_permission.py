"""A permission refusal is never a form's message: whichever door a service is reached through, it is
the 403 page, answered in one place, and the request keeps nothing it did."""

from __future__ import annotations

import pytest

from challenges.core.errors import PermissionDenied, ServiceError
from challenges.core.forms import ConfirmForm
from challenges.core.pages import commit_change


def test_a_refusal_goes_on_the_form_and_a_permission_refusal_does_not(app):
    with app.test_request_context("/", method="POST"):
        form = ConfirmForm()

        def refused():
            raise ServiceError("Not like this.", "csrf_token")

        def denied():
            raise PermissionDenied("Not you.")

        assert commit_change(form, refused) is False
        assert form.csrf_token.errors == ["Not like this."]
        with pytest.raises(PermissionDenied):
            commit_change(form, denied)
        assert form.form_errors == []  # nothing of it on the form


def test_a_permission_refusal_is_the_403_page_and_keeps_nothing(app, people):
    from challenges.accounts.models import User
    from challenges.extensions import db

    user_id = people["sme"].id
    with app.test_request_context("/"):
        db.session.get(User, user_id).name = "Changed before the refusal"
        db.session.flush()
        # as a view raising it: the error handler answers, then the request ends (core.transaction)
        answer = app.handle_user_exception(PermissionDenied("You may not do this here."))
        response = app.process_response(app.make_response(answer))
    assert response.status_code == 403
    assert "You may not do this here." in response.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(User, user_id).name != "Changed before the refusal"


# Each page that only some people may open, with someone it refuses (a role, a membership, an object).
REFUSED = [
    ("/admin/programmes", "sme"),  # programme managers only
    ("/reviews", "sme"),  # evaluators only
    ("/following", "owner"),  # members of an SME only
    ("/challenges/mine", "sme"),  # members of an industrial company only
    ("/challenges/new", "evaluator"),
    ("/proposals", "owner"),  # a view's own check (allow), not its decorator
]


@pytest.mark.parametrize(("path", "who"), REFUSED)
def test_every_refusal_is_the_same_403_page_and_visitors_are_sent_to_log_in(
    app, people, make_browser, path, who
):
    visitor = make_browser()
    answer = visitor.get(path)
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]

    browser = make_browser()
    browser.login(people[who].email)
    answer = browser.get(path)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 403
    assert "Not allowed" in page and "You do not have access to this page." in page
