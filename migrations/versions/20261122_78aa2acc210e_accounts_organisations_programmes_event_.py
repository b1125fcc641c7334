"""accounts, organisations, programmes, event log and mail

Revision ID: 78aa2acc210e
Revises: 
Create Date: 2026-11-22 15:48:59.043440

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '78aa2acc210e'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    
    op.create_table('organisation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('org_number', sa.String(length=11), nullable=False),
    sa.Column('kind', sa.Enum('industrial', 'sme', name='organisation_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('staff_headcount', sa.Integer(), nullable=True),
    sa.Column('annual_turnover_ore', sa.BigInteger(), nullable=True),
    sa.Column('balance_sheet_total_ore', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind <> 'sme' OR (staff_headcount IS NOT NULL AND annual_turnover_ore IS NOT NULL AND balance_sheet_total_ore IS NOT NULL)", name=op.f('ck_organisation_sme_has_size_figures')),
    sa.CheckConstraint('annual_turnover_ore IS NULL OR annual_turnover_ore >= 0', name=op.f('ck_organisation_turnover_not_negative')),
    sa.CheckConstraint('balance_sheet_total_ore IS NULL OR balance_sheet_total_ore >= 0', name=op.f('ck_organisation_balance_sheet_not_negative')),
    sa.CheckConstraint('staff_headcount IS NULL OR staff_headcount >= 0', name=op.f('ck_organisation_staff_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisation')),
    sa.UniqueConstraint('org_number', name=op.f('uq_organisation_org_number'))
    )
    op.create_table('programme',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('admin_cap_basis_points', sa.Integer(), nullable=False),
    sa.Column('return_deadline', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('admin_cap_basis_points BETWEEN 0 AND 10000', name=op.f('ck_programme_admin_cap_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_programme')),
    sa.UniqueConstraint('name', name=op.f('uq_programme_name'))
    )
    op.create_table('user_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("language IN ('en', 'sv')", name=op.f('ck_user_account_known_language')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_account')),
    sa.UniqueConstraint('email', name=op.f('uq_user_account_email'))
    )
    op.create_table('action_token',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.Enum('password_reset', 'invitation', name='token_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('role', sa.Enum('programme_manager', 'evaluator', name='token_role', native_enum=False, create_constraint=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind <> 'invitation' OR (email IS NOT NULL AND role IS NOT NULL)", name=op.f('ck_action_token_invitation_has_email_and_role')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_action_token_created_by_id_user_account')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_action_token_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_action_token'))
    )
    with op.batch_alter_table('action_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_action_token_user_id'), ['user_id'], unique=False)

    op.create_table('event_log',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=80), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], name=op.f('fk_event_log_actor_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_log'))
    )
    with op.batch_alter_table('event_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_log_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_event_log_occurred_at'), ['occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_event_log_type'), ['type'], unique=False)

    op.create_table('login_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_login_session_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_login_session_token_hash'))
    )
    with op.batch_alter_table('login_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_session_user_id'), ['user_id'], unique=False)

    op.create_table('membership',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('pending', 'approved', 'rejected', name='membership_state', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user_account.id'], name=op.f('fk_membership_decided_by_id_user_account')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_membership_organisation_id_organisation')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_membership_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership')),
    sa.UniqueConstraint('user_id', name=op.f('uq_membership_user_id'))
    )
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_membership_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('programme_year',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('allocation_ore', sa.BigInteger(), nullable=False),
    sa.Column('requisition_deadline', sa.Date(), nullable=True),
    sa.CheckConstraint('allocation_ore >= 0', name=op.f('ck_programme_year_allocation_not_negative')),
    sa.ForeignKeyConstraint(['programme_id'], ['programme.id'], name=op.f('fk_programme_year_programme_id_programme'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_programme_year')),
    sa.UniqueConstraint('programme_id', 'year', name='one_per_year')
    )
    op.create_table('user_role',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('programme_manager', 'evaluator', name='role_name', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('granted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['granted_by_id'], ['user_account.id'], name=op.f('fk_user_role_granted_by_id_user_account')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_user_role_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'role', name=op.f('pk_user_role'))
    )
    op.create_table('event_handling',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('handler', sa.String(length=80), nullable=False),
    sa.Column('queue', sa.String(length=20), nullable=False),
    sa.Column('state', sa.Enum('pending', 'done', 'dead', name='handling_state', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_event_handling_attempts_not_negative')),
    sa.ForeignKeyConstraint(['event_id'], ['event_log.id'], name=op.f('fk_event_handling_event_id_event_log'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', 'handler', name=op.f('pk_event_handling'))
    )
    with op.batch_alter_table('event_handling', schema=None) as batch_op:
        batch_op.create_index('ix_event_handling_state_created', ['state', 'created_at'], unique=False)

    op.create_table('mail_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('template', sa.String(length=60), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('message_id', sa.String(length=120), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.Column('state', sa.Enum('queued', 'sending', 'sent', 'stored', 'failed', name='message_state', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_reply', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['event_log.id'], name=op.f('fk_mail_message_event_id_event_log'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_mail_message_user_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_message')),
    sa.UniqueConstraint('event_id', 'recipient', name='one_per_event_recipient'),
    sa.UniqueConstraint('message_id', name=op.f('uq_mail_message_message_id'))
    )
    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        batch_op.create_index('ix_mail_message_created', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_message_recipient'), ['recipient'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_message_user_id'), ['user_id'], unique=False)




def downgrade():
    
    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_message_user_id'))
        batch_op.drop_index(batch_op.f('ix_mail_message_recipient'))
        batch_op.drop_index('ix_mail_message_created')

    op.drop_table('mail_message')
    with op.batch_alter_table('event_handling', schema=None) as batch_op:
        batch_op.drop_index('ix_event_handling_state_created')

    op.drop_table('event_handling')
    op.drop_table('user_role')
    op.drop_table('programme_year')
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_membership_organisation_id'))

    op.drop_table('membership')
    with op.batch_alter_table('login_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_session_user_id'))

    op.drop_table('login_session')
    with op.batch_alter_table('event_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_log_type'))
        batch_op.drop_index(batch_op.f('ix_event_log_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_event_log_actor_id'))

    op.drop_table('event_log')
    with op.batch_alter_table('action_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_action_token_user_id'))

    op.drop_table('action_token')
    op.drop_table('user_account')
    op.drop_table('programme')
    op.drop_table('organisation')

