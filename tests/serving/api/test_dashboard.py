"""The workspace's new routes over HTTP: ``GET /v1/dashboard`` (models and card metrics, engine metrics kept in the
database across restarts, refusals per day and reason, agreement), ``GET /v1/risk/panel/sample``, and the pathology
list and region render; contents, roles (401/403), patient scope and audit.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from cds.models.card import CardContent, Evaluation, LabelMetrics, StructureMetrics, render_card
from cds.models.registry import ModelRegistry
from cds.services.risk import sample_bundle
from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.serving.api.routes.dashboard import bucket_quantile
from cds.settings import REPO_ROOT, Settings
from cds.store.audit import AuditEvent, append_event
from cds.store.dashboard import card_headlines, read_card_headlines
from cds.store.tables import AuditEventRow, FindingFeedbackRow
from tests.pipelines.pathology.slides import tumour_layout
from tests.serving.api.conftest import bearer
from tests.support.jobs import wait_for_job
from training.data.he_slide import write_slide

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def idle(tmp_path: Path) -> Iterator[TestClient]:
    """The service with no job worker: only what a test writes is in the store."""
    with TestClient(create_app(Settings(dev_mode=True, data_dir=tmp_path / "data", job_workers=0))) as client:
        yield client


def test_every_shipped_model_card_gives_its_split_headlines() -> None:
    registry = ModelRegistry.from_directory(REPO_ROOT / "registry")
    cards = sorted((REPO_ROOT / "model_cards").glob("*.md"))
    assert {spec.model_card.resolve() for spec in registry} <= {card.resolve() for card in cards}
    for card in cards:
        headlines = read_card_headlines(card)
        assert len(headlines) >= 2, card.name  # at least a validation (or training) split and a test split
        assert any(h.split.startswith("test") for h in headlines), card.name
        for headline in headlines:
            assert headline.n > 0 and headline.value is not None and 0.0 <= headline.value <= 1.0, (card, headline)
            assert (headline.metric, headline.unit) in {("macro AUC", "cases"), ("mean Dice", "volumes")}
    pima = read_card_headlines(REPO_ROOT / "model_cards" / "pima-diabetes-lr-1.0.0.md")
    assert [(h.split, h.n, h.value) for h in pima] == [("training (5-fold out-of-fold)", 200, 0.8298),
                                                       ("test (Pima.te)", 332, 0.8652)]
    assert read_card_headlines(REPO_ROOT / "model_cards" / "no-such-card.md") == []


def test_the_parser_reads_what_the_card_writer_writes() -> None:
    spec = ModelRegistry.from_directory(REPO_ROOT / "registry").get("lesion-demo")
    label = LabelMetrics(n=50, prevalence=0.5, auc=0.8125, auc_ci95=(0.7, 0.9), threshold=0.5, sensitivity=0.8,
                         specificity=0.7)  # fmt: skip
    one_class = label.model_copy(update={"auc": None, "auc_ci95": None})
    structure = StructureMetrics(n=3, dice=0.75, volume_ml=10.0, volume_error_ml=0.5, volume_abs_error_ml=1.0)
    evaluation = Evaluation(splits={"validation": {"lesion": label}, "test": {"lesion": one_class}},
                            segmentation={"test": {"liver": structure}})  # fmt: skip
    text = render_card(spec, evaluation, CardContent(data_statement="d", limitations=["l"], reproduce="r"))
    assert [(h.split, h.n, h.unit, h.metric, h.value) for h in card_headlines(text)] == [
        ("validation", 50, "cases", "macro AUC", 0.8125), ("test", 50, "cases", "macro AUC", None),
        ("test", 3, "volumes", "mean Dice", 0.75)]


def test_bucket_quantiles_interpolate_within_the_bucket() -> None:
    inf = float("inf")
    assert bucket_quantile(0.5, [(1.0, 0.0), (2.0, 0.0), (inf, 0.0)]) is None
    assert bucket_quantile(0.5, [(1.0, 2.0), (2.0, 4.0), (inf, 4.0)]) == 1.0  # rank 2 ends the first bucket
    assert bucket_quantile(0.75, [(1.0, 2.0), (2.0, 4.0), (inf, 4.0)]) == 1.5  # halfway through (1, 2]
    assert bucket_quantile(0.25, [(0.1, 4.0), (inf, 4.0)]) == pytest.approx(0.025)  # the first bucket starts at 0
    assert bucket_quantile(0.99, [(1.0, 1.0), (inf, 10.0)]) == 1.0  # in +Inf: the highest finite bound


def _event(client: TestClient, when: dt.datetime, action: str, outcome: str, **detail: str) -> None:
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        append_event(session, AuditEvent(actor="worker", role="", action=action, resource="x", outcome=outcome,
                                         detail=detail), now=when)  # fmt: skip


def _verdict(client: TestClient, job: str, label: str, verdict: str, model: str = "chest-xray-demo:2.0.0") -> None:
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        session.add(FindingFeedbackRow(job_id=job, uid="1.2.3", label=label, verdict=verdict, model=model,
                                       actor="dr", created_at=NOW.replace(tzinfo=None)))  # fmt: skip


def test_dashboard_reports_models_engine_metrics_refusals_and_agreement(idle: TestClient) -> None:
    state = idle.app.state.cds  # type: ignore[attr-defined]
    chest = state.registry.get("chest-xray-demo")
    for items, seconds in ((4, 0.02), (4, 0.03), (8, 0.2)):
        state.metrics.observe_batch(chest, items, seconds)
    state.metrics.count_scored("pce", "scored")
    state.metrics.count_scored("pce", "scored")
    yesterday, long_ago = NOW - dt.timedelta(days=1), NOW - dt.timedelta(days=40)
    _event(idle, NOW, "imaging.preread", "refused", reason="implausible_image")
    _event(idle, NOW, "imaging.preread", "refused", reason="implausible_image")
    _event(idle, yesterday, "imaging.preread", "refused", reason="wrong_modality")
    _event(idle, yesterday, "job.failed", "error", kind="pathology", code="truncated_file",
           error="truncated_file: cut.tif: ends early")
    _event(idle, yesterday, "job.failed", "error", kind="risk_file", code="OSError", error="OSError: disk full")
    _event(idle, long_ago, "imaging.preread", "refused", reason="implausible_image")  # outside the window
    _event(idle, NOW, "imaging.preread", "success")  # not a refusal
    _verdict(idle, "j1", "Effusion", "rejected")
    _verdict(idle, "j1", "Effusion", "accepted")  # the newest verdict is the current one
    _verdict(idle, "j1", "Cardiomegaly", "rejected")
    _verdict(idle, "j2", "Effusion", "accepted")
    _verdict(idle, "j3", "liver", "accepted", model="ct-organs-demo:1.0.0")

    answer = idle.get("/v1/dashboard?days=7", headers=bearer(idle, Role.ML_ENGINEER, subject="ml-1"))
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert [m["key"] for m in data["models"]] == [s.key for s in state.registry]
    by_key = {m["key"]: m for m in data["models"]}
    assert by_key["chest-xray-demo:2.0.0"]["serves"] == ["radiograph pre-read"]
    assert by_key["chest-xray-plausibility:2.0.0"]["serves"] == ["plausibility gate of the radiograph pre-read"]
    assert by_key["pima-diabetes-lr:1.0.0"]["serves"] == ["risk scoring"]
    card_test = next(h for h in read_card_headlines(state.registry.get("chest-xray-demo").model_card)
                     if h.split == "test")  # the dashboard shows what the card says
    assert {"split": "test", "n": 1000, "unit": "cases", "metric": "macro AUC", "value": card_test.value} in \
        by_key["chest-xray-demo:2.0.0"]["card_metrics"]
    (engine,) = [e for e in data["engine"] if e["model"] == "chest-xray-demo:2.0.0"]
    assert (engine["calls"], engine["items"], engine["mean_batch"]) == (3, 16, pytest.approx(16 / 3))
    assert engine["mean_ms"] == pytest.approx(250 / 3)
    assert 10.0 < engine["p50_ms"] <= 50.0 and 100.0 < engine["p95_ms"] <= 250.0  # within their buckets
    assert {"method": "pce", "outcome": "scored", "count": 2} in data["methods"]
    assert "interpolated within the buckets" in data["percentiles"]

    day, before = NOW.date().isoformat(), yesterday.date().isoformat()
    assert data["since"] == (NOW - dt.timedelta(days=6)).date().isoformat() and data["days"] == 7
    assert sorted((r["day"], r["source"], r["kind"], r["reason"], r["count"]) for r in data["refusals"]) == sorted([
        (day, "image_refused", "preread", "implausible_image", 2),
        (before, "image_refused", "preread", "wrong_modality", 1),
        (before, "job_failed", "pathology", "truncated_file", 1),
        (before, "job_failed", "risk_file", "OSError", 1)])

    assert (data["agreement"]["accepted"], data["agreement"]["rejected"]) == (3, 1)
    assert data["agreement"]["rate"] == pytest.approx(0.75)
    models = {a["model"]: a["rate"] for a in data["agreement_by_model"]}
    assert models == {"chest-xray-demo:2.0.0": pytest.approx(2 / 3), "ct-organs-demo:1.0.0": 1.0}
    labels = {(a["model"], a["label"]): (a["accepted"], a["rejected"]) for a in data["agreement_by_label"]}
    assert labels[("chest-xray-demo:2.0.0", "Effusion")] == (2, 0)
    assert labels[("chest-xray-demo:2.0.0", "Cardiomegaly")] == (0, 1)

    with state.database.session() as session:
        reads = session.query(AuditEventRow).filter(AuditEventRow.action == "dashboard.read").all()
    assert [(r.actor, r.outcome) for r in reads] == [("ml-1", "success")]


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_engine_metrics_survive_a_restart_per_model_version(dialect: str, request: pytest.FixtureRequest,
                                                            tmp_path: Path) -> None:  # fmt: skip
    url = request.getfixturevalue("postgres_url") if dialect == "postgresql" else None
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", database_url=url, job_workers=0)
    with TestClient(create_app(settings)) as first:  # calls counted, never read: flushed at shutdown
        state = first.app.state.cds  # type: ignore[attr-defined]
        chest, lesion = state.registry.get("chest-xray-demo"), state.registry.get("lesion-demo")
        for items, seconds in ((4, 0.02), (2, 0.04)):
            state.metrics.observe_batch(chest, items, seconds)
        state.metrics.observe_batch(lesion, 1, 0.003)
        state.metrics.count_scored("pce", "scored")
    with TestClient(create_app(settings)) as second:  # a new process: nothing in its Prometheus registry
        second.app.state.cds.metrics.observe_batch(chest, 8, 0.2)  # type: ignore[attr-defined]
        data = second.get("/v1/dashboard", headers=bearer(second, Role.ML_ENGINEER)).json()
        again = second.get("/v1/dashboard", headers=bearer(second, Role.ML_ENGINEER)).json()
    engine = {e["model"]: e for e in data["engine"]}
    assert set(engine) == {"chest-xray-demo:2.0.0", "lesion-demo:1.1.0"}  # name:version
    chest_stats = engine["chest-xray-demo:2.0.0"]
    assert (chest_stats["calls"], chest_stats["items"]) == (3, 14)  # two before the restart, one after
    assert chest_stats["mean_ms"] == pytest.approx(260 / 3)
    assert 10.0 < chest_stats["p50_ms"] <= 50.0 and 100.0 < chest_stats["p95_ms"] <= 250.0
    assert (engine["lesion-demo:1.1.0"]["calls"], engine["lesion-demo:1.1.0"]["items"]) == (1, 1)
    assert data["methods"] == [{"method": "pce", "outcome": "scored", "count": 1}]
    assert again["engine"] == data["engine"]  # a read flushes, but counts nothing twice


def test_dashboard_roles_and_an_empty_store(idle: TestClient) -> None:
    assert idle.get("/v1/dashboard").status_code == 401
    for role in (Role.RADIOLOGIST, Role.PATHOLOGIST, Role.CLINICIAN):
        refused = idle.get("/v1/dashboard", headers=bearer(idle, role))
        assert refused.status_code == 403 and refused.json()["code"] == "role_required"
    empty = idle.get("/v1/dashboard", headers=bearer(idle, Role.ADMIN)).json()
    assert empty["refusals"] == [] and empty["agreement"] == {"model": "", "label": "", "accepted": 0,
                                                              "rejected": 0, "rate": None}  # fmt: skip
    assert idle.get("/v1/dashboard?days=0", headers=bearer(idle, Role.ADMIN)).status_code == 422


def test_the_sample_patient_merges_the_fhir_samples(idle: TestClient, tmp_path: Path) -> None:
    assert idle.get("/v1/risk/panel/sample").status_code == 401
    assert idle.get("/v1/risk/panel/sample", headers=bearer(idle, Role.RADIOLOGIST)).status_code == 403
    headers = bearer(idle, Role.CLINICIAN)
    bundle = idle.get("/v1/risk/panel/sample", headers=headers).json()
    keys = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]]
    assert len(keys) == len(set(keys)) and ("Patient", "p1") in keys and ("MedicationRequest", "amlodipine") in keys
    panel = idle.post("/v1/risk/panel", json=bundle, headers=headers).json()
    topics = {t["topic"]: t for t in panel["topics"]}
    assert topics["kidney"]["result"] is not None and [m["field"] for m in topics["cardiovascular"]["missing"]] == [
        "diabetes"]  # the medication list says treated; nothing says whether the patient has diabetes
    with pytest.raises(LookupError) as missing:
        sample_bundle(tmp_path)
    assert missing.value.code == "sample_not_found"  # type: ignore[attr-defined]


def _png(content: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(content)) as image:
        return image.size


def test_pathology_list_and_region_render(tmp_path: Path) -> None:
    slide = write_slide(tmp_path / "slide.tif", 1536, 1024, seed=8, mpp=0.5, tile=256, factor=2,
                        layout=tumour_layout(1536, 1024))  # fmt: skip
    with TestClient(create_app(Settings(dev_mode=True, data_dir=tmp_path / "data"))) as client:
        mine = bearer(client, Role.PATHOLOGIST, subject="dr-path")
        queued = client.post("/v1/pathology/jobs", params={"filename": "slide.tif", "subject": "Patient/7"},
                             content=slide.path.read_bytes(), headers=mine)  # fmt: skip
        job = queued.json()["job_id"]
        assert wait_for_job(client, f"/v1/pathology/jobs/{job}", mine)["state"] == "done"

        page = client.get("/v1/pathology/jobs", headers=mine).json()
        (item,) = page["items"]
        assert (item["id"], item["file"], item["subject"], item["status"], item["positive"]) == (
            job, "slide.tif", "Patient/7", "scored", True)
        assert 0 < item["tumour_area_fraction"] < 1 and item["threshold"] == pytest.approx(0.490073)
        other = bearer(client, Role.PATHOLOGIST, subject="dr-other")
        assert client.get("/v1/pathology/jobs", headers=other).json()["total"] == 0  # their own reads only
        assert client.get("/v1/pathology/jobs", headers=bearer(client, Role.ADMIN)).json()["total"] == 1
        scoped = bearer(client, Role.PATHOLOGIST, subject="dr-path", patient="Patient/8")
        assert client.get("/v1/pathology/jobs", headers=scoped).json()["items"] == []
        assert client.get("/v1/pathology/jobs", headers=bearer(client, Role.CLINICIAN)).status_code == 403

        region = f"/v1/pathology/jobs/{job}/render/region.png"
        whole = client.get(region, headers=mine)
        assert whole.status_code == 200 and _png(whole.content) == (512, 341)
        assert int(whole.headers["x-slide-level"]) >= 1  # read from a reduced level, not level 0
        close = client.get(region, params={"x": 300, "y": 200, "width": 256, "height": 256}, headers=mine)
        assert _png(close.content) == (256, 256) and close.headers["x-slide-level"] == "0"  # never upsampled
        edge = client.get(region, params={"x": 1400, "y": 900, "width": 512, "height": 512, "size": 64},
                          headers=mine)  # fmt: skip
        assert _png(edge.content) == (64, 58)  # clipped to the slide's 136 x 124 level-0 pixels, aspect kept
        outside = client.get(region, params={"x": 2000}, headers=mine)
        assert outside.status_code == 422 and outside.json()["code"] == "invalid_region"
        assert client.get(region, headers=scoped).status_code == 403
        assert client.get(f"/v1/pathology/jobs/{'0' * 8}-0000-0000-0000-{'0' * 12}/render/region.png",
                          headers=mine).status_code == 404  # fmt: skip
        with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
            renders = session.query(AuditEventRow).filter(AuditEventRow.action == "pathology.viewer.render").all()
            lists = session.query(AuditEventRow).filter(AuditEventRow.action == "pathology.jobs.read").count()
        # three zooms of one slide in one session: one view
        assert len(renders) == 1 and all(r.model.startswith("pathology-demo:") for r in renders) and lists == 4
