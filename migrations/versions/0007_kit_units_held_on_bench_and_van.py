"""A packed kit's units stay reserved where they lie (its staging bench or the van).

Before this revision, picking took a kit's units off ``reserved`` in storage and nothing held
them on the bench or in the van, so a transfer or an adjustment could take them. The ledger
now counts them in the ``reserved`` of the location they are at until they are delivered or
put back; this revision counts the units of the kits already there (open again after a recall,
packed, dispatched, or back from a failed stop).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 06:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The picked units of kits still in the pharmacy's hands, at the kit's bench or van.
_HELD_HERE = """
    SELECT COALESCE(SUM(r.quantity), 0)
    FROM reservations r JOIN kits k ON k.id = r.kit_id
    WHERE r.status = 'picked'
      AND k.status IN ('open', 'packed', 'dispatched', 'failed')
      AND COALESCE(k.vehicle_location_id, k.staging_location_id) = stock_balances.location_id
      AND r.item_id = stock_balances.item_id
      AND (r.lot_id = stock_balances.lot_id OR (r.lot_id IS NULL AND stock_balances.lot_id IS NULL))
"""


UPGRADE = f"UPDATE stock_balances SET reserved = reserved + ({_HELD_HERE})"  # noqa: S608
DOWNGRADE = f"UPDATE stock_balances SET reserved = reserved - ({_HELD_HERE})"  # noqa: S608


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
