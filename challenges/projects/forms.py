"""The report an SME files on its funded project, and the programme manager's answer."""

from __future__ import annotations

from wtforms import RadioField, SelectField
from wtforms.validators import InputRequired, Optional

from challenges.calls.forms import MultiCheckboxField
from challenges.core.forms import Form, IntegerField, MoneyField, TextAreaField, strip
from challenges.core.translation import lazy_gettext as _l
from challenges.projects.models import TRL_RANGE, Project, ProjectReport
from challenges.projects.services import ReportContent

YES_NO = [("yes", _l("Yes")), ("no", _l("No"))]


def _yes_no(value) -> str | None:
    if value is True or value == "yes":
        return "yes"
    if value is False or value == "no":
        return "no"
    return None


class ReportForm(Form):
    text = TextAreaField(
        _l("What was done"),
        filters=[strip],
        markdown=True,
        description=_l("Markdown. The work, what it showed, and what comes next."),
    )
    milestones_reached = MultiCheckboxField(_l("Milestones reached"), coerce=int, validate_choice=False)
    trl = SelectField(
        _l("Technology readiness level reached"),
        choices=[("", _l("Choose…"))] + [(str(n), f"TRL {n}") for n in TRL_RANGE],
        validate_choice=False,
    )
    pilot_with_owner = RadioField(
        _l("A prototype or pilot with the challenge owner"),
        choices=YES_NO,
        coerce=_yes_no,
        validate_choice=False,
    )
    follow_on_with_owner = RadioField(
        _l("A follow-on agreement or sale with the challenge owner"),
        choices=YES_NO,
        coerce=_yes_no,
        validate_choice=False,
    )
    other_customers = IntegerField(_l("Other customers for the solution"), validators=[Optional()])
    private_cofunding = MoneyField(_l("Private co-funding (SEK)"), validators=[Optional()])
    jobs_created = IntegerField(_l("Jobs created"), validators=[Optional()])

    def set_milestones(self, project: Project) -> None:
        self.milestones_reached.choices = [
            (i, f"{m['due']} · {m['title']}") for i, m in enumerate(project.milestones)
        ]

    def fill_from(self, report: ProjectReport) -> None:
        self.text.data = report.text
        self.milestones_reached.data = list(report.milestones_reached)
        self.trl.data = str(report.trl) if report.trl else ""
        self.pilot_with_owner.data = _yes_no(report.pilot_with_owner)
        self.follow_on_with_owner.data = _yes_no(report.follow_on_with_owner)
        self.other_customers.data = report.other_customers
        self.private_cofunding.data = report.private_cofunding_ore
        self.jobs_created.data = report.jobs_created

    def content(self) -> ReportContent:
        trl = self.trl.data
        return ReportContent(
            text=self.text.data or "",
            milestones_reached=list(self.milestones_reached.data or []),
            trl=int(trl) if trl and str(trl).isdigit() else None,
            pilot_with_owner={"yes": True, "no": False}.get(self.pilot_with_owner.data or ""),
            follow_on_with_owner={"yes": True, "no": False}.get(self.follow_on_with_owner.data or ""),
            other_customers=self.other_customers.data,
            private_cofunding_ore=self.private_cofunding.data,
            jobs_created=self.jobs_created.data,
        )


class ChangesForm(Form):
    comment = TextAreaField(
        _l("What should be changed"), filters=[strip], markdown=True, validators=[InputRequired()]
    )
