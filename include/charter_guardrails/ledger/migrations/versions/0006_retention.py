"""retention: legal holds, the files retention deleted, and when a model version was retired

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('legal_holds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('use_case', sa.String(length=64), nullable=False),
    sa.Column('dataset', sa.String(length=128), nullable=True),
    sa.Column('model_version', sa.Integer(), nullable=True),
    sa.Column('run_id', sa.String(length=250), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=256), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_by', sa.String(length=256), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_holds_use_case'), ['use_case'], unique=False)

    op.create_table('deleted_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('use_case', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('path_key', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=250), nullable=True),
    sa.Column('dataset', sa.String(length=128), nullable=True),
    sa.Column('model_version', sa.Integer(), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('files', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=128), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('deleted_files', schema=None) as batch_op:
        batch_op.create_index('ix_deleted_files_path_key', ['path_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_deleted_files_use_case'), ['use_case'], unique=False)

    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_column('retired_at')

    with op.batch_alter_table('deleted_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deleted_files_use_case'))
        batch_op.drop_index('ix_deleted_files_path_key')

    op.drop_table('deleted_files')
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_holds_use_case'))

    op.drop_table('legal_holds')
