"""prediction batches: what the production model predicted on each accepted inference batch

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('prediction_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('use_case', sa.String(length=64), nullable=False),
    sa.Column('dag_id', sa.String(length=250), nullable=True),
    sa.Column('run_id', sa.String(length=250), nullable=False),
    sa.Column('batch', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('model_version', sa.Integer(), nullable=True),
    sa.Column('ai_label_id', sa.String(length=64), nullable=True),
    sa.Column('predictions', sa.Text(), nullable=True),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('distribution', sa.JSON(), nullable=False),
    sa.Column('drift', sa.Float(), nullable=True),
    sa.Column('previous_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('prediction_batches', schema=None) as batch_op:
        batch_op.create_index('ix_prediction_batches_use_case_run', ['use_case', 'run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('prediction_batches', schema=None) as batch_op:
        batch_op.drop_index('ix_prediction_batches_use_case_run')

    op.drop_table('prediction_batches')
