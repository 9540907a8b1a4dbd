"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest


@contextlib.contextmanager
def smtp_catcher(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """A local SMTP server (aiosmtpd) behind Airflow's ``smtp_default`` connection; the messages it received."""
    from aiosmtpd.controller import Controller

    received: list[bytes] = []

    class Catcher:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope.content)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # E-mail goes through the Airflow SMTP provider's hook and the `smtp_default` connection.
    monkeypatch.delenv("CHARTER_SMTP_HOST", raising=False)
    extra = {"disable_ssl": True, "disable_tls": True, "from_email": "alertes-charte@ampmetropole.example"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": {**extra, "retry_limit": 0}}),
    )
    controller = Controller(Catcher(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield received
    finally:
        controller.stop()


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
