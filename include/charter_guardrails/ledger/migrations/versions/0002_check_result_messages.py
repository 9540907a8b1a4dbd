"""check result messages: the summary as a message id with its parameters

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('check_results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_id', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('message_params', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('check_results', schema=None) as batch_op:
        batch_op.drop_column('message_params')
        batch_op.drop_column('message_id')
