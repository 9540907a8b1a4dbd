"""The tamper campaign's part on what decisions rest on: check runs, their results and PII findings, the alert outbox.

``populate`` adds to the campaign's ledger, through the library's public functions only, a check run with PII
findings and alert outbox rows in each state (delivered, dead, pending). ``TAMPERS`` edits, deletes and inserts
rows of those tables with plain SQL, the way someone with write access to the database would.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, delete, select, update

#: The tables audited through their check run (results, findings) or row by row (the outbox).
DECISION_TABLES = ("check_runs", "check_results", "pii_findings", "alert_outbox")
#: Unique columns that a copied row must not duplicate.
UNIQUE = {"check_runs": "run_id", "check_results": "check", "alert_outbox": "idempotency_key"}


def excluded_columns(table: str) -> frozenset[str]:
    """Columns the chain leaves out of a row's digest (documented on the model): a change there is no tamper."""
    from charter_guardrails.ledger.models import AUDITED_MODELS

    model = AUDITED_MODELS.get(table)
    return frozenset(getattr(model, "__digest_excluded__", frozenset())) if model is not None else frozenset()


class _Inbox:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def send(self, alert: Any) -> None:
        if self.fail:
            raise OSError("destination unreachable")


def populate(policies: dict[str, Any]) -> None:
    """PII findings on a recorded result of a decided run, and outbox rows delivered, dead and pending."""
    from charter_guardrails.checks.privacy.report import ColumnScan, EntityFinding, ScanReport
    from charter_guardrails.checks.privacy.verdict import ColumnVerdict, PersonalDataOutcome, record_findings
    from charter_guardrails.core.results import CheckResult
    from charter_guardrails.incidents.relay import Backoff, relay_once
    from charter_guardrails.ledger.store import (
        finish_check_run,
        get_or_create_check_run,
        ledger_session,
        record_check_result,
    )

    result = CheckResult(
        check="drift",
        verdict="fail",
        engagements=["surete.2"],
        summary="données personnelles interdites dans la colonne commentaire",
        dataset="training",
        metrics={"rows": 5000},
    )
    findings = [
        EntityFinding("FR_PHONE", 37, 0.0074, 0.82, 0.95, ["06 ** ** ** 78"]),
        EntityFinding("EMAIL_ADDRESS", 5, 0.001, 0.9, 0.99, ["j***@example.fr"]),
        EntityFinding("FR_NIR", 2, 0.0004, 0.99, 1.0, ["1 ** ** ** *** *** 42"]),
    ]
    column = ColumnScan(
        name="commentaire", kind="free_text", rows=5000, non_null=4900, distinct=4800, findings=findings
    )
    scan = ScanReport("training", "sampling", 5000, 5000, 0.5, [column], "exhaustive", 0.1)
    found = ["EMAIL_ADDRESS", "FR_NIR", "FR_PHONE"]
    verdict = ColumnVerdict("commentaire", True, ["EMAIL_ADDRESS"], found, ["FR_NIR", "FR_PHONE"], "interdites")
    with ledger_session() as session:
        run = get_or_create_check_run(session, use_case="waste_tonnage", dag_id="refresh", run_id="refresh-9")
        row = record_check_result(session, run, result)
        record_findings(session, row, PersonalDataOutcome(result=result, scan=scan, columns=[verdict]))
        finish_check_run(session, run, decision="blocked", blocked_by=["drift"])
    now = datetime.now(UTC)
    relay_once({"email": _Inbox(fail=False)}, clock=lambda: now, batch_size=3)
    later = now + timedelta(hours=1)
    relay_once({"email": _Inbox(fail=True)}, clock=lambda: later, batch_size=2, backoff=Backoff(max_attempts=1))


def _pick(ledger: Any, table: str, rng: random.Random, where: Callable[[dict[str, Any]], bool] = bool) -> Any:
    rows = [r for r in ledger.rows[table] if where(r)]
    if not rows:
        raise LookupError(f"no row of {table} to tamper with")  # not a trial: drawn again
    return rng.choice(rows)


def verdict_flip(conn: Connection, ledger: Any, rng: random.Random) -> str:
    t = ledger.tables["check_results"]
    row = _pick(ledger, "check_results", rng)
    new = rng.choice(sorted({"pass", "fail", "warn"} - {row["verdict"]}))
    conn.execute(update(t).where(t.c.id == row["id"]).values(verdict=new))
    return f"check_results#{row['id']}.verdict {row['verdict']} -> {new}"


def summary_change(conn: Connection, ledger: Any, rng: random.Random) -> str:
    t = ledger.tables["check_results"]
    row = _pick(ledger, "check_results", rng)
    new = rng.choice(["Aucun problème détecté.", row["summary"] + " ", row["summary"][:-1] or "x"])
    conn.execute(update(t).where(t.c.id == row["id"]).values(summary=new))
    return f"check_results#{row['id']}.summary"


def finding_count(conn: Connection, ledger: Any, rng: random.Random) -> str:
    t = ledger.tables["pii_findings"]
    row = _pick(ledger, "pii_findings", rng)
    new = max(0, row["count"] + rng.choice([-1, 1, -row["count"], 1000]))
    conn.execute(update(t).where(t.c.id == row["id"]).values(count=new))
    return f"pii_findings#{row['id']}.count {row['count']} -> {new}"


def outbox_delivered(conn: Connection, ledger: Any, rng: random.Random) -> str:
    t = ledger.tables["alert_outbox"]
    row = _pick(ledger, "alert_outbox", rng, lambda r: r["status"] != "delivered")
    values: dict[str, Any] = {"status": "delivered"}
    if rng.random() < 0.5:
        values["delivered_at"] = datetime(2026, 3, 2, 9, tzinfo=UTC)
    conn.execute(update(t).where(t.c.id == row["id"]).values(values))
    return f"alert_outbox#{row['id']} ({row['status']}) marked delivered"


def delete_row(table: str) -> Callable[[Connection, Any, random.Random], str]:
    """Delete a row and what depends on it (foreign keys): a run with its results and their findings."""

    def tamper(conn: Connection, ledger: Any, rng: random.Random) -> str:
        tables: dict[str, Table] = ledger.tables
        row = _pick(ledger, table, rng)
        results, findings = tables["check_results"], tables["pii_findings"]
        if table == "check_runs":
            of_run = select(results.c.id).where(results.c.check_run_id == row["id"])
            conn.execute(delete(findings).where(findings.c.check_result_id.in_(of_run)))
            conn.execute(delete(results).where(results.c.check_run_id == row["id"]))
        if table == "check_results":
            conn.execute(delete(findings).where(findings.c.check_result_id == row["id"]))
        t = tables[table]
        conn.execute(delete(t).where(t.c.id == row["id"]))
        return f"{table}#{row['id']} deleted"

    return tamper


TAMPERS: dict[str, Callable[[Connection, Any, random.Random], str]] = {
    "check_results:verdict_flip": verdict_flip,
    "check_results:summary_change": summary_change,
    "pii_findings:count_change": finding_count,
    "alert_outbox:marked_delivered": outbox_delivered,
    **{f"{table}:delete": delete_row(table) for table in DECISION_TABLES},
}
