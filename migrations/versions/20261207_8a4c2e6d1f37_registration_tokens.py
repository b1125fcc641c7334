"""An account is created only once its address is confirmed: a registration waits as an action token
holding what the person entered (the password as its hash).

Revision ID: 8a4c2e6d1f37
Revises: 7d3e1f0a9b21
Create Date: 2026-12-07 06:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8a4c2e6d1f37'
down_revision = '7d3e1f0a9b21'
branch_labels = None
depends_on = None

KINDS = ('password_reset', 'invitation', 'registration')
KINDS_BEFORE = ('password_reset', 'invitation')


def upgrade():
    with op.batch_alter_table('action_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload', sa.JSON(), nullable=True))
        batch_op.drop_constraint(batch_op.f('ck_action_token_token_kind'), type_='check')
        batch_op.create_check_constraint('token_kind', sa.column('kind').in_(KINDS))
        batch_op.create_check_constraint('registration_has_email_and_payload',
                                         "kind <> 'registration' OR (email IS NOT NULL AND payload IS NOT NULL)")


def downgrade():
    op.execute("DELETE FROM action_token WHERE kind = 'registration'")
    with op.batch_alter_table('action_token', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_action_token_registration_has_email_and_payload'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_action_token_token_kind'), type_='check')
        batch_op.create_check_constraint('token_kind', sa.column('kind').in_(KINDS_BEFORE))
        batch_op.drop_column('payload')
