"""Integrity tasks for any DAG: register a dataset's signed manifest, verify a file against it,
list what is registered, and relay incident alerts.

``verify_dataset_integrity`` follows the four steps of every guardrail (see ``runtime.py``):
verify, persist (verdict, verification row and, on a mismatch, the incident with its alert
outbox, in one transaction), log, and raise ``AirflowFailException`` on a mismatch, so a
corrupted dataset is not retried. Only the ``CheckResult`` goes to XCom. A missing key or an
unreachable ledger raise ordinary exceptions, which Airflow retries.

Usage in a DAG::

    from charter_airflow.tasks.integrity import verify_dataset_integrity
    verify_dataset_integrity(use_case="citizen_requests", dataset="training")

Every argument is templated (TaskFlow templates its arguments), e.g. ``path="{{ params.path }}"``.
Nothing here imports pandas, Great Expectations or Presidio; library imports happen in task bodies.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.sdk import task
from charter_airflow.runtime import configure_from_airflow, persist_and_gate, run_ids

log = logging.getLogger(__name__)

#: The Airflow SMTP connection used for alert e-mails when it exists.
SMTP_CONN_ID = "smtp_default"


def _target_path(policy: Any, dataset: str, path: str | None) -> Path:
    """The policy's file for ``dataset``, or another delivery at ``path`` inside the data folder."""
    return Path(policy.dataset(dataset).delivery(path))


def verify_dataset_integrity_step(
    *, use_case: str, dataset: str, path: str | None, context: Mapping[str, Any]
) -> dict[str, Any]:
    """Verify ``path`` (default: the policy's file) against the dataset's active signed manifest; persist and gate.

    :param use_case: the policy id.
    :param dataset: the dataset id in the policy.
    :param path: the file to verify; default the dataset's path in the policy.
    :param context: the Airflow context (its run id keys the incident, so a retry doesn't duplicate it).
    :return: the CheckResult as a JSON-safe dict (for XCom).
    """
    from charter_guardrails.checks.integrity.manifest import Outcome
    from charter_guardrails.checks.integrity.verification import (
        ManifestSnapshot,
        active_manifest,
        ensure_dataset_record,
        load_policy,
        record_verification,
        verify_file,
    )
    from charter_guardrails.core.keys import KeyError_
    from charter_guardrails.ledger.store import ledger_session

    configure_from_airflow()
    policy = load_policy(use_case)
    target = _target_path(policy, dataset, path)
    _dag_id, run_id = run_ids(context)
    with ledger_session() as session:
        row = active_manifest(session, use_case, dataset)
        manifest = ManifestSnapshot.of(row) if row is not None else None
    verification = verify_file(target, manifest, use_case=use_case, dataset=dataset)
    if verification.outcome is Outcome.KEY_MISSING:
        raise KeyError_(verification.summary)  # configuration: fix the key, then Airflow's retry succeeds

    def record(session: Any, _check_run: Any, _row: Any) -> None:
        dataset_id = manifest.dataset_id if manifest else ensure_dataset_record(session, policy, dataset, target).id
        record_verification(session, verification, dataset_id=dataset_id, run_id=run_id)

    return persist_and_gate(
        verification.to_check_result(),
        policy=policy,
        context=context,
        incident=verification.incident_draft(run_id),
        extra=record,
    )


@task(task_id="verify_dataset_integrity", multiple_outputs=False)  # one XCom: the CheckResult
def verify_dataset_integrity(*, use_case: str, dataset: str, path: str | None = None, **context: Any) -> dict[str, Any]:
    """Verify a dataset file against its signed manifest; fail without retry and raise an incident on a mismatch.

    :param use_case: the policy id, e.g. ``citizen_requests``.
    :param dataset: the dataset id in the policy, e.g. ``training``.
    :param path: the file to verify (templated); default: the dataset's path in the policy.
    """
    return verify_dataset_integrity_step(use_case=use_case, dataset=dataset, path=path, context=context)


def register_dataset_manifest_step(
    *, use_case: str, dataset: str, path: str | None, context: Mapping[str, Any], chunk_size: int | None = None
) -> dict[str, Any]:
    """Hash, sign and record the dataset's manifest. A re-run on unchanged data keeps the active manifest.

    :return: a small JSON-safe summary (manifest id, root, size, rows); never data values.
    """
    from charter_guardrails.checks.integrity.manifest import build_manifest, sign_manifest
    from charter_guardrails.checks.integrity.verification import active_manifest, load_policy, store_manifest
    from charter_guardrails.core.keys import load_signing_key
    from charter_guardrails.ledger.store import ledger_session

    configure_from_airflow()
    policy = load_policy(use_case)
    target = _target_path(policy, dataset, path)
    _dag_id, run_id = run_ids(context)
    key = load_signing_key()
    document = build_manifest(target, use_case=use_case, dataset=dataset, run_id=run_id, chunk_size=chunk_size)
    with ledger_session() as session:
        current = active_manifest(session, use_case, dataset)
        if (
            current is not None
            and current.merkle_root == document["merkle_root"]
            and current.document.get("location") == document["location"]
        ):
            row, created = current, False
        else:
            row, created = store_manifest(session, sign_manifest(document, key), policy=policy, dataset=dataset), True
        summary = {
            "manifest_id": row.id,
            "dataset": f"{use_case}.{dataset}",
            "file": target.name,
            "merkle_root": row.merkle_root,
            "size_bytes": row.size_bytes,
            "row_count": row.row_count,
            "created": created,
        }
    log.info(
        "manifest #%s of %s.%s: root %s (%s)",
        summary["manifest_id"],
        use_case,
        dataset,
        summary["merkle_root"],
        "registered" if created else "unchanged",
    )
    return summary


