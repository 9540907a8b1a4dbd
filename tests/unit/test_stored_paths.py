"""Paths in the ledger are stored relative to their folder (models, reports, data), so that a state restored
from a backup or mounted elsewhere keeps its links: readers resolve them against the current settings, and
rows written before, with absolute paths, are still read."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from charter_guardrails.core.settings import get_settings


def _card_folder(models_dir: Path, version: int) -> Path:
    folder = models_dir / "waste_tonnage" / f"v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("model_card.md", "model_card.html", "ai_label.svg", "ai_label.json"):
        (folder / name).write_text("{}" if name.endswith(".json") else "<svg/>", encoding="utf-8")
    (models_dir / "waste_tonnage" / f"v{version}.joblib").write_bytes(b"model")
    return folder


def _publish(run_id: str, *, artifact: str | None, card: str | None) -> Any:
    from charter_guardrails.decision.model_registry import publish_version, set_model_files
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        version = publish_version(
            session,
            use_case="waste_tonnage",
            run_id=run_id,
            metrics={"mae": 12.0},
            artifact_path=None,
            artifact_sha256=None,
            approved_by="approbateur",
        )
        set_model_files(session, version, artifact_path=artifact, card_path=card, actor="approbateur")
        return version.id


def _transparency_labels() -> int:
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting.charter_report import charter_report, parse_period

    start, end = parse_period(None, None)
    with ledger_session() as session:
        report = charter_report(session, start=start, end=end, chain=None)
    engagement = next(e for e in report["engagements"] if e["id"] == "transparence.4")
    return int(engagement["evidence"]["ai_labels"])


def test_model_files_are_stored_relative_and_found_after_the_state_moves(
    ledger_url: str, charter_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter_guardrails.decision.model_registry import artifact_file, card_file
    from charter_guardrails.ledger.models import ModelVersion
    from charter_guardrails.ledger.store import ledger_session

    models_dir = get_settings().models_dir
    assert models_dir == charter_home / "models"
    folder = _card_folder(models_dir, 1)
    model_id = _publish(
        "r1", artifact=str(models_dir / "waste_tonnage" / "v1.joblib"), card=str(folder / "model_card.html")
    )
    with ledger_session() as session:
        row = session.get(ModelVersion, model_id)
        assert row is not None
        assert (row.card_path, row.artifact_path) == ("waste_tonnage/v1/model_card.html", "waste_tonnage/v1.joblib")
    assert _transparency_labels() == 1

    # The state is restored elsewhere (a backup, another mount): the links follow the settings.
    moved = tmp_path / "restauré"
    shutil.copytree(charter_home, moved)
    shutil.rmtree(charter_home / "models")
    monkeypatch.setenv("CHARTER_HOME", str(moved))
    if ledger_url.startswith("sqlite"):
        monkeypatch.setenv("CHARTER_LEDGER_URL", f"sqlite:///{moved / 'ledger.db'}")
    with ledger_session() as session:
        row = session.get(ModelVersion, model_id)
        assert row is not None
        assert card_file(row) == moved / "models" / "waste_tonnage" / "v1" / "model_card.html"
        assert artifact_file(row) == moved / "models" / "waste_tonnage" / "v1.joblib"
        assert card_file(row).is_file()  # type: ignore[union-attr]
    assert _transparency_labels() == 1


def test_rows_written_with_absolute_paths_are_still_read(ledger_url: str, charter_home: Path) -> None:
    from charter_guardrails.decision.model_registry import artifact_file, card_file
    from charter_guardrails.ledger.models import ModelVersion
    from charter_guardrails.ledger.store import ledger_session

    folder = _card_folder(get_settings().models_dir, 1)
    model_id = _publish("r1", artifact=None, card=None)
    with ledger_session() as session:  # as versions were recorded before: absolute paths
        row = session.get(ModelVersion, model_id)
        assert row is not None
        row.card_path = str(folder / "model_card.html")
        row.artifact_path = str(folder.parent / "v1.joblib")
    with ledger_session() as session:
        row = session.get(ModelVersion, model_id)
        assert row is not None
        assert card_file(row) == folder / "model_card.html"
        assert artifact_file(row) == folder.parent / "v1.joblib"
    assert _transparency_labels() == 1


def test_report_paths_run_reports_and_dataset_locations_are_stored_relative(
    ledger_url: str, charter_home: Path
) -> None:
    from charter_guardrails.core.engagements import engagements_of
    from charter_guardrails.core.results import CheckResult, Verdict
    from charter_guardrails.ledger.models import CheckResultRecord
    from charter_guardrails.ledger.store import (
        ensure_dataset,
        finish_check_run,
        get_or_create_check_run,
        ledger_session,
        record_check_result,
        results_for_run,
    )

    settings = get_settings()
    docs = settings.reports_dir / "data_docs" / "citizen_requests" / "index.html"
    result = CheckResult(
        check="quality",
        verdict=Verdict.PASS,
        engagements=engagements_of("quality"),
        dataset="training",
        summary="Les attentes passent.",
        report_path=str(docs),
    )
    with ledger_session() as session:
        dataset = ensure_dataset(
            session,
            use_case="citizen_requests",
            name="training",
            format="csv",
            location=str(settings.data_dir / "citizen_requests" / "training.csv"),
            personal_data=True,
        )
        outside = ensure_dataset(
            session,
            use_case="citizen_requests",
            name="inference",
            format="csv",
            location="/srv/partage/lot.csv",
            personal_data=True,
        )
        assert (dataset.location, outside.location) == ("citizen_requests/training.csv", "/srv/partage/lot.csv")
        run = get_or_create_check_run(session, use_case="citizen_requests", dag_id="d", run_id="r")
        row = record_check_result(session, run, result)
        assert row.report_path == "data_docs/citizen_requests/index.html"
        first_recorded = row.created_at
        again = record_check_result(session, run, result)  # a retry with the same absolute path: the same verdict
        assert again.created_at == first_recorded
        finish_check_run(
            session,
            run,
            decision="blocked",
            reports={"data_docs": str(docs), "lot": "/srv/partage/lot.csv", "counts": {"rows": 3}},
        )
        assert run.reports == {
            "data_docs": "data_docs/citizen_requests/index.html",
            "lot": "/srv/partage/lot.csv",
            "counts": {"rows": 3},
        }
        assert [r.report_path for r in results_for_run(session, run)] == ["data_docs/citizen_requests/index.html"]
        assert session.query(CheckResultRecord).count() == 1
