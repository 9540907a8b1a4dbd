"""incident decisions: the GDPR Art. 33 notification and Art. 34 communication decisions

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('art33_decision', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('art33_decided_by', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('art33_decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('art33_notified_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('art33_authority', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('art33_reference', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('art33_rationale', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('art34_decision', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('art34_decided_by', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('art34_decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('art34_communicated_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('art34_channel', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('art34_ground', sa.String(length=1), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('art34_ground')
        batch_op.drop_column('art34_channel')
        batch_op.drop_column('art34_communicated_on')
        batch_op.drop_column('art34_decided_at')
        batch_op.drop_column('art34_decided_by')
        batch_op.drop_column('art34_decision')
        batch_op.drop_column('art33_rationale')
        batch_op.drop_column('art33_reference')
        batch_op.drop_column('art33_authority')
        batch_op.drop_column('art33_notified_on')
        batch_op.drop_column('art33_decided_at')
        batch_op.drop_column('art33_decided_by')
        batch_op.drop_column('art33_decision')
