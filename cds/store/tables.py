"""Database tables. Schema changes go through Alembic migrations in ``cds/store/migrations``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, DateTime, Dialect, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A moment in time, stored with its time zone and always read back aware (UTC where the database forgets).

    SQLite keeps no time zone, so without this a value written aware comes back naive; a naive value written is
    taken as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """A naive value is taken as UTC."""
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Aware, UTC where the database kept no time zone."""
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every cds table."""


class AuditEventRow(Base):
    """One audit event, linked to its predecessor by ``prev_hash``; ``hash`` covers every other column."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    occurred_at: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC, hashed as text
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    resource: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(200), default="")
    model: Mapped[str] = mapped_column(String(300), default="")
    input_sha256: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    site: Mapped[str] = mapped_column(String(100), default="", index=True)  # the acting site; hashed when not empty


class AuditHeadRow(Base):
    """The chain's head (single row, id 1): the last sequence number and hash; locked while appending."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class ResultRow(Base):
    """A released AI or risk result (JSON), with who asked and what produced it."""

    __tablename__ = "results"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    subject: Mapped[str] = mapped_column(String(200), default="", index=True)
    method: Mapped[str] = mapped_column(String(300))
    input_sha256: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    site: Mapped[str] = mapped_column(String(100), default="", index=True)  # whose result it is (the requesting site)


class ApiKeyRow(Base):
    """A service account's API key; only the sha256 of its secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    roles: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class SeenTokenRow(Base):
    """A CDS Hooks client JWT id (``jti``) already accepted, kept until the token expires (replay check)."""

    __tablename__ = "seen_tokens"

    jti: Mapped[str] = mapped_column(String(200), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(300), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)


class HookFeedbackRow(Base):
    """Feedback an EHR sent on a CDS Hooks card (accepted / overridden, with the reason)."""

    __tablename__ = "hook_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(String(100))
    card: Mapped[str] = mapped_column(String(100), index=True)
    outcome: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    client: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    site: Mapped[str] = mapped_column(String(100), default="")  # the site the EHR works for


class JobRow(Base):
    """A durable unit of background work; survives restarts, leased to one worker at a time."""

    __tablename__ = "jobs"
    # Times are naive UTC: SQLite has no time zones, and lease comparisons must mean the same on both databases.

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20), index=True)  # queued | running | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    payload: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")  # "<code>: <message>" of the last failure
    error_code: Mapped[str] = mapped_column(String(64), default="")  # the last failure's reason code alone
    refused: Mapped[bool] = mapped_column(Boolean, default=False)  # failed because its input was refused
    subject: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime())
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(), nullable=True)
    worker: Mapped[str] = mapped_column(String(100), default="")
    site: Mapped[str] = mapped_column(String(100), default="", index=True)  # whose data it is (the caller's site)


class DicomInstanceRow(Base):
    """A DICOM instance the service holds: stored through STOW-RS, or written by a pre-read (SR, SEG, capture).

    The index behind QIDO-RS searches and WADO-RS retrieval; the file itself lives under the data folder.
    """

    __tablename__ = "dicom_instances"

    sop_instance_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    study_uid: Mapped[str] = mapped_column(String(64), index=True)
    series_uid: Mapped[str] = mapped_column(String(64), index=True)
    modality: Mapped[str] = mapped_column(String(16))
    instance_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    series_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    series_description: Mapped[str] = mapped_column(String(64), default="")
    patient_id: Mapped[str] = mapped_column(String(64), index=True, default="")
    patient_name: Mapped[str] = mapped_column(String(200), default="")
    study_date: Mapped[str] = mapped_column(String(8), default="")
    accession_number: Mapped[str] = mapped_column(String(16), default="")
    origin: Mapped[str] = mapped_column(String(20))  # "stored" (STOW-RS) or "ai_result" (pre-read output)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime())
    # DICOM JSON without bulk data (BulkDataURI left empty), extracted when indexed; None for older rows
    metadata_json: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    site: Mapped[str] = mapped_column(String(100), default="", index=True)  # the site the study belongs to


