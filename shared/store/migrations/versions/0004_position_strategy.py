"""The strategy that opened a position, beside the version of its symbol's parameter set.

Each symbol runs its own strategy with its own versioned set, so a trade keeps both; rows
opened before have NULL (they were all ``ema_cross_rsi`` or the one ``STRATEGY`` of the run).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("strategy", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_column("strategy")
