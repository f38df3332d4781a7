"""Sites: every job and every stored DICOM instance belongs to a site (whose users alone see it).

Rows from before have no site (empty); the service gives them its own (``CDS_SITE``) when it starts
(:func:`cds.store.sites.adopt_unsited`).

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None
TABLES = ("jobs", "dicom_instances")


def upgrade() -> None:
    """Add the site column and its index."""
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("site", sa.String(100), nullable=False, server_default=""))
        op.create_index(f"ix_{table}_site", table, ["site"])


def downgrade() -> None:
    """Drop the column."""
    for table in TABLES:
        op.drop_index(f"ix_{table}_site", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("site")
