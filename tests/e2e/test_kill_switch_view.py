"""The kill switch from the governance view, end to end: ``op`` suspends the production model of
``citizen_requests`` in Chromium on a real ``airflow api-server``, the suspension's Asset event is in Airflow's
metadata database, and the inference DAG refuses the next batch (``kill_switch`` fails, the batch is not passed
on); a viewer gets 403.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.support import ledger_state, register
from tests.ui import charte_server
from tests.ui.charte_server import api_server, browser_login

USE_CASE = "citizen_requests"
PREFIX = "/charte"
REASON = "Signalement de la médiation : réponses incohérentes envoyées aux usagers."
SUSPENSION_URI = f"charter://{USE_CASE}/model/suspended"
CHROMIUM = os.environ.get("CHARTER_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, as the UI tier launches it; the test fails (never skips) when it is missing."""
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: run `make ui-deps` (apt-get install chromium)"
    )
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        try:
            yield instance
        finally:
            instance.close()


def _production_model_id() -> int:
    """A published version of citizen_requests, so that the inference DAG has a model to guard."""
    from charter_guardrails.decision.model_registry import publish_version
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        version = publish_version(
            session,
            use_case=USE_CASE,
            run_id="seed",
            metrics={},
            artifact_path=None,
            artifact_sha256=None,
            approved_by="claire",
        )
        session.flush()
        return int(version.id)


def _asset_events(uri: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent).join(AssetModel, AssetModel.id == AssetEvent.asset_id).where(AssetModel.uri == uri)
        )
        return [dict(row.extra or {}) for row in rows]


def _states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def _inference_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags"))
    assert not bag.import_errors
    return bag.get_dag(f"{USE_CASE}_inference_guardrails")


def _suspend_in_the_browser(server: charte_server.ApiServer, chromium: Any, model_id: int) -> None:
    page = browser_login(chromium, server.base_url, "op")
    page.goto(f"{server.base_url}{PREFIX}/modeles/{model_id}")
    page.locator("#motif-suspendre").fill(REASON)
    page.locator("#suspendre").click()
    confirmation = page.locator("#confirmation")
    confirmation.wait_for()
    assert "Modèle suspendu" in confirmation.inner_text()
    assert "oui, par op" in page.locator("body").inner_text()
    assert page.locator("#reprendre").is_visible()


def test_op_suspends_in_the_view_and_the_inference_dag_refuses_the_next_batch(
    e2e_home: Path, airflow_db: Path, chromium: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id = _production_model_id()
    events_before = _asset_events(SUSPENSION_URI)  # the session's Airflow database is shared by the tier's tests
    register(USE_CASE, "inference", "citizen_requests/inference_batch.csv")
    monkeypatch.setitem(charte_server.USERS, "op", ("op", "op-charte-2026"))
    env = {"CHARTER_HOME": str(e2e_home), "CHARTER_LEDGER_URL": os.environ["CHARTER_LEDGER_URL"]}
    with api_server(airflow_db, env, migrate=False) as server:
        viewer = {"Authorization": f"Bearer {server.token('viewer')}"}
        with httpx.Client(base_url=server.base_url + PREFIX, timeout=60) as client:
            api = client.post(f"/api/models/{USE_CASE}/suspend", json={"reason": REASON}, headers=viewer)
            assert api.status_code == 403
            form = client.post(f"/modeles/cas/{USE_CASE}/suspendre", data={"reason": REASON}, headers=viewer)
            assert form.status_code == 403
        assert ledger_state(USE_CASE)["approvals"] == []
        _suspend_in_the_browser(server, chromium, model_id)

    assert ledger_state(USE_CASE)["approvals"] == [("suspend", "op")]
    assert _asset_events(SUSPENSION_URI) == [*events_before, {"use_case": USE_CASE, "version": 1}]

    # The next batch: the kill switch fails, no guardrail runs, the batch is not passed on.
    states = _states(_inference_dag().test())
    assert states["kill_switch"] == "failed"
    assert all(
        states[t] == "upstream_failed"
        for t in ("verify_integrity", "scan_personal_data", "validate_quality", "check_drift")
    )
    assert states["route_batch"] == "failed"
    assert not (e2e_home / "data" / USE_CASE / "accepted").exists()
    runs = [r for r in ledger_state(USE_CASE)["runs"] if r[0] == f"{USE_CASE}_inference_guardrails"]
    assert runs == [(f"{USE_CASE}_inference_guardrails", "quarantined", ["kill_switch"])]
