"""A message carrying a one-time link names its token; the link itself is written only into the bytes
handed to the SMTP server, never into the stored message.

Revision ID: 7d3e1f0a9b21
Revises: 5c1f7a2e9d40
Create Date: 2026-12-07 05:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7d3e1f0a9b21'
down_revision = '5c1f7a2e9d40'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link_token_id', sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_mail_message_link_token_id_action_token'), 'action_token',
                                    ['link_token_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_mail_message_link_token_id_action_token'), type_='foreignkey')
        batch_op.drop_column('link_token_id')
