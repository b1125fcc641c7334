"""Notification delivery: retries and dead letters, resends, read marks, daily digests and
preferences; closing-soon reminders.

Revision ID: 1e4b01cdc083
Revises: e664f49fa64a
Create Date: 2026-11-22 18:29:29.755628

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '1e4b01cdc083'
down_revision = 'e664f49fa64a'
branch_labels = None
depends_on = None


STATES_BEFORE = ("queued", "sending", "sent", "stored", "failed")
STATES = (*STATES_BEFORE, "dead", "held", "digested", "muted")



def upgrade():
    op.create_table('mail_digest',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['event_log.id'], name=op.f('fk_mail_digest_event_id_event_log'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_mail_digest_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'day', name=op.f('pk_mail_digest'))
    )
    op.create_table('closing_reminder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('challenge_id', sa.Integer(), nullable=False),
    sa.Column('days', sa.Integer(), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['challenge_id'], ['challenge.id'], name=op.f('fk_closing_reminder_challenge_id_challenge'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_closing_reminder')),
    sa.UniqueConstraint('challenge_id', 'days', 'deadline', name='closing_reminder_once')
    )
    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        # the message's template name becomes its catalogue key (the same names, split where one
        # template serves several notices)
        batch_op.alter_column('template', new_column_name='notice', existing_type=sa.String(length=60),
                              existing_nullable=False)
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('read_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('digest_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('resent_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('resent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resent_by_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_mail_message_message_state'), type_='check')
        batch_op.alter_column('state', existing_type=sa.VARCHAR(length=7), type_=sa.String(length=8),
                              existing_nullable=False)
        batch_op.create_check_constraint('message_state', sa.column('state').in_(STATES))
        batch_op.drop_constraint('one_per_event_recipient', type_='unique')
        batch_op.create_index('ix_mail_message_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_mail_message_unread', ['user_id', 'read_at'], unique=False)
        batch_op.create_unique_constraint('one_per_event_notice_recipient', ['event_id', 'notice', 'recipient'])
        batch_op.create_foreign_key(batch_op.f('fk_mail_message_resent_by_id_user_account'), 'user_account', ['resent_by_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_mail_message_digest_id_mail_message'), 'mail_message', ['digest_id'], ['id'], ondelete='SET NULL')
    # A refusal used to be final: it is now a dead letter, which a manager may resend. Messages
    # written before this revision have been read (nobody had an unread count).
    op.execute("UPDATE mail_message SET state = 'dead' WHERE state = 'failed'")
    op.execute("UPDATE mail_message SET next_attempt_at = created_at, enqueued_at = created_at, read_at = created_at")

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mail_mode', sa.Enum('immediate', 'daily', 'off', name='mail_mode', native_enum=False, create_constraint=True), server_default='immediate', nullable=False))


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_user_account_mail_mode'), type_='check')
        batch_op.drop_column('mail_mode')

    op.execute("DELETE FROM mail_message WHERE state IN ('held', 'muted')")
    op.execute("UPDATE mail_message SET state = 'failed' WHERE state = 'dead'")
    op.execute("UPDATE mail_message SET state = 'sent' WHERE state = 'digested'")
    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_mail_message_digest_id_mail_message'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_mail_message_resent_by_id_user_account'), type_='foreignkey')
        batch_op.drop_constraint('one_per_event_notice_recipient', type_='unique')
        batch_op.drop_index('ix_mail_message_unread')
        batch_op.drop_index('ix_mail_message_due')
        batch_op.create_unique_constraint('one_per_event_recipient', ['event_id', 'recipient'])
        batch_op.drop_constraint(batch_op.f('ck_mail_message_message_state'), type_='check')
        batch_op.alter_column('state', existing_type=sa.String(length=8), type_=sa.VARCHAR(length=7),
                              existing_nullable=False)
        batch_op.create_check_constraint('message_state', sa.column('state').in_(STATES_BEFORE))
        batch_op.drop_column('resent_by_id')
        batch_op.drop_column('resent_at')
        batch_op.drop_column('resent_count')
        batch_op.drop_column('digest_id')
        batch_op.drop_column('read_at')
        batch_op.drop_column('enqueued_at')
        batch_op.drop_column('next_attempt_at')
    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        batch_op.alter_column('notice', new_column_name='template', existing_type=sa.String(length=60),
                              existing_nullable=False)

    op.drop_table('closing_reminder')
    op.drop_table('mail_digest')
