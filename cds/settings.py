"""Configuration: one pydantic-settings object, read from ``CDS_*`` environment variables."""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cds import REPO_ROOT, residency
from cds.interop.card_language import Language
from cds.models.risk.base import RiskPopulation
from cds.models.spec import BackendKind
from cds.pipelines.imaging.plausibility import PlausibilityPolicy
from cds.pipelines.imaging.saliency import HeatmapMethod

__all__ = ["REPO_ROOT", "SERVICE_BACKENDS", "Settings"]  # REPO_ROOT: see cds
SERVICE_BACKENDS = (BackendKind.ONNXRUNTIME, BackendKind.TRITON)  # torch is the reference engine, not a server
SITE_CODE = r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,99}$"  # a consortium site's code (CDS_SITE, a job's site)


class SiteRouted(BaseModel):
    """A destination of some sites' results (a PACS, a HIS interface).

    ``sites`` are the codes of the sites whose results it takes (the pre-reads' results and signed reports of their
    jobs); empty: this deployment's own site (``CDS_SITE``) alone, so a single-site configuration names none. A
    clinic's results go only to the destinations naming the clinic, never to another site's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,39}$")
    sites: tuple[str, ...] = ()

    def serves(self, site: str, *, home: str) -> bool:
        """Whether ``site``'s results go here (``home``: this deployment's site, ``CDS_SITE``)."""
        return site in (self.sites or (home,))

    @field_validator("sites", mode="before")
    @classmethod
    def _site_codes(cls, value: object, info: ValidationInfo) -> object:
        codes = value if isinstance(value, list | tuple) else None
        if codes is None or not all(isinstance(code, str) and re.fullmatch(SITE_CODE, code) for code in codes):
            raise ValueError(f"destination {info.data.get('name', '')!r}: sites must be a list of site codes "
                             f'(letters, digits, "-", "_", "."), e.g. ["clinic-a"]; got {value!r:.100}')  # fmt: skip
        return tuple(codes)


class DicomDestination(SiteRouted):
    """A PACS or archive the DICOM results of some sites go to: by C-STORE (``dimse``) or STOW-RS (``dicomweb``)."""

    kind: Literal["dimse", "dicomweb"]
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    ae_title: str | None = Field(default=None, pattern=r"^[ -\[\]-~]{1,16}$")
    url: str | None = Field(default=None, pattern=r"^https?://")

    @model_validator(mode="after")
    def _addressed(self) -> DicomDestination:
        if self.kind == "dimse" and not (self.host and self.port and self.ae_title):
            raise ValueError(f"DICOM destination {self.name!r}: dimse needs host, port and ae_title")
        if self.kind == "dicomweb" and not self.url:
            raise ValueError(f"DICOM destination {self.name!r}: dicomweb needs url (the DICOMweb root)")
        return self


class Hl7Destination(SiteRouted):
    """A hospital information system's MLLP interface for HL7 v2 results (of the sites it serves)."""

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)