@task(task_id="register_dataset_manifest", multiple_outputs=False)
def register_dataset_manifest(
    *, use_case: str, dataset: str, path: str | None = None, chunk_size: int | None = None, **context: Any
) -> dict[str, Any]:
    """Register the signed Merkle manifest of a dataset file in the ledger.

    :param use_case: the policy id.
    :param dataset: the dataset id in the policy.
    :param path: the file (templated); default: the dataset's path in the policy.
    :param chunk_size: bytes per Merkle leaf (default: 8 MiB, smaller for small files).
    """
    return register_dataset_manifest_step(
        use_case=use_case, dataset=dataset, path=path, chunk_size=chunk_size, context=context
    )


@task(task_id="list_registered_datasets")
def list_registered_datasets() -> list[dict[str, Any]]:
    """Every dataset with an active manifest, as keyword arguments for ``verify_dataset_integrity.expand_kwargs``."""
    from charter_guardrails.ledger.models import DatasetRecord, Manifest
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    configure_from_airflow()
    with ledger_session() as session:
        rows = session.execute(
            select(DatasetRecord.use_case, DatasetRecord.name, Manifest.document)
            .join(Manifest, Manifest.dataset_id == DatasetRecord.id)
            .where(Manifest.status == "active")
            .order_by(DatasetRecord.id)
        ).all()
    return [{"use_case": r.use_case, "dataset": r.name, "path": (r.document or {}).get("location")} for r in rows]


class AirflowSmtpSender:
    """Sends alert e-mails through the SMTP provider's hook and an Airflow connection (``smtp_default``)."""

    def __init__(self, conn_id: str = SMTP_CONN_ID, from_email: str | None = None) -> None:
        self.conn_id = conn_id
        self.from_email = from_email

    def send(self, alert: Any) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook
        from charter_guardrails.incidents.messages import IDEMPOTENCY_HEADER, html_body, message_id, subject
        from charter_guardrails.incidents.senders import DEFAULT_FROM, DeliveryError

        try:
            with SmtpHook(smtp_conn_id=self.conn_id) as hook:
                hook.send_email_smtp(
                    to=alert.recipient,
                    subject=subject(alert),
                    html_content=html_body(alert),
                    from_email=self.from_email or hook.from_email or DEFAULT_FROM,
                    custom_headers={
                        "Message-ID": message_id(alert),
                        IDEMPOTENCY_HEADER: alert.idempotency_key,
                        "X-Charter-Incident": str(alert.incident_id),
                        "Content-Language": "fr",
                    },
                )
        except Exception as exc:  # noqa: BLE001 - any failure is one failed attempt; never echo credentials
            raise DeliveryError(f"SMTP via Airflow connection {self.conn_id}: {type(exc).__name__}") from None


def airflow_connection_exists(conn_id: str) -> bool:
    try:
        from airflow.sdk import BaseHook

        BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - "not found" has several exception types across Airflow versions
        return False
    return True


def alert_senders(conn_id: str = SMTP_CONN_ID) -> dict[str, Any]:
    """E-mail through the Airflow SMTP provider when ``conn_id`` exists, else ``CHARTER_SMTP_*``; and the webhook."""
    from charter_guardrails.incidents.senders import default_senders

    senders: dict[str, Any] = dict(default_senders())
    if airflow_connection_exists(conn_id):
        senders["email"] = AirflowSmtpSender(conn_id)
    return senders


@task(task_id="relay_alert_outbox", multiple_outputs=False)
def relay_alert_outbox(*, smtp_conn_id: str = SMTP_CONN_ID) -> dict[str, Any]:
    """Deliver every due outbox alert; failed attempts are rescheduled with backoff in the outbox itself.

    :param smtp_conn_id: the Airflow SMTP connection to use when it exists.
    """
    from charter_guardrails.incidents.relay import relay

    configure_from_airflow()
    report = relay(alert_senders(smtp_conn_id))
    log.info(
        "alert relay: %s due, %s delivered, %s failed, %s dead, unsent channels %s",
        report.claimed,
        report.delivered,
        report.failed,
        report.dead,
        report.unsent_channels,
    )
    return report.to_json_dict()
