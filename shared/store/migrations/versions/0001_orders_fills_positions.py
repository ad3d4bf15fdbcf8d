"""Orders, fills and positions (amounts as exact decimal text).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "positions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("entry_client_order_id", sa.String(length=36), nullable=False),
        sa.Column("entry_price", sa.String(length=64), nullable=True),
        sa.Column("quantity", sa.String(length=64), nullable=False),
        sa.Column("quote_spent", sa.String(length=64), nullable=False),
        sa.Column("stop_loss", sa.String(length=64), nullable=True),
        sa.Column("take_profit", sa.String(length=64), nullable=True),
        sa.Column("entry_time_ms", sa.BigInteger(), nullable=True),
        sa.Column("entry_candle_open_ms", sa.BigInteger(), nullable=True),
        sa.Column("exit_client_order_id", sa.String(length=36), nullable=True),
        sa.Column("exit_price", sa.String(length=64), nullable=True),
        sa.Column("quote_received", sa.String(length=64), nullable=True),
        sa.Column("exit_reason", sa.String(length=16), nullable=True),
        sa.Column("exit_time_ms", sa.BigInteger(), nullable=True),
        sa.Column("exit_candle_open_ms", sa.BigInteger(), nullable=True),
        sa.Column("return_pct", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entry_client_order_id"),
        sa.UniqueConstraint("exit_client_order_id"),
    )
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.create_index("ix_positions_symbol_status", ["symbol", "status"], unique=False)

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_order_id", sa.String(length=36), nullable=False),
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("order_type", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_quantity", sa.String(length=64), nullable=False),
        sa.Column("executed_quantity", sa.String(length=64), nullable=False),
        sa.Column("cumulative_quote", sa.String(length=64), nullable=False),
        sa.Column("commission_base", sa.String(length=64), nullable=False),
        sa.Column("commission_quote", sa.String(length=64), nullable=False),
        sa.Column("exchange_order_id", sa.BigInteger(), nullable=True),
        sa.Column("signal_event_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("position_id", sa.Integer(), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["position_id"],
            ["positions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_order_id"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_symbol_created", ["symbol", "created_at_ms"], unique=False)

    op.create_table(
        "fills",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_order_id", sa.String(length=36), nullable=False),
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("trade_id", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.String(length=64), nullable=False),
        sa.Column("quote_quantity", sa.String(length=64), nullable=False),
        sa.Column("commission", sa.String(length=64), nullable=False),
        sa.Column("commission_asset", sa.String(length=16), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_order_id"],
            ["orders.client_order_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("symbol", "trade_id", name="uq_fills_symbol_trade"),
    )


def downgrade() -> None:
    op.drop_table("fills")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_symbol_created")

    op.drop_table("orders")
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_index("ix_positions_symbol_status")

    op.drop_table("positions")
