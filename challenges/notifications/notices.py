"""Every notice the platform sends, one row each: the event behind it, who gets it, its template and
subject, and whether it is essential (see :mod:`challenges.notifications.catalogue`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from challenges.core.translation import lazy_gettext as _l


class Kind(enum.Enum):
    essential = "essential"
    follows = "follows"
    questions = "questions"


@dataclass(frozen=True)
class Notice:
    key: str  # stored on each message
    event: str  # the event type that sends it
    audience: object  # who gets it, in words (lazy text)
    template: str  # templates/email/<template>.txt and .html
    subject: object  # lazy text; %(name)s placeholders filled from the handler's subject_args
    kind: Kind = Kind.essential

    @property
    def essential(self) -> bool:
        return self.kind is Kind.essential


E = Kind.essential

NOTICES: tuple[Notice, ...] = (
    # accounts
    Notice(
        "registration_confirm",
        "RegistrationRequested",
        _l("the address an account was asked for"),
        "registration_confirm",
        _l("Confirm your email address"),
    ),
    Notice(
        "registration_repeated",
        "RegistrationRepeated",
        _l("the account's owner"),
        "registration_repeated",
        _l("Someone asked for an account with your address"),
    ),
    Notice(
        "welcome",
        "UserRegistered",
        _l("the new user"),
        "welcome",
        _l("Welcome to the open innovation platform"),
    ),
    Notice(
        "membership_requested",
        "MembershipRequested",
        _l("the organisation's approved members"),
        "membership_requested",
        _l("Someone asks to join your organisation"),
    ),
    Notice(
        "membership_approved",
        "MembershipApproved",
        _l("the person who asked to join"),
        "membership_decided",
        _l("Your request to join has been approved"),
    ),
    Notice(
        "membership_rejected",
        "MembershipRejected",
        _l("the person who asked to join"),
        "membership_decided",
        _l("Your request to join was not approved"),
    ),
    Notice(
        "password_reset",
        "PasswordResetRequested",
        _l("the account's owner"),
        "password_reset",
        _l("Reset your password"),
    ),
    Notice(
        "password_changed",
        "PasswordChanged",
        _l("the account's owner"),
        "password_changed",
        _l("Your password has been changed"),
    ),
    Notice(
        "invitation",
        "EvaluatorInvited",
        _l("the invited address"),
        "invitation",
        _l("You are invited to evaluate proposals"),
    ),
    Notice(
        "role_granted",
        "RoleGranted",
        _l("the person given the role"),
        "role_changed",
        _l("You have a new role"),
    ),
    Notice(
        "role_revoked",
        "RoleRevoked",
        _l("the person whose role is removed"),
        "role_changed",
        _l("A role has been removed from your account"),
    ),
    Notice(
        "account_disabled",
        "AccountDisabled",
        _l("the account's owner"),
        "account_disabled",
        _l("Your account has been disabled"),
    ),
    Notice(
        "account_enabled",
        "AccountEnabled",
        _l("the account's owner"),
        "account_enabled",
        _l("Your account has been enabled again"),
    ),
    # challenges
    Notice(
        "challenge_submitted",
        "ChallengeSubmitted",
        _l("programme managers"),
        "challenge_submitted",
        _l("A challenge is waiting for your approval"),
    ),
    Notice(
        "challenge_returned",
        "ChallengeReturned",
        _l("the owner's members"),
        "challenge_returned",
        _l("Your challenge has been returned with a comment"),
    ),
    Notice(
        "challenge_published",
        "ChallengePublished",
        _l("the owner's members"),
        "challenge_published",
        _l("Your challenge is published"),
    ),
    Notice(
        "challenge_match",
        "ChallengePublished",
        _l("members of SMEs that follow its area or theme"),
        "challenge_match",
        _l("A new challenge matches what you follow"),
        Kind.follows,
    ),
    Notice(
        "challenge_clarified",
        "ChallengeClarified",
        _l("members of SMEs that follow it or have a proposal to it"),
        "challenge_changed",
        _l("A challenge has a clarification"),
    ),
    Notice(
        "deadline_extended",
        "DeadlineExtended",
        _l("members of SMEs that follow it or have a proposal to it"),
        "challenge_changed",
        _l("A challenge has a new deadline"),
    ),
    Notice(
        "closing_in_three_days",
        "ChallengeClosingSoon",
        _l("the teams of unsubmitted proposals"),
        "challenge_closing",
        _l("Reminder: a challenge closes in three days"),
    ),
    Notice(
        "closing_tomorrow",
        "ChallengeClosingSoon",
        _l("the teams of unsubmitted proposals"),
        "challenge_closing",
        _l("Reminder: a challenge closes tomorrow"),
    ),
    Notice(
        "question_asked",
        "QuestionAsked",
        _l("the owner's members"),
        "question_asked",
        _l("A question about your challenge"),
        Kind.questions,
    ),
    Notice(
        "question_answered",
        "QuestionAnswered",
        _l("the asker and the challenge's followers"),
        "question_answered",
        _l("A question about a challenge has been answered"),
        Kind.questions,
    ),
    Notice(
        "proposals_digest",
        "ChallengeClosed",
        _l("the owner's members"),
        "proposals_digest",
        _l("Your challenge has closed: the proposals that came in"),
    ),
    # proposals
    Notice(
        "proposal_receipt",
        "ProposalSubmitted",
        _l("the team of the submitted version"),
        "proposal_receipt",
        _l("Receipt: your proposal has been submitted (version %(n)s)"),
    ),
    Notice(
        "proposal_withdrawn",
        "ProposalWithdrawn",
        _l("the team of the withdrawn version"),
        "proposal_withdrawn",
        _l("Your proposal has been withdrawn"),
    ),
    Notice(
        "proposal_ineligible",
        "ProposalScreened",
        _l("the proposal's team, when it is screened out"),
        "proposal_ineligible",
        _l("Your proposal did not pass the eligibility check"),
    ),
    # reviews
    Notice(
        "review_opened",
        "ReviewOpened",
        _l("programme managers"),
        "review_opened",
        _l("A challenge has closed: its review is open"),
    ),
    Notice(
        "review_assigned",
        "EvaluatorsAssigned",
        _l("each evaluator given proposals"),
        "review_assigned",
        _l("You have proposals to review"),
    ),
    Notice(
        "review_unassigned",
        "AssignmentRemoved",
        _l("the evaluator whose proposal was taken away"),
        "review_unassigned",
        _l("A proposal has been taken off your reviews"),
    ),
    Notice(
        "review_recused",
        "RecusalSettled",
        _l("the evaluator who stepped back"),
        "review_recused",
        _l("Your recusal is recorded"),
    ),
    Notice(
        "review_unfilled",
        "RecusalSettled",
        _l("programme managers, when nobody can take over"),
        "review_unfilled",
        _l("A proposal lacks an evaluator after a recusal"),
    ),
    Notice(
        "review_reminder",
        "ReviewRemindersDue",
        _l("evaluators with reviews to do"),
        "review_reminder",
        _l("Reminder: your reviews are due in three days"),
    ),
    Notice(
        "review_due_today",
        "ReviewRemindersDue",
        _l("evaluators with reviews to do"),
        "review_reminder",
        _l("Reminder: your reviews are due today"),
    ),
    Notice(
        "review_completed",
        "ChallengeReviewCompleted",
        _l("programme managers"),
        "review_completed",
        _l("Every review of a challenge is in"),
    ),
    Notice(
        "decision_applicant",
        "DecisionsPublished",
        _l("each applicant's team"),
        "decision_applicant",
        _l("The decision on your proposal"),
    ),
    Notice(
        "decision_owner",
        "DecisionsPublished",
        _l("the owner's members"),
        "decision_owner",
        _l("The decisions on your challenge are published"),
    ),
    # funding
    Notice(
        "award_booked",
        "AwardBooked",
        _l("the applicant's team and the owner's members"),
        "award_booked",
        _l("Funding has been awarded"),
    ),
    Notice(
        "award_refused",
        "AwardRefused",
        _l("programme managers"),
        "award_refused",
        _l("An award could not be booked"),
    ),
    Notice(
        "award_changed",
        "AwardChangeBooked",
        _l("the applicant's team"),
        "award_changed",
        _l("Your award has been changed"),
    ),
    Notice(
        "payment_made",
        "PaymentMade",
        _l("the applicant's team"),
        "payment_made",
        _l("A payment has been made"),
    ),
    Notice(
        "posting_refused",
        "PostingRefused",
        _l("programme managers"),
        "posting_refused",
        _l("The ledger refused a posting"),
    ),
    # funded projects
    Notice(
        "report_due_in_a_week",
        "ReportDue",
        _l("the team of the company that runs the project"),
        "report_due",
        _l("Reminder: a project report is due in a week"),
    ),
    Notice(
        "report_due_today",
        "ReportDue",
        _l("the team of the company that runs the project"),
        "report_due",
        _l("Reminder: a project report is due today"),
    ),
    Notice(
        "report_submitted",
        "ReportSubmitted",
        _l("programme managers"),
        "report_submitted",
        _l("A project report is waiting for your approval"),
    ),
    Notice(
        "report_changes_requested",
        "ReportChangesRequested",
        _l("the team of the company that runs the project"),
        "report_decided",
        _l("The programme asks for changes to your project report"),
    ),
    Notice(
        "report_approved",
        "ReportApproved",
        _l("the team of the company that runs the project"),
        "report_decided",
        _l("Your project report has been approved"),
    ),
    # the daily digest of non-essential messages
    Notice(
        "digest",
        "DigestCompiled",
        _l("each person who chose a daily digest"),
        "digest",
        _l("Your daily summary from the open innovation platform"),
    ),
)