class Settings(BaseSettings):
    """Engine and service settings (environment variable in brackets).

    Attributes:
        registry_dir: Root of the model registry [CDS_REGISTRY_DIR].
        data_dir: Where the embedded database and stored files live [CDS_DATA_DIR].
        database_url: SQLAlchemy URL; default SQLite in ``data_dir`` [CDS_DATABASE_URL], e.g.
            ``postgresql+psycopg://postgres@127.0.0.1:5432/test``.
        dev_mode: Development mode: an ephemeral signing key and ``POST /v1/dev/token`` [CDS_DEV_MODE]. Never in
            production; without it the service refuses to start unless real authentication is configured.
        host: Listen address [CDS_HOST]. port: Listen port [CDS_PORT].
        jwt_issuer: Expected ``iss`` of bearer tokens [CDS_JWT_ISSUER].
        jwt_audience: Expected ``aud`` of bearer tokens [CDS_JWT_AUDIENCE].
        jwt_jwks_file: JSON Web Key Set of the identity provider [CDS_JWT_JWKS_FILE].
        api_keys_only: Allow starting without JWT configuration, with API keys as the only credentials
            [CDS_API_KEYS_ONLY].
        max_json_bytes: Cap on JSON request bodies [CDS_MAX_JSON_BYTES].
        hooks_clients_file: Trusted CDS Hooks clients (EHRs) and their keys [CDS_HOOKS_CLIENTS_FILE].
        public_url: The service's external base URL, the ``aud`` CDS Clients sign for; default: as requested
            [CDS_PUBLIC_URL].
        max_upload_bytes: Cap on uploaded files (cohort CSV, slides) and whole STOW-RS bodies; they are written to
            disk as they arrive, so it bounds disk, not memory: the default takes a 500-slice CT study (about 260
            MB) or a whole-slide image [CDS_MAX_UPLOAD_BYTES].
        max_instance_bytes: Cap on one DICOM instance in a STOW-RS body; larger parts are refused
            (``instance_too_large``) and the rest stored [CDS_MAX_INSTANCE_BYTES].
        job_workers: In-process job workers; 0 when separate ``cds worker`` processes run the jobs
            [CDS_JOB_WORKERS].
        job_lease_s: How long a worker holds a job before others may take it over [CDS_JOB_LEASE_S].
        job_timeout_s: Longest a job may run; past it the job fails (``job_timeout``) and its worker is replaced
            [CDS_JOB_TIMEOUT_S].
        decode_timeout_s: Longest one image may take to decode before its decoder process is killed
            (``decoder_timeout``) [CDS_DECODE_TIMEOUT_S].
        decode_memory_bytes: Address space of each decoder process (``decoder_memory`` beyond it)
            [CDS_DECODE_MEMORY_BYTES].
        decode_workers: Decoder processes (images decoded at once); 0 decodes in-process, unprotected
            [CDS_DECODE_WORKERS].
        decode_prestart: Start the decoder processes, their decoders imported, when the service starts rather than
            on the first image (which would wait about a second for them) [CDS_DECODE_PRESTART].
        audit_key_file: Ed25519 key that signs audit checkpoints; keep it away from the database; default
            ``data_dir/audit-signing-key.pem``, made on first use [CDS_AUDIT_KEY_FILE].
        audit_checkpoint_dir: Where signed checkpoints of the audit chain's head are appended, outside the
            database; default ``data_dir/audit`` [CDS_AUDIT_CHECKPOINT_DIR].
        audit_checkpoint_s: Seconds between checkpoints while the service runs [CDS_AUDIT_CHECKPOINT_S].
        max_pending_jobs: Queued plus running jobs beyond which new ones are refused with 503 [CDS_MAX_PENDING_JOBS].
        preread_model: Registered chest radiograph model for uploaded studies [CDS_PREREAD_MODEL].
        ct_model: Registered CT segmentation model for uploaded CT series; empty for none [CDS_CT_MODEL].
        preread_heatmaps: How radiograph findings are localised: ``auto`` (class activation maps from the model's
            own forward pass when it exports them, else occlusion), ``cam``, ``occlusion`` or ``off``
            [CDS_PREREAD_HEATMAPS].
        preread_saliency_grid: Occlusion grid per side for radiograph heatmaps; 0 for none
            [CDS_PREREAD_SALIENCY_GRID].
        plausibility_policy: What this site does with a radiograph its plausibility gate scores below threshold:
            ``refuse`` it (``implausible_image``) or ``warn``: pre-read it with an ``out_of_distribution``
            warning on every output [CDS_PLAUSIBILITY_POLICY].
        plausibility_refuse_below: Under ``warn``, gate scores below this are refused all the same (0: never)
            [CDS_PLAUSIBILITY_REFUSE_BELOW].
        patient_id_system: The identifier system of DICOM Patient IDs at this site (its MRN system URI), under which
            pre-read reports name their patient [CDS_PATIENT_ID_SYSTEM].
        pathology_model: Registered patch classifier for uploaded slides and tiles [CDS_PATHOLOGY_MODEL].
        ecg_model: Registered ECG rhythm classifier for uploaded and stored ECGs [CDS_ECG_MODEL].
        risk_stale_days: Per-input staleness limits in days over the defaults of
            :mod:`cds.interop.record_readings`, as JSON, e.g. ``{"total_cholesterol": 1095}``
            [CDS_RISK_STALE_DAYS]. A stale input is still used and marked stale in the result.
        risk_population: The population the site serves, ``china`` or ``us``: the panel and CDS Hooks use its own
            scores first, and a result from an equation derived elsewhere says so [CDS_RISK_POPULATION].
        alert_webhooks: Subscribers' REST-hook URLs that receive each opened or escalated alert as a FHIR
            Communication, from a durable outbox with retries, as JSON, e.g. ``["https://ward.example/hook"]``
            [CDS_ALERT_WEBHOOKS].
        outbox_interval_s: Seconds between the outbox's delivery rounds [CDS_OUTBOX_INTERVAL_S].
        metrics_flush_s: Seconds between writes of each process's engine-call metrics to the database (the
            dashboard's history) [CDS_METRICS_FLUSH_S].
        metrics_retention_days: Days of engine-call history kept; finished days are rolled up into one row per
            day and model [CDS_METRICS_RETENTION_DAYS].
        dicom_port: Port of the DICOM node (C-STORE and C-ECHO SCP); unset: no DICOM node [CDS_DICOM_PORT].
        dicom_ae_title: The node's AE title, which callers must call [CDS_DICOM_AE_TITLE].
        dicom_calling_aes: The calling AE titles (modalities, PACS) allowed to associate, as JSON, e.g.
            ``["CT01", "PACS"]``; ``["*"]`` for any; required with ``CDS_DICOM_PORT`` [CDS_DICOM_CALLING_AES].
        dicom_calling_sites: The consortium site each calling AE title sends for, as JSON, e.g. ``{"CLINIC_A_PACS":
            "clinic-a"}``: a study it sends belongs to that site (its read, its results' destinations, who may see
            it); a calling AE not named sends for this deployment's own site (``CDS_SITE``)
            [CDS_DICOM_CALLING_SITES].
        dicom_settle_s: Seconds without a new instance after which a received study is complete: it is stored
            and one read queued [CDS_DICOM_SETTLE_S].
        dicom_max_associations: Simultaneous DICOM associations [CDS_DICOM_MAX_ASSOCIATIONS].
        dicom_destinations: Where the pre-reads' DICOM results (SR, SEG, captures) and signed reports (SR) are
            sent, from the durable outbox with retries, as JSON: ``[{"name": "pacs", "kind": "dimse", "host":
            "10.0.0.5", "port": 104, "ae_title": "PACS"}, {"name": "vna", "kind": "dicomweb", "url":
            "https://vna.example/dicom-web"}]``. Each takes the results of the sites in its ``sites`` (e.g.
            ``"sites": ["clinic-a"]`` for a member clinic's PACS at the hub); without ``sites``, those of this
            deployment's own site (``CDS_SITE``). A job's results go only to the destinations of the job's site; a
            site with none keeps them here (logged, and the audit event names no destination)
            [CDS_DICOM_DESTINATIONS].
        hl7_destinations: HIS interfaces that receive each pre-read as an HL7 v2.5.1 ORU^R01 over MLLP, from the
            outbox with retries, as JSON: ``[{"name": "his", "host": "10.0.0.9", "port": 2575}]``; each takes the
            pre-reads of the sites in its ``sites``, as DICOM destinations do (none: ``CDS_SITE``'s)
            [CDS_HL7_DESTINATIONS].
        allowed_destinations: Data residency: where this site's patient data may be sent, as JSON, e.g.
            ``["10.0.0.0/8", "pacs.hospital.cn", "*.consortium.cn", "https://vna.hospital.cn/dicom-web"]``: address
            ranges (CIDR) or addresses, host names, ``*.`` domains (any host under them) and http(s) URL prefixes
            (same scheme, host and port, path at or below). Unset: no restriction; set: every outbound destination
            (alert webhooks, DICOM and HL7 destinations, a Triton server) must match one, or the settings are
            refused at load, and a delivery to one outside it is refused (``destination_not_allowed``), never
            retried, and audited (``data.egress.refused``). Host names are matched as written, never resolved;
            loopback is not implicit. Rules: :mod:`cds.residency` [CDS_ALLOWED_DESTINATIONS].
        cors_origins: Browser origins allowed to call the API and DICOMweb from their own pages, as JSON, e.g.
            ``["https://ohif.hospital.example"]`` for an OHIF viewer using cds as its DICOMweb source; empty: none
            [CDS_CORS_ORIGINS].
        timezone: The site's time zone (IANA name): the day a reading belongs to, and so follow-up dates, are this
            zone's [CDS_TIMEZONE].
        site: This deployment's site code; chronic-disease registries are kept per site, and an enrolment that
            names no site is this one's [CDS_SITE].
        site_name: The site's name as other members read it in shared results (default: the site code)
            [CDS_SITE_NAME].
        hub_site: The site member sites refer studies to for reading (a consortium's hub), when a referral names
            none [CDS_HUB_SITE].
        site_keys_dir: This site's key ring for signing the results it shares with consortium members (private
            keys, mode 0700); default ``data_dir/site-keys`` [CDS_SITE_KEYS_DIR].
        consortium_keys_dir: The member sites' published key sets (``*.jwks.json``) whose signed results this site
            verifies and imports; unset: only this site's own [CDS_CONSORTIUM_KEYS_DIR].
        language: Default language of CDS Hooks cards, ``zh-CN`` or ``en``, when a request's ``Accept-Language``
            names neither; unset: Simplified Chinese for a Chinese population, else English [CDS_LANGUAGE].
        backend: Where the risk models and the pre-read's imaging models run: ``onnxruntime`` (in-process) or
            ``triton`` (a Triton Inference Server serving the repository ``cds triton export-repo`` writes)
            [CDS_BACKEND].
        triton_url: ``host:port`` of the Triton server [CDS_TRITON_URL].
        triton_protocol: ``grpc`` or ``http`` [CDS_TRITON_PROTOCOL].
        triton_timeout_s: Per-request timeout to the Triton server [CDS_TRITON_TIMEOUT_S].
    """

    model_config = SettingsConfigDict(env_prefix="CDS_", extra="ignore")

    registry_dir: Path = Field(default=REPO_ROOT / "registry")
    data_dir: Path = Field(default=REPO_ROOT / "data")
    database_url: str | None = None
    dev_mode: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    jwt_issuer: str | None = None
    jwt_audience: str = "cds"
    jwt_jwks_file: Path | None = None
    api_keys_only: bool = False
    max_json_bytes: int = Field(default=1_000_000, ge=1024)
    hooks_clients_file: Path | None = None
    public_url: str | None = None
    max_upload_bytes: int = Field(default=4_000_000_000, ge=1024)
    max_instance_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    job_workers: int = Field(default=1, ge=0, le=16)
    job_lease_s: float = Field(default=300.0, gt=0)
    job_timeout_s: float = Field(default=3600.0, gt=0)
    decode_timeout_s: float = Field(default=60.0, gt=0)
    decode_memory_bytes: int = Field(default=4 << 30, ge=256 << 20)
    decode_workers: int = Field(default=2, ge=0, le=64)
    decode_prestart: bool = True
    audit_key_file: Path | None = None
    audit_checkpoint_dir: Path | None = None
    audit_checkpoint_s: float = Field(default=60.0, gt=0)
    max_pending_jobs: int = Field(default=1000, ge=1)
    preread_model: str = "chest-xray-demo"
    ct_model: str = "ct-organs-demo"
    preread_heatmaps: HeatmapMethod = HeatmapMethod.AUTO
    preread_saliency_grid: int = Field(default=7, ge=0, le=32)
    plausibility_policy: PlausibilityPolicy = PlausibilityPolicy.REFUSE
    plausibility_refuse_below: float = Field(default=0.0, ge=0.0, le=1.0)
    patient_id_system: str = Field(default="urn:cds:dicom-patient-id", min_length=1)
    pathology_model: str = "pathology-demo"
    ecg_model: str = "ecg-rhythm"
    risk_stale_days: dict[str, int] = Field(default_factory=dict)
    risk_population: RiskPopulation = RiskPopulation.CHINA
    language: Language | None = None
    alert_webhooks: list[str] = Field(default_factory=list)
    outbox_interval_s: float = Field(default=1.0, gt=0)
    metrics_flush_s: float = Field(default=10.0, gt=0)
    metrics_retention_days: int = Field(default=400, ge=1)
    dicom_port: int | None = Field(default=None, ge=1, le=65535)
    dicom_ae_title: str = Field(default="CDS", pattern=r"^[ -\[\]-~]{1,16}$")
    dicom_calling_aes: list[str] = Field(default_factory=list)
    dicom_calling_sites: dict[str, str] = Field(default_factory=dict)
    dicom_settle_s: float = Field(default=10.0, gt=0, le=3600)
    dicom_max_associations: int = Field(default=10, ge=1, le=100)
    dicom_destinations: list[DicomDestination] = Field(default_factory=list)
    hl7_destinations: list[Hl7Destination] = Field(default_factory=list)
    allowed_destinations: list[str] | None = None
    cors_origins: list[str] = Field(default_factory=list)
    timezone: str = "Asia/Shanghai"
    site: str = Field(default="default", pattern=SITE_CODE)
    site_name: str | None = Field(default=None, max_length=200)
    hub_site: str | None = Field(default=None, pattern=SITE_CODE)
    site_keys_dir: Path | None = None
    consortium_keys_dir: Path | None = None
    backend: BackendKind = BackendKind.ONNXRUNTIME
    triton_url: str = "127.0.0.1:8001"
    triton_protocol: Literal["grpc", "http"] = "grpc"
    triton_timeout_s: float = Field(default=10.0, gt=0, le=600)

    @property
    def card_language(self) -> Language:
        """The site's default language for cards: the one configured, else the population's."""
        if self.language is not None:
            return self.language
        return Language.ZH if self.risk_population is RiskPopulation.CHINA else Language.EN

    @field_validator("alert_webhooks")
    @classmethod
    def _webhook_urls(cls, value: list[str]) -> list[str]:
        bad = [url for url in value if not url.startswith(("http://", "https://")) or len(url) > 500]
        if bad:
            raise ValueError(f"alert webhooks must be http(s) URLs: {', '.join(bad)[:200]}")
        return value

    @field_validator("allowed_destinations")
    @classmethod
    def _residency_rules(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            residency.AllowedDestinations.parse(value)  # a ValueError names the entry
        return value

    @model_validator(mode="after")
    def _destinations_allowed(self) -> Settings:
        if self.allowed_destinations is not None:
            refused = residency.refused_configured(self, self.allowed_destinations)
            if refused:
                raise ValueError(f"destinations outside CDS_ALLOWED_DESTINATIONS: {'; '.join(refused)[:400]}")
        return self

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        bad = [o for o in value if o == "*" or not o.startswith(("http://", "https://")) or o.count("/") != 2]
        if bad:
            raise ValueError(f"CORS origins are scheme://host[:port], never '*': {', '.join(bad)[:200]}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from None
        return value

    @model_validator(mode="after")
    def _dicom_callers_named(self) -> Settings:
        if self.dicom_port is not None and not self.dicom_calling_aes:
            raise ValueError("CDS_DICOM_PORT needs CDS_DICOM_CALLING_AES: the AE titles allowed to send "
                             '(JSON, e.g. ["CT01"]; ["*"] for any)')
        bad = [ae for ae in [*self.dicom_calling_aes, *self.dicom_calling_sites] if ae != "*" and
               not 0 < len(ae.strip()) <= 16]  # fmt: skip
        if bad:
            raise ValueError(f"calling AE titles are 1-16 characters: {bad[:5]}")
        sites = [site for site in self.dicom_calling_sites.values() if not re.fullmatch(SITE_CODE, site)]
        if sites:
            raise ValueError(f"CDS_DICOM_CALLING_SITES names sites by their codes (like CDS_SITE): {sites[:5]}")
        refused = [ae for ae in self.dicom_calling_sites if "*" not in self.dicom_calling_aes and
                   ae not in self.dicom_calling_aes]  # fmt: skip
        if refused:
            raise ValueError(f"CDS_DICOM_CALLING_SITES names AE titles CDS_DICOM_CALLING_AES refuses: {refused[:5]}")
        return self

    @field_validator("risk_stale_days")
    @classmethod
    def _positive_days(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [name for name, days in value.items() if days < 1]
        if bad:
            raise ValueError(f"staleness limits must be at least 1 day: {', '.join(bad)}")
        return value

    @field_validator("backend")
    @classmethod
    def _served_engine(cls, value: BackendKind) -> BackendKind:
        if value not in SERVICE_BACKENDS:
            raise ValueError(f"the service runs models on {' or '.join(k.value for k in SERVICE_BACKENDS)}, "
                             f"not {value.value}")
        return value

    @property
    def resolved_audit_key_file(self) -> Path:
        """The audit signing key's file, defaulting to one in ``data_dir``."""
        return self.audit_key_file or self.data_dir / "audit-signing-key.pem"

    @property
    def resolved_site_keys_dir(self) -> Path:
        """The site's signing key ring, defaulting to ``data_dir/site-keys``."""
        return self.site_keys_dir or self.data_dir / "site-keys"

    @property
    def resolved_audit_checkpoint_dir(self) -> Path:
        """The checkpoint folder, defaulting to ``data_dir/audit``."""
        return self.audit_checkpoint_dir or self.data_dir / "audit"

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite under ``data_dir``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'cds.db'}"
