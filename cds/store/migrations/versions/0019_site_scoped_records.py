"""Sites for what is kept per patient, for readers' and EHRs' feedback and for the audit trail.

Results, observations, early-warning scores, alerts, shared results, finding verdicts, ECG reviews, CDS Hooks
feedback and audit events get a site column.

A site's observations and imported shared results are keyed within the site (two sites may send the same
Observation, or import the same Bundle, and each keeps its own); a registry enrols a patient once per site.

Rows from before have no site (empty); the service gives them its own (``CDS_SITE``) when it starts
(:func:`cds.store.sites.adopt_unsited`), except audit events, which are never changed: an event without a site is the
deployment's.

Revision ID: 0019
Revises: 0018
"""

from typing import Literal

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None
INDEXED = ("audit_events", "results", "early_warning_scores", "alerts")
PLAIN = ("hook_feedback", "finding_feedback", "ecg_reviews")
DOWNGRADE_KEYS = {"observations": ("id",), "shared_results": ("content_sha256",),
                  "chronic_registry": ("patient", "condition")}
NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s", "pk": "%(table_name)s_pkey"}  # SQLite's unnamed ones


def _site() -> sa.Column[str]:
    return sa.Column("site", sa.String(100), nullable=False, server_default="")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _recreate() -> Literal["always", "auto"]:
    """SQLite changes a key only by copying the table."""
    return "always" if _sqlite() else "auto"


def _without_unique(table: str, column: str) -> sa.Table | None:
    """On SQLite, the table as it is but for its unnamed UNIQUE on ``column`` (batch mode cannot name it to drop it)."""
    if not _sqlite():
        return None
    reflected = sa.Table(table, sa.MetaData(), autoload_with=op.get_bind())
    for constraint in list(reflected.constraints):
        if isinstance(constraint, sa.UniqueConstraint) and [c.name for c in constraint.columns] == [column]:
            reflected.constraints.remove(constraint)
    return reflected


def upgrade() -> None:
    """Add the site columns; key observations and shared results within their site, registries per site."""
    for table in INDEXED + PLAIN:
        with op.batch_alter_table(table) as batch:
            batch.add_column(_site())
    for table in INDEXED:
        op.create_index(f"ix_{table}_site", table, ["site"])
    recreate = _recreate()
    with op.batch_alter_table("observations", recreate=recreate, naming_convention=NAMES) as batch:
        batch.add_column(_site())
        batch.drop_constraint("observations_pkey", type_="primary")
        batch.create_primary_key("observations_pkey", ["id", "site"])
    with op.batch_alter_table("shared_results", recreate=recreate,
                              copy_from=_without_unique("shared_results", "content_sha256")) as batch:
        batch.add_column(_site())
        if not _sqlite():
            batch.drop_constraint("shared_results_content_sha256_key", type_="unique")
        batch.create_unique_constraint("uq_shared_results_site_content", ["site", "content_sha256"])
    op.create_index("ix_shared_results_site", "shared_results", ["site"])
    with op.batch_alter_table("chronic_registry", recreate=recreate) as batch:
        batch.drop_constraint("uq_chronic_registry_patient_condition", type_="unique")
        batch.create_unique_constraint("uq_chronic_registry_site_patient", ["site", "patient", "condition"])


def downgrade() -> None:
    """Back to one key for every site (rows another site holds under the same key are dropped first)."""
    recreate = _recreate()
    for table, key in DOWNGRADE_KEYS.items():  # one row per key is kept: the first site's
        same = " AND ".join(f"o.{column} = {table}.{column}" for column in key)
        op.execute(f"DELETE FROM {table} WHERE site <> (SELECT MIN(o.site) FROM {table} o WHERE {same})")  # noqa: S608 - names from DOWNGRADE_KEYS
    with op.batch_alter_table("chronic_registry", recreate=recreate) as batch:
        batch.drop_constraint("uq_chronic_registry_site_patient", type_="unique")
        batch.create_unique_constraint("uq_chronic_registry_patient_condition", ["patient", "condition"])
    op.drop_index("ix_shared_results_site", table_name="shared_results")
    with op.batch_alter_table("shared_results", recreate=recreate) as batch:
        batch.drop_constraint("uq_shared_results_site_content", type_="unique")
        batch.drop_column("site")
        batch.create_unique_constraint("shared_results_content_sha256_key", ["content_sha256"])
    with op.batch_alter_table("observations", recreate=recreate, naming_convention=NAMES) as batch:
        batch.drop_constraint("observations_pkey", type_="primary")
        batch.drop_column("site")
        batch.create_primary_key("observations_pkey", ["id"])
    for table in INDEXED:
        op.drop_index(f"ix_{table}_site", table_name=table)
    for table in INDEXED + PLAIN:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("site")
