"""foundation: catalog, users, ledger, idempotency

The stock movements table is append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on
PostgreSQL), so a correction can only ever be a new movement.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 04:49:41.480179
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


APPEND_ONLY_MESSAGE = "stock movements are append-only; post a correcting movement instead"


def _create_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION stock_movements_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}' USING ERRCODE = 'restrict_violation';
            END
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER stock_movements_no_update_or_delete BEFORE UPDATE OR DELETE "
            "ON stock_movements FOR EACH ROW EXECUTE FUNCTION stock_movements_append_only()"
        )
        op.execute(
            "CREATE TRIGGER stock_movements_no_truncate BEFORE TRUNCATE "
            "ON stock_movements FOR EACH STATEMENT EXECUTE FUNCTION stock_movements_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER stock_movements_no_{action.lower()} BEFORE {action} "
                f"ON stock_movements BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            )


def _drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER stock_movements_no_truncate ON stock_movements")
        op.execute("DROP TRIGGER stock_movements_no_update_or_delete ON stock_movements")
        op.execute("DROP FUNCTION stock_movements_append_only()")
    else:
        op.execute("DROP TRIGGER stock_movements_no_update")
        op.execute("DROP TRIGGER stock_movements_no_delete")


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "category",
            sa.Enum(
                "administration_set",
                "filter",
                "catheter",
                "needle",
                "syringe",
                "flush",
                "prep",
                "dressing",
                "ppe",
                "sharps",
                "cold_chain",
                "pump",
                "pole",
                "other",
                name="category",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column(
            "tracking",
            sa.Enum("none", "lot", "serial", name="tracking", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.Column("reorder_point", sa.Integer(), nullable=False),
        sa.Column("reorder_quantity", sa.Integer(), nullable=False),
        sa.Column("daily_rate", sa.BigInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("gtin", name=op.f("uq_items_gtin")),
        sa.UniqueConstraint("sku", name=op.f("uq_items_sku")),
    )
    op.create_table(
        "locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "storage",
                "staging",
                "quarantine",
                "vehicle",
                "cleaning",
                "repair",
                name="locationkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("site", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
        sa.UniqueConstraint("code", name=op.f("uq_locations_code")),
    )
    with op.batch_alter_table("locations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_locations_site"), ["site"], unique=False)

    op.create_table(
        "lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("lot_number", sa.String(length=20), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("recalled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_lots_item_id_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lots")),
        sa.UniqueConstraint("item_id", "lot_number", name=op.f("uq_lots_item_id_lot_number")),
    )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lots_expiry"), ["expiry"], unique=False)

    op.create_table(
        "serial_units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "available",
                "reserved",
                "at_patient",
                "dirty",
                "cleaning",
                "repair",
                "retired",
                name="equipmentstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("location_id", sa.Integer(), nullable=True),
        sa.Column("unit_cost", sa.BigInteger(), nullable=False),
        sa.Column("pm_due", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_serial_units_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_serial_units_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serial_units")),
        sa.UniqueConstraint("item_id", "serial", name=op.f("uq_serial_units_item_id_serial")),
    )
    with op.batch_alter_table("serial_units", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_serial_units_location_id"), ["location_id"], unique=False
        )

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "coordinator",
                "warehouse",
                "driver",
                "finance",
                name="role",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("site", sa.String(length=32), nullable=True),
        sa.Column("vehicle_location_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vehicle_location_id"],
            ["locations.id"],
            name=op.f("fk_users_vehicle_location_id_locations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "cost_layers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=True),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("unit_cost", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_cost_layers_quantity_not_negative")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_cost_layers_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_cost_layers_location_id_locations")
        ),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.id"], name=op.f("fk_cost_layers_lot_id_lots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_layers")),
    )
    with op.batch_alter_table("cost_layers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cost_layers_stock", ["item_id", "lot_id", "location_id"], unique=False
        )

    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("response_headers", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_idempotency_records_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint("user_id", "key", name=op.f("uq_idempotency_records_user_id_key")),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "stock_balances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=True),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=32), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.CheckConstraint("on_hand >= 0", name=op.f("ck_stock_balances_on_hand_not_negative")),
        sa.CheckConstraint(
            "reserved >= 0 AND reserved <= on_hand",
            name=op.f("ck_stock_balances_reserved_within_on_hand"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_stock_balances_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_stock_balances_location_id_locations")
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["lots.id"], name=op.f("fk_stock_balances_lot_id_lots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_balances")),
        sa.UniqueConstraint(
            "item_id",
            "lot_id",
            "location_id",
            name=op.f("uq_stock_balances_item_id_lot_id_location_id"),
            postgresql_nulls_not_distinct=True,
        ),
    )
    with op.batch_alter_table("stock_balances", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stock_balances_location_id"), ["location_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_stock_balances_lot_id"), ["lot_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_stock_balances_site"), ["site"], unique=False)

    op.create_table(
        "stock_documents",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "receipt",
                "transfer",
                "adjustment",
                name="documenttype",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("site", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_stock_documents_actor_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_documents")),
    )
    op.create_table(
        "stock_movements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "document_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "type",
            sa.Enum(
                "receipt",
                "transfer",
                "adjustment",
                name="movementtype",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("site", sa.String(length=32), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=True),
        sa.Column("serial_unit_id", sa.Integer(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("from_location_id", sa.Integer(), nullable=True),
        sa.Column(
            "from_party",
            sa.Enum(
                "supplier",
                "patient",
                "disposal",
                "adjustment",
                name="party",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("to_location_id", sa.Integer(), nullable=True),
        sa.Column(
            "to_party",
            sa.Enum(
                "supplier",
                "patient",
                "disposal",
                "adjustment",
                name="party",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("unit_cost", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("reference", sa.String(length=120), nullable=True),
        sa.CheckConstraint(
            "(from_location_id IS NULL) <> (from_party IS NULL)",
            name=op.f("ck_stock_movements_one_source"),
        ),
        sa.CheckConstraint(
            "(to_location_id IS NULL) <> (to_party IS NULL)",
            name=op.f("ck_stock_movements_one_destination"),
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_stock_movements_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_stock_movements_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["stock_documents.id"],
            name=op.f("fk_stock_movements_document_id_stock_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["from_location_id"],
            ["locations.id"],
            name=op.f("fk_stock_movements_from_location_id_locations"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_stock_movements_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["lots.id"], name=op.f("fk_stock_movements_lot_id_lots")
        ),
        sa.ForeignKeyConstraint(
            ["serial_unit_id"],
            ["serial_units.id"],
            name=op.f("fk_stock_movements_serial_unit_id_serial_units"),
        ),
        sa.ForeignKeyConstraint(
            ["to_location_id"],
            ["locations.id"],
            name=op.f("fk_stock_movements_to_location_id_locations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_movements")),
    )
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stock_movements_document_id"), ["document_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_stock_movements_from_location_id"), ["from_location_id"], unique=False
        )
        batch_op.create_index("ix_stock_movements_item_lot", ["item_id", "lot_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_stock_movements_serial_unit_id"), ["serial_unit_id"], unique=False
        )
        batch_op.create_index(
            "ix_stock_movements_site_occurred_at", ["site", "occurred_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_stock_movements_to_location_id"), ["to_location_id"], unique=False
        )

    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_movements_to_location_id"))
        batch_op.drop_index("ix_stock_movements_site_occurred_at")
        batch_op.drop_index(batch_op.f("ix_stock_movements_serial_unit_id"))
        batch_op.drop_index("ix_stock_movements_item_lot")
        batch_op.drop_index(batch_op.f("ix_stock_movements_from_location_id"))
        batch_op.drop_index(batch_op.f("ix_stock_movements_document_id"))

    op.drop_table("stock_movements")
    op.drop_table("stock_documents")
    with op.batch_alter_table("stock_balances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_balances_site"))
        batch_op.drop_index(batch_op.f("ix_stock_balances_lot_id"))
        batch_op.drop_index(batch_op.f("ix_stock_balances_location_id"))

    op.drop_table("stock_balances")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_created_at"))

    op.drop_table("idempotency_records")
    with op.batch_alter_table("cost_layers", schema=None) as batch_op:
        batch_op.drop_index("ix_cost_layers_stock")

    op.drop_table("cost_layers")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))

    op.drop_table("api_tokens")
    op.drop_table("users")
    with op.batch_alter_table("serial_units", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_serial_units_location_id"))

    op.drop_table("serial_units")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lots_expiry"))

    op.drop_table("lots")
    with op.batch_alter_table("locations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_locations_site"))

    op.drop_table("locations")
    op.drop_table("items")