class FindingFeedbackRow(Base):
    """A reader's verdict on one AI finding (or segmented structure) of a pre-read: accepted or rejected.

    Append only: a changed mind is a new row, and the newest row per finding is the current verdict.
    """

    __tablename__ = "finding_feedback"
    # Times are naive UTC, as in the jobs table.

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    uid: Mapped[str] = mapped_column(String(64))  # SOP Instance UID (radiograph) or Series Instance UID (CT)
    label: Mapped[str] = mapped_column(String(100))
    verdict: Mapped[str] = mapped_column(String(20))  # accepted | rejected
    comment: Mapped[str] = mapped_column(String(1000), default="")
    model: Mapped[str] = mapped_column(String(300), default="")  # name:version that produced the finding
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime())
    site: Mapped[str] = mapped_column(String(100), default="")  # the reader's site (the hub, for a referred read)


class EcgReviewRow(Base):
    """A cardiologist's review of one item of an ECG read (the rhythm, a measurement or a flag).

    Append only, like :class:`FindingFeedbackRow`: the newest row per item is the current review.
    """

    __tablename__ = "ecg_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    item: Mapped[str] = mapped_column(String(40))  # rhythm | a Measurements field | a flag code
    verdict: Mapped[str] = mapped_column(String(20))  # accepted | corrected | rejected
    ai_value: Mapped[str] = mapped_column(String(100), default="")  # what the engine said
    value: Mapped[str] = mapped_column(String(100), default="")  # the reader's value (corrected), else the AI's
    comment: Mapped[str] = mapped_column(String(1000), default="")
    model: Mapped[str] = mapped_column(String(300), default="")
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime())
    site: Mapped[str] = mapped_column(String(100), default="")  # the reviewer's site (the hub, for a referred read)


class ObservationRow(Base):
    """One value of one input at one time (a vital sign, a glucose reading), from a FHIR Observation.

    ``id`` is the idempotency key within a site: the same Observation sent twice by one site is stored once (two
    sites' values are two sites' records, even under the same patient reference).
    """

    __tablename__ = "observations"
    __table_args__ = (Index("ix_observations_patient_field_effective", "patient", "field", "effective"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(100), primary_key=True, default="")  # the site that sent it
    patient: Mapped[str] = mapped_column(String(200))
    field: Mapped[str] = mapped_column(String(40))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)  # numbers and booleans (0/1)
    text: Mapped[str | None] = mapped_column(String(40), nullable=True)  # categories (ACVPU level)
    effective: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    source: Mapped[str] = mapped_column(String(300))  # "Observation/<id>" as sent
    device: Mapped[str] = mapped_column(String(300))  # "Device/<id>" or the device's name, "" when unknown
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    setting: Mapped[str] = mapped_column(String(10), default="home")  # "clinic" or "home"


