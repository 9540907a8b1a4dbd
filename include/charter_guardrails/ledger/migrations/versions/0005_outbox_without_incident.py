"""alert outbox rows without an incident: the approval notices of a model refresh

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
        batch_op.alter_column('incident_id', existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM alert_outbox WHERE incident_id IS NULL")
    with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
        batch_op.alter_column('incident_id', existing_type=sa.Integer(), nullable=False)
