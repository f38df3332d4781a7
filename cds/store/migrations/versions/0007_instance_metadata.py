"""DICOM JSON metadata of each indexed instance, extracted once when it is stored.

WADO-RS ``/metadata`` answers from this column instead of parsing the file on every call. Instances indexed
before this revision have none; the first ``/metadata`` call that reaches them extracts and keeps it.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``dicom_instances.metadata_json``."""
    op.add_column("dicom_instances", sa.Column("metadata_json", sa.Text, nullable=True))


def downgrade() -> None:
    """Drop ``dicom_instances.metadata_json``."""
    with op.batch_alter_table("dicom_instances") as batch:
        batch.drop_column("metadata_json")
