"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

from typing import Any


def register(use_case: str, dataset: str, relative: str) -> None:
    from charter_guardrails.cli.main import main as charter
    from charter_guardrails.core.settings import get_settings

    assert (
        charter(["hash", str(get_settings().data_dir / relative), "--dataset", f"{use_case}.{dataset}", "--quiet"]) == 0
    )


def ledger_state(use_case: str) -> dict[str, Any]:
    from charter_guardrails.ledger.models import Approval, CheckRun, Incident, ModelVersion
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as s:
        return {
            "versions": [
                (v.version, v.status, v.approved_by)
                for v in s.scalars(select(ModelVersion).where(ModelVersion.use_case == use_case))
            ],
            "runs": [
                (r.dag_id, r.decision, list(r.blocked_by))
                for r in s.scalars(select(CheckRun).where(CheckRun.use_case == use_case))
            ],
            "incidents": [
                (i.breach_type, i.dataset, i.run_id)
                for i in s.scalars(select(Incident).where(Incident.use_case == use_case))
            ],
            "approvals": [
                (a.decision, a.actor) for a in s.scalars(select(Approval).where(Approval.use_case == use_case))
            ],
        }
