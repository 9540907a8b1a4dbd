"""Retention in the governance view: the model page of a version whose artifact retention deleted says so, with
the date and the policy rule, while its ledger row (and recorded SHA-256) stays. In process, simple auth manager."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from charte_ledger import LedgerRows

HTML = {"Accept": "text/html"}


def _record_artifact_deletion(use_case: str, version: int) -> None:
    """The deletion row and audit event retention writes before it unlinks a retired version's artifact."""
    from charter_guardrails.ledger.audit import append_event
    from charter_guardrails.ledger.models_retention import DeletedFile
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.retention.items import path_key

    path = f"models/{use_case}/v{version}.joblib"
    with ledger_session() as session:
        row = DeletedFile(
            use_case=use_case,
            kind="model_artifact",
            path=path,
            path_key=path_key(use_case, path),
            model_version=version,
            size_bytes=10,
            sha256="0" * 64,
            files=1,
            rule="storage.retired_models_days",
            as_of=datetime(2027, 1, 1, tzinfo=UTC),
            deleted_at=datetime(2027, 1, 1, 3, 0, tzinfo=UTC),
            completed_at=datetime(2027, 1, 1, 3, 0, tzinfo=UTC),
        )
        session.add(row)
        append_event(session, actor="charter-retention", action="retention.deleted", subject=row, use_case=use_case)


def test_the_model_page_says_when_retention_deleted_the_artifact(view: Any, ui_ledger: tuple[str, LedgerRows]) -> None:
    _, rows = ui_ledger
    before = view.client.get(f"/modeles/{rows.model_id}", headers=HTML)
    assert before.status_code == 200, before.text[:500]
    assert 'id="artefact-supprime"' not in before.text
    _record_artifact_deletion("waste_tonnage", 3)
    after = view.client.get(f"/modeles/{rows.model_id}", headers=HTML).text
    assert 'id="artefact-supprime"' in after
    assert "storage.retired_models_days" in after
    assert "artefact supprimé le 01/01/2027 03:00 UTC" in after
