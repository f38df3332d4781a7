"""Observations over time (home devices, wearables, wards), one row per value, for early-warning scores.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the observations table, indexed for a patient's window of one input."""
    op.create_table(
        "observations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("patient", sa.String(200), nullable=False),
        sa.Column("field", sa.String(40), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("text", sa.String(40), nullable=True),
        sa.Column("effective", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("device", sa.String(300), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_observations_patient_field_effective", "observations", ["patient", "field", "effective"])


def downgrade() -> None:
    """Drop the observations table."""
    op.drop_index("ix_observations_patient_field_effective", table_name="observations")
    op.drop_table("observations")
