"""Signed results shared by other member sites, imported after their signature verified.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the shared_results table."""
    op.create_table(
        "shared_results",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("content_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("origin_site", sa.String(100), nullable=False, index=True),
        sa.Column("kid", sa.String(100), nullable=False),
        sa.Column("signed_at", sa.String(40), nullable=False),
        sa.Column("report_identifier", sa.String(300), nullable=False, index=True),
        sa.Column("report_status", sa.String(20), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False, index=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("bundle", sa.Text, nullable=False),
        sa.Column("imported_by", sa.String(200), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop the shared_results table."""
    op.drop_table("shared_results")
