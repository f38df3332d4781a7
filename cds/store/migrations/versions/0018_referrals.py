"""Referrals: a member site refers a study (its pre-read job) to the hub for reading, with a question and a priority.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the referrals table."""
    op.create_table(
        "referrals",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("job_id", sa.String(36), nullable=False, index=True),
        sa.Column("study_uids", sa.Text, nullable=False),
        sa.Column("from_site", sa.String(100), nullable=False, index=True),
        sa.Column("to_site", sa.String(100), nullable=False, index=True),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("priority", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("referred_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_by", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    """Drop the referrals table."""
    op.drop_table("referrals")
