"""audit verifications: signed verification checkpoints of the audit chain, and the index of events by subject

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_verifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.Column('problems', sa.Integer(), nullable=False),
    sa.Column('first_broken', sa.BigInteger(), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('signature', sa.Text(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_verifications', schema=None) as batch_op:
        batch_op.create_index('ix_audit_verifications_ok_seq', ['ok', 'seq'], unique=False)
        batch_op.create_index('ix_audit_verifications_mode_verified_at', ['mode', 'verified_at'], unique=False)

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_subject', ['subject_type', 'subject_id', 'seq'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_subject')

    with op.batch_alter_table('audit_verifications', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_verifications_mode_verified_at')
        batch_op.drop_index('ix_audit_verifications_ok_seq')

    op.drop_table('audit_verifications')
