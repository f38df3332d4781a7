"""Alerts raised by early-warning scores: one open alert per patient and score, escalated, acknowledged.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the alerts table."""
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("patient", sa.String(200), nullable=False, index=True),
        sa.Column("family", sa.String(40), nullable=False),
        sa.Column("rules", sa.String(200), nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False, index=True),
        sa.Column("text", sa.String(1000), nullable=False),
        sa.Column("result_id", sa.String(36), nullable=False),
        sa.Column("escalations", sa.Integer, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    """Drop the alerts table."""
    op.drop_table("alerts")
