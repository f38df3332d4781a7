"""Chronic-disease registries, and where each observation was taken (clinic or home).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the registry table; observations stored before were not told apart, and count as home readings."""
    op.create_table(
        "chronic_registry",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("patient", sa.String(200), nullable=False),
        sa.Column("condition", sa.String(20), nullable=False),
        sa.Column("site", sa.String(100), nullable=False),
        sa.Column("birth_date", sa.String(10), nullable=True),
        sa.Column("enrolled_on", sa.Date, nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("enrolled_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("patient", "condition", name="uq_chronic_registry_patient_condition"),
    )
    op.create_index("ix_chronic_registry_site_condition", "chronic_registry", ["site", "condition"])
    with op.batch_alter_table("observations") as batch:
        batch.add_column(sa.Column("setting", sa.String(10), nullable=False, server_default="home"))


def downgrade() -> None:
    """Drop the registry table and the observations' setting."""
    with op.batch_alter_table("observations") as batch:
        batch.drop_column("setting")
    op.drop_table("chronic_registry")
