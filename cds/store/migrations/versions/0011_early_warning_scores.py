"""Early-warning scores as a time series beside their released results, filled from the results already released.

Revision ID: 0011
Revises: 0010
"""

import datetime as dt
import json

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None
FAMILIES = ("news2", "qsofa")


def upgrade() -> None:
    """Create the table and its per-patient time index; copy the NEWS2 and qSOFA scores released so far."""
    scores = op.create_table(
        "early_warning_scores",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("patient", sa.String(200), nullable=False),
        sa.Column("family", sa.String(40), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("band", sa.String(40), nullable=True),
        sa.Column("category", sa.String(200), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_early_warning_scores_patient_family_observed", "early_warning_scores",
                    ["patient", "family", "observed_at"])  # fmt: skip
    results = sa.table("results", sa.column("id", sa.String), sa.column("subject", sa.String),
                       sa.column("method", sa.String), sa.column("payload", sa.Text),
                       sa.column("created_at", sa.DateTime(timezone=True)))  # fmt: skip
    rows = []
    query = sa.select(results).where(sa.or_(*(results.c.method.like(f"{family}@%") for family in FAMILIES)))
    for row in op.get_bind().execute(query):
        payload = json.loads(row.payload)
        if not isinstance(payload.get("score"), int | float):
            continue
        released = row.created_at if isinstance(row.created_at, dt.datetime) else dt.datetime.fromisoformat(
            str(row.created_at))
        rows.append({"id": row.id, "patient": row.subject, "family": row.method.split("@")[0],
                     "score": float(payload["score"]), "band": payload.get("band"),
                     "category": (payload.get("category") or None) and str(payload["category"])[:200],
                     "observed_at": released, "released_at": released})  # fmt: skip
    if rows:
        op.bulk_insert(scores, rows)


def downgrade() -> None:
    """Drop the table (the results stay)."""
    op.drop_table("early_warning_scores")
