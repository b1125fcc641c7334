"""Forms for writing a proposal and attaching its PDFs."""

from __future__ import annotations

from datetime import date

import wtforms
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, FieldList, FormField, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from challenges.calls.forms import MultiCheckboxField
from challenges.core.forms import Form, LocalDateField, MoneyField, TextAreaField, single_line, strip
from challenges.core.translation import lazy_gettext as _l
from challenges.proposals.models import BUDGET_LABELS, PARTNER_LABELS, BudgetLine, PartnerKind, Proposal
from challenges.proposals.rules import LIMITS, MAX_MILESTONES, MAX_PARTNERS, ProposalContent

_TOO_LONG = _l("Use at most %(max)d characters.")


class MilestoneForm(wtforms.Form):
    title = StringField(
        _l("Milestone"), filters=[strip], validators=[Length(max=LIMITS["milestone"], message=_TOO_LONG)]
    )
    due = LocalDateField(_l("Date"), years_back=1, years_ahead=10, validators=[Optional()])
    deliverable = StringField(
        _l("Deliverable"), filters=[strip], validators=[Length(max=LIMITS["deliverable"], message=_TOO_LONG)]
    )


class PartnerForm(wtforms.Form):
    name = StringField(
        _l("Organisation"), filters=[strip], validators=[Length(max=LIMITS["partner"], message=_TOO_LONG)]
    )
    kind = SelectField(
        _l("Kind"),
        choices=[(k.value, v) for k, v in PARTNER_LABELS.items()],
        default=PartnerKind.university.value,
        validate_choice=False,
    )  # checked by the service
    org_number = StringField(
        _l("Organisation number (if Swedish)"),
        filters=[strip],
        validators=[Length(max=13, message=_l("Enter ten digits in the form NNNNNN-NNNN."))],
    )
    role = StringField(
        _l("Role in the project"), filters=[strip], validators=[Length(max=LIMITS["role"], message=_TOO_LONG)]
    )


def _money(label):
    return MoneyField(label, validators=[Optional()])


class ProposalForm(Form):
    title = StringField(
        _l("Title"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter a title.")),
            Length(max=LIMITS["title"], message=_TOO_LONG),
            single_line,
        ],
    )
    summary = TextAreaField(
        _l("Summary"),
        filters=[strip],
        description=_l("A few sentences; at most 500 characters."),
        validators=[Length(max=LIMITS["summary"], message=_TOO_LONG)],
    )
    solution = TextAreaField(
        _l("Your solution"),
        filters=[strip],
        markdown=True,
        description=_l("Markdown: **bold**, *italic*, lists, links and tables. HTML is shown as text."),
        validators=[Length(max=LIMITS["solution"], message=_TOO_LONG)],
    )
    fit = TextAreaField(
        _l("How it meets what the challenge asks"),
        filters=[strip],
        markdown=True,
        validators=[Length(max=LIMITS["fit"], message=_TOO_LONG)],
    )
    milestones = FieldList(FormField(MilestoneForm), min_entries=MAX_MILESTONES, max_entries=MAX_MILESTONES)
    requested = _money(_l("Funding requested (SEK)"))
    budget_personnel = _money(BUDGET_LABELS[BudgetLine.personnel])
    budget_equipment = _money(BUDGET_LABELS[BudgetLine.equipment])
    budget_services = _money(BUDGET_LABELS[BudgetLine.services])
    budget_other = _money(BUDGET_LABELS[BudgetLine.other])
    team = MultiCheckboxField(
        _l("Team"), coerce=int, description=_l("Everyone chosen gets the receipt of each submission.")
    )
    partners = FieldList(FormField(PartnerForm), min_entries=MAX_PARTNERS, max_entries=MAX_PARTNERS)
    accept_agreement = BooleanField(_l("We accept the challenge agreement"))
    revision = HiddenField()  # the save this form started from (see ``update_proposal``)

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        problems = []
        for rows, label in ((self.milestones, _l("Milestone")), (self.partners, _l("Partner"))):
            messages = [
                _l("%(label)s %(row)s: %(message)s", label=label, row=i, message=m)
                for i, row in enumerate(rows, start=1)
                for f in row.form
                for m in f.errors
            ]
            messages = [str(m) for m in messages]
            rows.errors = list(dict.fromkeys(messages))
            problems += messages
        return ok and not problems

    def loaded_revision(self) -> int | None:
        value = self.revision.data or ""
        return int(value) if value.isdigit() and len(value) < 10 else None

    def content(self) -> ProposalContent:
        milestones = [
            {
                "title": r.form.title.data or "",
                "due": r.form.due.data.isoformat() if r.form.due.data else "",
                "deliverable": r.form.deliverable.data or "",
            }
            for r in self.milestones
            if r.form.title.data or r.form.due.data or r.form.deliverable.data
        ]
        partners = [
            {
                "name": r.form.name.data or "",
                "kind": r.form.kind.data,
                "org_number": r.form.org_number.data or "",
                "role": r.form.role.data or "",
            }
            for r in self.partners
            if r.form.name.data or r.form.org_number.data or r.form.role.data
        ]
        return ProposalContent(
            title=self.title.data or "",
            summary=self.summary.data or "",
            solution=self.solution.data or "",
            fit=self.fit.data or "",
            milestones=milestones,
            requested_ore=self.requested.data,
            budget={line.value: getattr(self, f"budget_{line.value}").data or 0 for line in BudgetLine},
            team_ids=list(self.team.data or []),
            partners=partners,
            accept_agreement=bool(self.accept_agreement.data),
        )

    def load(self, proposal: Proposal) -> None:
        """Fill a GET form from the working copy (money in kronor)."""
        content = ProposalContent.of(proposal)
        for name in ("title", "summary", "solution", "fit"):
            getattr(self, name).data = getattr(content, name)
        self.requested.data = content.requested_ore
        for line in BudgetLine:
            getattr(self, f"budget_{line.value}").data = content.budget.get(line.value) or None
        self.team.data = content.team_ids
        self.accept_agreement.data = content.accept_agreement
        self.revision.data = str(proposal.revision)
        for i, row in enumerate(self.milestones):
            m = content.milestones[i] if i < len(content.milestones) else {}
            row.form.title.data = m.get("title")
            row.form.due.data = _date(m.get("due"))
            row.form.deliverable.data = m.get("deliverable")
        for i, row in enumerate(self.partners):
            p = content.partners[i] if i < len(content.partners) else {}
            row.form.name.data, row.form.org_number.data = p.get("name"), p.get("org_number")
            row.form.kind.data, row.form.role.data = p.get("kind", "university"), p.get("role")


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


class AttachmentForm(Form):
    file = FileField(
        _l("PDF file"),
        description=_l("PDF only, at most 10 MB; up to 5 files."),
        validators=[FileRequired(_l("Choose a PDF file to upload."))],
    )