class ScoreRow(Base):
    """One early-warning score in a patient's time series; ``id`` is its released result's id (``results``)."""

    __tablename__ = "early_warning_scores"
    __table_args__ = (Index("ix_early_warning_scores_patient_family_observed", "patient", "family", "observed_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient: Mapped[str] = mapped_column(String(200))
    family: Mapped[str] = mapped_column(String(40))  # "news2", "qsofa"
    score: Mapped[float] = mapped_column(Float)
    band: Mapped[str | None] = mapped_column(String(40), nullable=True)
    category: Mapped[str | None] = mapped_column(String(200), nullable=True)
    observed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())  # when its newest input was measured
    released_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    site: Mapped[str] = mapped_column(String(100), default="", index=True)  # whose observations it scored


class RegistryRow(Base):
    """A patient in a family doctor's chronic-disease registry (hypertension, diabetes) at one site."""

    __tablename__ = "chronic_registry"
    __table_args__ = (UniqueConstraint("site", "patient", "condition", name="uq_chronic_registry_site_patient"),
                      Index("ix_chronic_registry_site_condition", "site", "condition"))  # fmt: skip

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient: Mapped[str] = mapped_column(String(200))
    condition: Mapped[str] = mapped_column(String(20))
    site: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[str | None] = mapped_column(String(10), nullable=True)  # FHIR date: "1958", "1958-03"...
    enrolled_on: Mapped[dt.date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(300))  # "Condition/<id>" or "enrolled by <who>"
    enrolled_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class AlertRow(Base):
    """An alert from an early-warning score; one open per patient and score family, escalated in place."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient: Mapped[str] = mapped_column(String(200), index=True)
    family: Mapped[str] = mapped_column(String(40))  # the score, e.g. "news2"
    rules: Mapped[str] = mapped_column(String(200))  # comma-separated rules met
    level: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), index=True)  # open | acknowledged
    text: Mapped[str] = mapped_column(String(1000))
    result_id: Mapped[str] = mapped_column(String(36))  # the score that raised or last escalated it
    escalations: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    site: Mapped[str] = mapped_column(String(100), default="", index=True)  # whose patient it is


class OutboxRow(Base):
    """A message to a subscriber (an alert REST hook), written with what it reports and kept until delivered."""

    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # sent as the message's id: receivers dedupe
    destination: Mapped[str] = mapped_column(String(500))
    topic: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True, index=True)
    last_error: Mapped[str] = mapped_column(String(300))
    about: Mapped[str] = mapped_column(String(200), default="", index=True)  # "ImagingStudy/<uid>" for results


class SharedResultRow(Base):
    """A signed result another member site shared, imported after its signature verified against the site's key.

    ``content_sha256`` (of the Bundle's canonical form) is the idempotency key within the importing site: the same
    Bundle imported twice by one site is stored once. Rows are never changed; a later version of a report (amended)
    is a row of its own.
    """

    __tablename__ = "shared_results"
    __table_args__ = (UniqueConstraint("site", "content_sha256", name="uq_shared_results_site_content"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(100), default="", index=True)  # the site that imported it
    origin_site: Mapped[str] = mapped_column(String(100), index=True)
    kid: Mapped[str] = mapped_column(String(100))
    signed_at: Mapped[str] = mapped_column(String(40))
    report_identifier: Mapped[str] = mapped_column(String(300), index=True)
    report_status: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(300), default="", index=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    bundle: Mapped[str] = mapped_column(Text)
    imported_by: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class ReportSignatureRow(Base):
    """A specialist's signature on a pre-read outcome: the verdicts and impression they signed, version by version.

    Append only: version 1 is the final report, later versions amend it; the newest is the report in force.
    """

    __tablename__ = "report_signatures"
    __table_args__ = (UniqueConstraint("job_id", "uid", "version", name="uq_report_signatures_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    uid: Mapped[str] = mapped_column(String(64))
    study_uid: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # final | amended
    signer: Mapped[str] = mapped_column(String(200))
    signer_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(200), default="")
    site: Mapped[str] = mapped_column(String(100))
    impression: Mapped[str] = mapped_column(Text)
    verdicts: Mapped[str] = mapped_column(Text)  # JSON: label -> accepted | rejected
    sr_sop_instance_uid: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class ReferralRow(Base):
    """A study a member site referred to another site (the hub) for reading, and when it was signed.

    The hub's readers see the referred job and its studies as if their own; turnaround is ``signed_at`` minus
    ``created_at``.
    """

    __tablename__ = "referrals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    study_uids: Mapped[str] = mapped_column(Text, default="")  # the job's studies, space-separated
    from_site: Mapped[str] = mapped_column(String(100), index=True)
    to_site: Mapped[str] = mapped_column(String(100), index=True)
    question: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(20))  # routine | urgent | stat
    status: Mapped[str] = mapped_column(String(20))  # open | signed
    referred_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    signed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    signed_by: Mapped[str] = mapped_column(String(200), default="")


class AuditSeenRow(Base):
    """A view already audited: the keyed hash of (actor, session, action, resource, what was seen), until it expires.

    Shared by every worker through the database, so polling or re-drawing the same thing writes one audit event per
    session and window (:mod:`cds.store.audit_policy`).
    """

    __tablename__ = "audit_seen"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)


class EngineMetricRow(Base):
    """One process's engine calls of one model (or scored requests of one method) between two flushes.

    Appended by every process: the dashboard adds the rows up, so history survives restarts and several processes
    never contend for one row; the leader rolls finished days up into one row per day (:mod:`cds.store.engine_metrics`).
    """

    __tablename__ = "engine_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # engine | scored
    model: Mapped[str] = mapped_column(String(300))  # name:version (engine calls) or the method (scored requests)
    outcome: Mapped[str] = mapped_column(String(40), default="")  # a scored request's outcome
    calls: Mapped[int] = mapped_column(Integer)
    items: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    buckets: Mapped[str] = mapped_column(Text, default="")  # JSON: calls per latency bucket (not cumulative)
