"""The price an order was placed at, and the best bid a LIMIT_MAKER entry was priced from.

``limit_price`` is the limit of a LIMIT_MAKER entry (``ENTRY_ORDER=limit_maker``; the last one
sent, after a re-pricing) and of an OCO's LIMIT_MAKER / STOP_LOSS_LIMIT leg; ``stop_price`` the
trigger of a stop leg; ``best_bid`` the ``bookTicker`` bid the entry's limit was derived from.
MARKET orders, and rows written before, have NULL.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("limit_price", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("stop_price", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("best_bid", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("best_bid")
        batch_op.drop_column("stop_price")
        batch_op.drop_column("limit_price")
