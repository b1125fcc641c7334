"""What a message says is written once for every recipient who gets the same words: a notice to a
challenge's thousands of followers stores its subject and bodies once per language, not once each.

Revision ID: a1c4e8f2b7d3
Revises: 9b5d3f7e2a48
Create Date: 2026-12-08 01:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a1c4e8f2b7d3'
down_revision = '9b5d3f7e2a48'
branch_labels = None
depends_on = None

BATCH = 1000
TEXTS = ('subject', 'body_text', 'body_html')


def upgrade():
    op.create_table(
        'mail_content',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('body_text', sa.Text(), nullable=False),
        sa.Column('body_html', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_content')),
    )
    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_id', sa.Integer(), nullable=True))

    # Each distinct (subject, text, html) once, every message pointed at its own.
    bind = op.get_bind()
    message = sa.table('mail_message', sa.column('id'), sa.column('content_id'), *map(sa.column, TEXTS))
    content = sa.table('mail_content', sa.column('id'), *map(sa.column, TEXTS))
    found: dict[tuple[str, str, str], int] = {}
    update = sa.update(message).where(message.c.id == sa.bindparam('row')).values(content_id=sa.bindparam('content'))
    last = 0
    while rows := bind.execute(
        sa.select(message.c.id, *(message.c[t] for t in TEXTS))
        .where(message.c.id > last).order_by(message.c.id).limit(BATCH)
    ).all():
        pointed = []
        for id_, *texts in rows:
            key = tuple(texts)
            if key not in found:
                found[key] = bind.execute(
                    sa.insert(content).values(dict(zip(TEXTS, key))).returning(content.c.id)
                ).scalar_one()
            pointed.append({'row': id_, 'content': found[key]})
        bind.execute(update, pointed)
        last = rows[-1][0]

    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        batch_op.alter_column('content_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_mail_message_content_id_mail_content'), 'mail_content',
                                    ['content_id'], ['id'])
        for column in TEXTS:
            batch_op.drop_column(column)


def downgrade():
    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('body_text', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('body_html', sa.Text(), nullable=True))
    message = sa.table('mail_message', sa.column('content_id'), *map(sa.column, TEXTS))
    content = sa.table('mail_content', sa.column('id'), *map(sa.column, TEXTS))
    op.execute(message.update().values({
        t: sa.select(content.c[t]).where(content.c.id == message.c.content_id).scalar_subquery() for t in TEXTS
    }))
    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        for column, kind in zip(TEXTS, (sa.String(length=200), sa.Text(), sa.Text())):
            batch_op.alter_column(column, existing_type=kind, nullable=False)
        batch_op.drop_constraint(batch_op.f('fk_mail_message_content_id_mail_content'), type_='foreignkey')
        batch_op.drop_column('content_id')
    op.drop_table('mail_content')
