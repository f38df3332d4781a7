"""DICOM instance index for QIDO-RS and WADO-RS.

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
    """Create the dicom_instances table."""
    op.create_table(
        "dicom_instances",
        sa.Column("sop_instance_uid", sa.String(64), primary_key=True),
        sa.Column("sop_class_uid", sa.String(64), nullable=False),
        sa.Column("study_uid", sa.String(64), nullable=False, index=True),
        sa.Column("series_uid", sa.String(64), nullable=False, index=True),
        sa.Column("modality", sa.String(16), nullable=False),
        sa.Column("instance_number", sa.Integer, nullable=True),
        sa.Column("series_number", sa.Integer, nullable=True),
        sa.Column("series_description", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False, index=True),
        sa.Column("patient_name", sa.String(200), nullable=False),
        sa.Column("study_date", sa.String(8), nullable=False),
        sa.Column("accession_number", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop the dicom_instances table."""
    op.drop_table("dicom_instances")
