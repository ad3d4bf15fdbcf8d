"""Market-time stamps beside the exchange stamps, the bot's fee dust, the entry's parameters.

Orders and fills keep ``market_time_ms`` (the market time of the decision that sent the order)
beside their wall/exchange stamps; a position keeps the market time of its entry and exit
decisions, the base dust it carried in from earlier exits and left behind, and the parameter
version and indicator values of the signal that opened it. Existing rows get NULL / 0.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("market_time_ms", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.add_column(sa.Column("market_time_ms", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entry_market_time_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("exit_market_time_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("dust_in", sa.String(length=64), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("dust_out", sa.String(length=64), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("parameters_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("entry_indicators", sa.Text(), nullable=True))
        batch_op.create_index("ix_positions_symbol_exit_market", ["symbol", "exit_market_time_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_index("ix_positions_symbol_exit_market")
        for name in (
            "entry_indicators",
            "parameters_version",
            "dust_out",
            "dust_in",
            "exit_market_time_ms",
            "entry_market_time_ms",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_column("market_time_ms")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("market_time_ms")
