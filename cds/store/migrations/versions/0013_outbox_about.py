"""What an outbox message is about (``ImagingStudy/<uid>``), so the worklist can show each study's delivery.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column (empty for the messages written before) and its index."""
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("about", sa.String(200), nullable=False, server_default=""))
    op.create_index("ix_outbox_about", "outbox", ["about"])


def downgrade() -> None:
    """Drop the column."""
    op.drop_index("ix_outbox_about", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("about")
