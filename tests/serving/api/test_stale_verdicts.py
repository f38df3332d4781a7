"""Two tabs (or two readers) on one read: verdicts, reviews and signatures carry the version of the verdicts they
were decided on (``If-Match``), and a save from a view of an older version is refused with 412 ``stale_verdicts``
instead of silently overwriting what the other tab decided; pre-read, slide and ECG reads, SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cds.serving.api.auth import Role
from tests.serving.api.conftest import bearer
from tests.support.seeded_reads import seed_reads

READS = (("preread", Role.RADIOLOGIST, "/v1/preread/{job}/1.7.1/feedback", {"label": "Mass", "verdict": "accepted"}),
         ("pathology", Role.PATHOLOGIST, "/v1/pathology/jobs/{job}/feedback", {"label": "tumour",
                                                                                "verdict": "accepted"}),
         ("ecg", Role.CARDIOLOGIST, "/v1/ecg/jobs/{job}/reviews", {"item": "rhythm", "verdict": "accepted"}))


def test_a_verdict_from_a_stale_tab_is_refused_and_a_current_one_kept(client: TestClient) -> None:
    state = client.app.state.cds  # type: ignore[attr-defined]
    with state.database.session() as session:
        jobs = seed_reads(session, state.settings.data_dir, patient="P-7", study="1.7")
    for kind, role, path, body in READS:
        url, headers = path.format(job=jobs[kind]), bearer(client, role)
        loaded = client.get(url, headers=headers)
        assert loaded.status_code == 200, (kind, loaded.text)
        first_tab = second_tab = loaded.headers["ETag"]  # both tabs open the read
        assert first_tab == '"v0"'  # nothing decided yet
        saved = client.post(url, json=body, headers=headers | {"If-Match": first_tab})
        assert saved.status_code == 201, (kind, saved.text)
        assert saved.headers["ETag"] != first_tab
        stale = client.post(url, json=body, headers=headers | {"If-Match": second_tab})  # the other tab decides
        assert (stale.status_code, stale.json()["code"]) == (412, "stale_verdicts"), kind
        history = client.get(url, headers=headers)
        assert len(history.json()) == 1, kind  # the stale one was not kept
        assert history.headers["ETag"] == saved.headers["ETag"]
        again = client.post(url, json=body, headers=headers | {"If-Match": history.headers["ETag"]})  # reloaded
        assert again.status_code == 201, kind
        signing = path.rsplit("/", 1)[0].format(job=jobs[kind]) + "/signatures"
        refused = client.post(signing, json={"impression": "ok", "signer_name": "Dr Test"},
                              headers=headers | {"If-Match": saved.headers["ETag"]})  # signed from the older view
        assert (refused.status_code, refused.json()["code"]) == (412, "stale_verdicts"), kind
        odd = client.post(url, json=body, headers=headers | {"If-Match": "yesterday"})
        assert (odd.status_code, odd.json()["code"]) == (412, "invalid_if_match"), kind
        assert client.post(url, json=body, headers=headers).status_code == 201  # an API client that does not ask
