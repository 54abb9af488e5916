"""Indexes for the per diem report: a kit's infusion days, and documents by when they happened.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 01:50:07.676202
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("infusion_days", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_infusion_days_kit_id"), ["kit_id"], unique=False)

    with op.batch_alter_table("stock_documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stock_documents_occurred_at"), ["occurred_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("stock_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_documents_occurred_at"))

    with op.batch_alter_table("infusion_days", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_infusion_days_kit_id"))
