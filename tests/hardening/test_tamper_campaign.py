"""Tamper campaign on the ledger: at least 500 seeded trials over SQLite and PostgreSQL.

A ledger is populated through the library's public functions only: signed manifests registered and
superseded (integrity), incidents raised, acknowledged and resolved (``incidents``), approvals,
overrides, a kill switch pulled and released, model versions published (``registry``), check runs with
their results and PII findings, alerts delivered, dead and pending (``support_tamper_rows``).
Then each trial tampers with it *behind the library*, with plain SQL on its own connection, the way
someone with write access to the database would: edit, delete, insert, reorder or truncate audit
events, signed heads, incidents, manifests, approvals or model versions, up to rewriting the chain and
re-signing it with a key of one's own; edit (a verdict flipped, a summary changed, a finding's count
changed, an alert marked delivered), delete or insert check runs, results, findings and outbox rows.
Every other trial tampers with the latter (``DECISION_TAMPERS``), so that at full size each backend
runs at least 500 of them. ``charter audit verify --json`` then runs with the public key
only (the private key is deleted and not in the environment) and must exit 1 with the chain reported
broken. Detection must be 100 %.

A tamper that changes nothing the ledger reads back (the same value written again, a JSON object with
its keys in another order) is not a trial: it is drawn again.

Cost: SQLite trials copy one populated database file; PostgreSQL trials run in a transaction on one
connection (the verification joins it through a SAVEPOINT) and roll back.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Table, create_engine, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from tests.hardening import support_tamper_rows as decision_rows
from tests.hardening.support_inputs import full_scale, run_cli

SEED = 20260917
#: Trials per backend; ``make hardening`` runs more of them.
TRIALS = {"sqlite": 1500, "postgresql": 1000} if full_scale() else {"sqlite": 300, "postgresql": 220}
AUDITED = ("incidents", "manifests", "approvals", "model_versions")
#: Dependent rows an attacker must remove first to delete an audited row (foreign keys).
DEPENDENTS = {"incidents": ("alert_outbox", "incident_id"), "manifests": ("manifest_verifications", "manifest_id")}
#: Unique columns that a copied or swapped row must not duplicate, and a value of each type no row holds.
UNIQUE = {"incidents": "key", "audit_events": "hash", "model_versions": "version", **decision_rows.UNIQUE}
SPARE = {"key": "swap-in-progress", "hash": "f" * 64, "version": -1}


#: Tables whose rows a trial reads back and may tamper with.
TABLES = ("audit_events", "audit_checkpoints", *AUDITED, *decision_rows.DECISION_TABLES)


def test_campaign_plan_meets_the_issue() -> None:
    assert sum(TRIALS.values()) >= 500
    assert min(TRIALS.values()) >= 200
    if full_scale():  # every other trial tampers with runs, results, findings or outbox rows
        assert min(TRIALS.values()) // 2 >= 500


# ------------------------------------------------------------------------------------------------
# a ledger populated through the public functions


#: The Art. 33 decision recorded before an incident is resolved.
_NO_RISK = "Faux positif ou données restaurées avant toute utilisation : aucun risque pour les personnes."


def _populate(policies: dict[str, Any], data_dir: Path) -> None:
    citizen, waste = policies["citizen_requests"], policies["waste_tonnage"]
    _populate_chain(citizen, waste, data_dir)
    decision_rows.populate(policies)


def _populate_chain(citizen: Any, waste: Any, data_dir: Path) -> None:
    from charter_guardrails.checks.integrity.manifest import build_manifest, sign_manifest
    from charter_guardrails.checks.integrity.manifest_registry import store_manifest
    from charter_guardrails.core.results import CheckResult
    from charter_guardrails.decision import model_registry as registry
    from charter_guardrails.incidents.decisions import record_art33
    from charter_guardrails.incidents.incident import (
        BreachType,
        IncidentDraft,
        IncidentStatus,
        raise_incident,
        transition_incident,
    )
    from charter_guardrails.ledger.store import (
        finish_check_run,
        get_or_create_check_run,
        ledger_session,
        record_check_result,
    )

    data_dir.mkdir(parents=True, exist_ok=True)
    for version in range(2):  # the second registration supersedes the first
        for policy, dataset in ((citizen, "training"), (citizen, "inference"), (waste, "training")):
            path = data_dir / f"{policy.id}_{dataset}.csv"
            path.write_text("a;b\n" + "".join(f"{i};{i * (version + 2)}\n" for i in range(50)), encoding="utf-8")
            signed = sign_manifest(
                build_manifest(path, use_case=policy.id, dataset=dataset, run_id=f"register-{version}", chunk_size=64)
            )
            with ledger_session() as session:
                store_manifest(session, signed, policy=policy, dataset=dataset)
    incident_ids = []
    for i, (policy, breach, dataset) in enumerate(
        [
            (citizen, BreachType.INTEGRITY, "training"),
            (citizen, BreachType.CONFIDENTIALITY, "inference"),
            (waste, BreachType.INTEGRITY, "training"),
            (citizen, BreachType.GDPR_COMPLIANCE, "training"),
        ]
    ):
        draft = IncidentDraft(
            breach_type=breach,
            severity="critical" if i % 2 == 0 else "high",
            dataset=dataset,
            run_id=f"run-{i}",
            title=f"Incident {i}",
            nature="altération",
            facts={"chunk": i, "rows": [i, i + 1]},
            likely_consequences="modèle entraîné sur des données altérées",
            measures_taken=["rafraîchissement bloqué"],
            approx_records=1000 + i,
        )
        with ledger_session() as session:
            incident, _ = raise_incident(session, policy, draft)
            incident_ids.append(incident.id)
    with ledger_session() as session:
        transition_incident(
            session, incident_ids[0], IncidentStatus.ACKNOWLEDGED, actor="rssi", comment="pris en charge"
        )
        record_art33(session, incident_ids[1], "not_required", actor="dpo", rationale=_NO_RISK)
        transition_incident(session, incident_ids[1], IncidentStatus.RESOLVED, actor="dpo", comment="faux positif")
    with ledger_session() as session:
        record_art33(session, incident_ids[0], "not_required", actor="rssi", rationale=_NO_RISK)
        transition_incident(
            session, incident_ids[0], IncidentStatus.RESOLVED, actor="rssi", comment="données restaurées"
        )
    with ledger_session() as session:
        registry.record_approval(
            session, use_case="citizen_requests", run_id="refresh-1", decision="approved", actor="claire.martin"
        )
        registry.record_approval(
            session,
            use_case="citizen_requests",
            run_id="refresh-2",
            decision="override",
            actor="karim.haddad",
            justification="dérive saisonnière attendue",
            overridden_checks=["drift", "quality"],
        )
        registry.record_approval(
            session,
            use_case="waste_tonnage",
            run_id="refresh-3",
            decision="rejected",
            actor="claire.martin",
            justification="gain insuffisant",
        )
    for n in (1, 2):
        with ledger_session() as session:
            registry.publish_version(
                session,
                use_case="citizen_requests",
                run_id=f"refresh-{n}",
                metrics={"f1_macro": 0.8 + n / 100},
                artifact_path=f"/models/v{n}.joblib",
                artifact_sha256=f"{n:064x}",
                approved_by="claire.martin",
            )
    with ledger_session() as session:
        registry.suspend(session, "citizen_requests", actor="karim.haddad", reason="plainte d'un usager")
    with ledger_session() as session:
        registry.resume(session, "citizen_requests", actor="karim.haddad", reason="plainte instruite")
    with ledger_session() as session:
        run = get_or_create_check_run(session, use_case="citizen_requests", dag_id="refresh", run_id="refresh-2")
        for check, verdict in (("integrity", "pass"), ("quality", "fail"), ("drift", "warn")):
            record_check_result(
                session,
                run,
                CheckResult(
                    check=check,
                    verdict=verdict,
                    engagements=["surete.2"],
                    summary=check,
                    dataset="training",
                    metrics={"rows": 50},
                ),
            )
        finish_check_run(session, run, decision="needs_approval", blocked_by=["quality"])


# ------------------------------------------------------------------------------------------------
# tampering, with plain SQL


def _tables() -> dict[str, Table]:
    from charter_guardrails.ledger.models import Base

    return dict(Base.metadata.tables)


def _pk(table: Table) -> str:
    return next(iter(table.primary_key.columns)).name


def _rows(conn: Connection, table: Table) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(table).order_by(table.primary_key.columns.values()[0])).mappings()]


def _dump(conn: Connection) -> str:
    """What the ledger reads back, canonical: a tamper that leaves it equal changed nothing."""
    tables = _tables()
    dump = {}
    for name in TABLES:
        excluded = decision_rows.excluded_columns(name)  # delivery bookkeeping: outside the chain by design
        dump[name] = [{k: v for k, v in row.items() if k not in excluded} for row in _rows(conn, tables[name])]
    return json.dumps(dump, sort_keys=True, default=str)


def _mutate_str(value: str | None, rng: random.Random) -> str:
    if not value:
        return rng.choice(["x", "mallory", "0"])
    i = rng.randrange(len(value))
    choice = rng.randrange(4)
    if choice == 0:
        return value[:i] + rng.choice("0123456789abcdefxyz") + value[i + 1 :]
    if choice == 1:
        return value + rng.choice([" ", "0", "é"])
    if choice == 2:
        return value[:-1] if len(value) > 1 else value + "x"
    return value.upper() if value != value.upper() else value.lower() + "x"


def _mutate_json(value: Any, rng: random.Random) -> Any:
    if rng.random() < 0.12:
        return rng.choice([[], "tampered", 7, {"forged": True}])  # not even the right JSON type
    if isinstance(value, dict) and value:
        out = dict(value)
        key = rng.choice(sorted(out))
        action = rng.randrange(3)
        if action == 0:
            del out[key]
        elif action == 1:
            out[key] = (
                _mutate_json(out[key], rng) if isinstance(out[key], (dict, list)) else _mutate_value(out[key], rng)
            )
        else:
            out[f"forged_{rng.randrange(100)}"] = "x"
        return out
    if isinstance(value, list):
        return [*value, "forged"] if rng.random() < 0.5 or not value else value[:-1]
    return {"forged": value}


def _mutate_value(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice([-1, 1, 1000])
    if isinstance(value, float):
        return value + rng.choice([-0.01, 0.5])
    if isinstance(value, datetime):
        return value + timedelta(microseconds=rng.choice([1, 1000, 3_600_000_000, -86_400_000_000]))
    if isinstance(value, (dict, list)):
        return _mutate_json(value, rng)
    if value is None:
        return rng.choice(["mallory", 1])
    return _mutate_str(str(value), rng)


def _value_for(table: Table, column: str, value: Any, rng: random.Random) -> Any:
    """A changed value that the column's type accepts."""
    new = _mutate_value(value, rng)
    python_type = _python_type(table, column)
    if python_type is int and not isinstance(new, int):
        new = rng.randrange(1, 10**6)
    if python_type is str and not isinstance(new, str):
        new = str(new)
    if python_type is datetime and not isinstance(new, datetime):
        new = datetime(2026, 1, 1, tzinfo=UTC)
    if python_type is bool:
        new = not bool(value)
    return new


def _python_type(table: Table, column: str) -> type | None:
    try:
        return table.c[column].type.python_type  # type: ignore[no-any-return]
    except NotImplementedError:
        return None


def _hex_flip(value: str, rng: random.Random) -> str:
    i = rng.randrange(len(value))
    return value[:i] + ("0" if value[i] != "0" else "1") + value[i + 1 :]


class Ledger:
    """The tables and the original rows of the populated ledger, to draw targets from."""

    def __init__(self, conn: Connection) -> None:
        self.tables = _tables()
        self.rows = {name: _rows(conn, self.tables[name]) for name in TABLES}
        self.events = self.rows["audit_events"]
        self.head = self.events[-1]["seq"]
        self.draws = 0


def _delete_with_dependents(conn: Connection, ledger: Ledger, table: str, ident: Any) -> None:
    if table in DEPENDENTS:
        child, column = DEPENDENTS[table]
        conn.execute(delete(ledger.tables[child]).where(ledger.tables[child].c[column] == ident))
    t = ledger.tables[table]
    conn.execute(delete(t).where(t.c[_pk(t)] == ident))


# --- audit events and signed heads


def event_edit(conn: Connection, ledger: Ledger, rng: random.Random) -> str:
    ev = rng.choice(ledger.events)
    column = rng.choice(
        ["ts", "actor", "action", "subject_type", "subject_id", "use_case", "run_id", "payload", "prev_hash", "hash"]
    )
    t = ledger.tables["audit_events"]
    new = _hex_flip(ev[column], rng) if column in ("prev_hash", "hash") else _value_for(t, column, ev[column], rng)
    conn.execute(update(t).where(t.c.seq == ev["seq"]).values({column: new}))
    return f"event {ev['seq']}.{column}"


def event_delete(conn: Connection, ledger: Ledger, rng: random.Random) -> str:
    seq = rng.choice(ledger.events)["seq"]
    conn.execute(delete(ledger.tables["audit_events"]).where(ledger.tables["audit_events"].c.seq == seq))
    with_head = rng.random() < 0.5
    if with_head:
        conn.execute(delete(ledger.tables["audit_checkpoints"]).where(ledger.tables["audit_checkpoints"].c.seq == seq))
    return f"event {seq}" + (" and its signed head" if with_head else "")


def event_insert(conn: Connection, ledger: Ledger, rng: random.Random) -> str:
    """A forged event, well chained (its hash computed as the library would), at the head or in the middle."""
    from charter_guardrails.core.keys import sign
    from charter_guardrails.ledger.audit import checkpoint_message, event_hash
    from charter_guardrails.ledger.models import AuditEvent
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    t, cp = ledger.tables["audit_events"], ledger.tables["audit_checkpoints"]
    template = rng.choice(ledger.events)
    at = rng.choice([ledger.head + 1, rng.randrange(2, ledger.head + 1)])
    if at <= ledger.head:  # make room: shift the later events (and heads) up by one, highest first
        for seq in range(ledger.head, at - 1, -1):
            conn.execute(update(t).where(t.c.seq == seq).values(seq=seq + 1))
            conn.execute(update(cp).where(cp.c.seq == seq).values(seq=seq + 1))
    prev = next(e["hash"] for e in ledger.events if e["seq"] == at - 1)
    forged = {
        **template,
        "seq": at,
        "actor": "mallory",
        "action": "approval.approved",
        "prev_hash": prev,
        "ts": datetime.now(UTC),
        "payload": {"justification": "forged"},
    }
    forged["hash"] = event_hash(AuditEvent(**forged))
    conn.execute(insert(t).values(forged))
    signer = rng.choice(
        ["none", "copied", "own_key"]
    )  # the head of the forged event: none, a genuine one copied, or signed
    if signer == "copied":
        conn.execute(
            insert(cp).values({**ledger.rows["audit_checkpoints"][-1], "seq": at, "head_hash": forged["hash"]})
        )
    elif signer == "own_key":
        signature, kid = sign(checkpoint_message(at, forged["hash"]), Ed25519PrivateKey.generate())
        conn.execute(
            insert(cp).values(
                seq=at, head_hash=forged["hash"], signature=signature, key_id=kid, signed_at=datetime.now(UTC)
            )
        )
    return f"forged event at {at}, head signed: {signer}"


def event_reorder(conn: Connection, ledger: Ledger, rng: random.Random) -> str:
    a, b = sorted(rng.sample([e["seq"] for e in ledger.events], 2))
    t = ledger.tables["audit_events"]
    conn.execute(update(t).where(t.c.seq == a).values(seq=-1))
    conn.execute(update(t).where(t.c.seq == b).values(seq=a))
    conn.execute(update(t).where(t.c.seq == -1).values(seq=b))
    with_heads = rng.random() < 0.5
    if with_heads:
        cp = ledger.tables["audit_checkpoints"]
        conn.execute(update(cp).where(cp.c.seq == a).values(seq=-1))
        conn.execute(update(cp).where(cp.c.seq == b).values(seq=a))
        conn.execute(update(cp).where(cp.c.seq == -1).values(seq=b))
    return f"events {a} and {b} swapped" + (" with their heads" if with_heads else "")


def event_truncate(conn: Connection, ledger: Ledger, rng: random.Random) -> str:
    k = rng.randrange(1, ledger.head + 1)
    conn.execute(delete(ledger.tables["audit_events"]).where(ledger.tables["audit_events"].c.seq >= k))
    with_heads = rng.random() < 0.7
    if with_heads:
        conn.execute(delete(ledger.tables["audit_checkpoints"]).where(ledger.tables["audit_checkpoints"].c.seq >= k))
    return f"events from {k} cut" + (" with their heads" if with_heads else "")


def chain_rewrite(conn: Connection, ledger: Ledger, rng: random.Random) -> str:
    """The strongest attacker without the private key: edit an event, recompute every later hash, re-sign every
    later head with a key of one's own (under its own key id, or claiming the trusted one)."""
    from charter_guardrails.core.keys import sign
    from charter_guardrails.ledger.audit import checkpoint_message, event_hash
    from charter_guardrails.ledger.models import AuditEvent
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    t, cp = ledger.tables["audit_events"], ledger.tables["audit_checkpoints"]
    start = rng.randrange(1, ledger.head + 1)
    other = Ed25519PrivateKey.generate()
    claim_trusted = rng.random() < 0.5
    trusted_id = ledger.rows["audit_checkpoints"][0]["key_id"]
    prev = next((e["hash"] for e in ledger.events if e["seq"] == start - 1), "0" * 64)
    for ev in [e for e in ledger.events if e["seq"] >= start]:
        row = {**ev, "prev_hash": prev}
        if ev["seq"] == start:
            row["actor"] = "mallory"
        row["hash"] = event_hash(AuditEvent(**row))
        conn.execute(update(t).where(t.c.seq == ev["seq"]).values(actor=row["actor"], prev_hash=prev, hash=row["hash"]))
        signature, kid = sign(checkpoint_message(ev["seq"], row["hash"]), other)
        conn.execute(
            update(cp)
            .where(cp.c.seq == ev["seq"])
            .values(head_hash=row["hash"], signature=signature, key_id=trusted_id if claim_trusted else kid)
        )
        prev = row["hash"]
    return f"chain rewritten from {start}, re-signed by another key" + (
        " claiming the trusted key id" if claim_trusted else ""
    )


def head_edit(conn: Connection, ledger: Ledger, rng: random.Random) -> str:
    head = rng.choice(ledger.rows["audit_checkpoints"])
    column = rng.choice(["head_hash", "signature", "key_id"])
    cp = ledger.tables["audit_checkpoints"]
    if column == "signature":
        other = rng.choice(ledger.rows["audit_checkpoints"])["signature"]  # a genuine signature, of another head
        new = other if other != head["signature"] else _hex_flip(head["signature"], rng)
    else:
        new = _hex_flip(head[column], rng)
    conn.execute(update(cp).where(cp.c.seq == head["seq"]).values({column: new}))
    return f"signed head {head['seq']}.{column}"


def head_delete(conn: Connection, ledger: Ledger, rng: random.Random) -> str:
    seq = rng.choice(ledger.rows["audit_checkpoints"])["seq"]
    conn.execute(delete(ledger.tables["audit_checkpoints"]).where(ledger.tables["audit_checkpoints"].c.seq == seq))
    return f"signed head {seq} deleted"


# --- audited rows: incidents, manifests, approvals, model versions


def row_edit(table: str) -> Callable[[Connection, Ledger, random.Random], str]:
    def tamper(conn: Connection, ledger: Ledger, rng: random.Random) -> str:
        t = ledger.tables[table]
        row = rng.choice(ledger.rows[table])
        excluded = decision_rows.excluded_columns(table)
        column = rng.choice([c.name for c in t.columns if c.name != _pk(t) and c.name not in excluded])
        new = _value_for(t, column, row[column], rng)
        if column == UNIQUE.get(table):
            new = row[column] + 1000 if isinstance(row[column], int) else f"{row[column]}#forged"
        conn.execute(update(t).where(t.c[_pk(t)] == row[_pk(t)]).values({column: new}))
        return f"{table}#{row[_pk(t)]}.{column}"

    return tamper


def row_delete(table: str) -> Callable[[Connection, Ledger, random.Random], str]:
    def tamper(conn: Connection, ledger: Ledger, rng: random.Random) -> str:
        row = rng.choice(ledger.rows[table])
        _delete_with_dependents(conn, ledger, table, row["id"])
        return f"{table}#{row['id']} deleted"

    return tamper


def row_insert(table: str) -> Callable[[Connection, Ledger, random.Random], str]:
    def tamper(conn: Connection, ledger: Ledger, rng: random.Random) -> str:
        t = ledger.tables[table]
        row = dict(rng.choice(ledger.rows[table]))
        new_id = int(conn.execute(select(func.max(t.c.id))).scalar_one()) + 1
        row["id"] = new_id
        if table in UNIQUE:
            value = row[UNIQUE[table]]
            row[UNIQUE[table]] = value + 1000 if isinstance(value, int) else f"{value}:forged"
        if rng.random() < 0.5:  # an exact copy under a new id, or a copy with one field changed
            excluded = decision_rows.excluded_columns(table)
            column = rng.choice(
                [
                    c.name
                    for c in t.columns
                    if c.name not in ("id", UNIQUE.get(table)) and not c.foreign_keys and c.name not in excluded
                ]
            )
            row[column] = _value_for(t, column, row[column], rng)
        conn.execute(insert(t).values(row))
        return f"{table}#{new_id} inserted"

    return tamper


def row_reorder(table: str) -> Callable[[Connection, Ledger, random.Random], str]:
    def tamper(conn: Connection, ledger: Ledger, rng: random.Random) -> str:
        t = ledger.tables[table]
        a, b = rng.sample(ledger.rows[table], 2)
        content = [c.name for c in t.columns if c.name != "id"]
        if table in UNIQUE:
            conn.execute(update(t).where(t.c.id == a["id"]).values({UNIQUE[table]: SPARE[UNIQUE[table]]}))
        conn.execute(update(t).where(t.c.id == b["id"]).values({c: a[c] for c in content}))
        conn.execute(update(t).where(t.c.id == a["id"]).values({c: b[c] for c in content}))
        return f"{table}#{a['id']} and #{b['id']} swapped"

    return tamper


def row_truncate(table: str) -> Callable[[Connection, Ledger, random.Random], str]:
    def tamper(conn: Connection, ledger: Ledger, rng: random.Random) -> str:
        keep = rng.randrange(len(ledger.rows[table]))  # delete every row after the first ``keep``
        for row in ledger.rows[table][keep:]:
            _delete_with_dependents(conn, ledger, table, row["id"])
        return f"{table} cut after {keep} row(s)"

    return tamper


#: Tampers with check runs, their results and PII findings, and the alert outbox: every other trial.
DECISION_TAMPERS: dict[str, Callable[[Connection, Ledger, random.Random], str]] = {
    **decision_rows.TAMPERS,
    **{f"{table}:edit": row_edit(table) for table in decision_rows.DECISION_TABLES},
    **{f"{table}:insert": row_insert(table) for table in decision_rows.DECISION_TABLES},
}
TAMPERS: dict[str, Callable[[Connection, Ledger, random.Random], str]] = {
    **DECISION_TAMPERS,
    "audit_events:edit": event_edit,
    "audit_events:delete": event_delete,
    "audit_events:insert": event_insert,
    "audit_events:reorder": event_reorder,
    "audit_events:truncate": event_truncate,
    "audit_events:rewrite_resign": chain_rewrite,
    "audit_checkpoints:edit": head_edit,
    "audit_checkpoints:delete": head_delete,
    **{
        f"{table}:{op}": make(table)
        for table in AUDITED
        for op, make in (
            ("edit", row_edit),
            ("delete", row_delete),
            ("insert", row_insert),
            ("reorder", row_reorder),
            ("truncate", row_truncate),
        )
    },
}


def _check_populated(ledger: Ledger) -> None:
    """The pristine ledger holds what the decision tampers need: findings, and alerts in every state."""
    assert len(ledger.rows["check_runs"]) >= 2
    assert len(ledger.rows["pii_findings"]) >= 3
    assert {"delivered", "dead", "pending"} <= {r["status"] for r in ledger.rows["alert_outbox"]}


def _tamper(conn: Connection, ledger: Ledger, rng: random.Random, original: str) -> tuple[str, str]:
    """Draw and apply one tamper that changes what the ledger reads back; (class, what was done).

    Every other draw is from :data:`DECISION_TAMPERS`, the others from the rest of :data:`TAMPERS`; within each,
    the classes take turns (every class is drawn at the CI size), a refused draw is redrawn at random.
    """
    ledger.draws += 1
    pool = sorted(DECISION_TAMPERS if ledger.draws % 2 else set(TAMPERS) - set(DECISION_TAMPERS))
    for attempt in range(50):
        name = pool[(ledger.draws // 2) % len(pool)] if attempt == 0 else rng.choice(pool)
        savepoint = conn.begin_nested()
        try:
            what = TAMPERS[name](conn, ledger, rng)
        except Exception:  # noqa: BLE001 - a draw the schema refuses (a constraint): not a trial, draw again
            savepoint.rollback()
            continue
        if _dump(conn) == original:
            savepoint.rollback()
            continue
        savepoint.commit()
        return name, what
    raise AssertionError("no effective tamper drawn in 50 attempts")


# ------------------------------------------------------------------------------------------------
# the campaign


def _verify() -> tuple[int, dict[str, Any] | None, str]:
    code, out, err = run_cli(["audit", "verify", "--json"])
    try:
        return code, json.loads(out), err
    except ValueError:
        return code, None, err


@contextmanager
def _joined(conn: Connection) -> Iterator[Session]:
    with Session(bind=conn, join_transaction_mode="create_savepoint") as session:
        yield session


def _public_key_only(home: Path) -> None:
    """Delete the private key: verification must not need it."""
    import os

    from charter_guardrails.core.errors import KeyError_
    from charter_guardrails.core.keys import load_signing_key

    (home / "keys" / "signing_ed25519.pem").unlink()
    assert "CHARTER_SIGNING_KEY" not in os.environ
    with pytest.raises(KeyError_):
        load_signing_key()


def _run_trials(
    n: int, backend: str, trial: Callable[[random.Random], tuple[str, str, int, dict[str, Any] | None, str]]
) -> dict[str, Any]:
    rng = random.Random(f"{SEED}:{backend}")
    tally: Counter[str] = Counter()
    missed: list[str] = []
    started = time.perf_counter()
    for _ in range(n):
        name, what, code, report, err = trial(rng)
        tally[name] += 1
        if report is None or "Traceback" in err:
            missed.append(f"{name} ({what}): verify did not answer cleanly (exit {code}): {err[-800:]}")
        elif code != 1 or report["ok"]:
            missed.append(f"{name} ({what}): NOT detected (exit {code})")
    seconds = time.perf_counter() - started
    decision = sum(tally[name] for name in DECISION_TAMPERS)
    summary = (
        f"{backend}: {n} trials, {n - len(missed)} detected ({100 * (n - len(missed)) / n:.1f} %),"
        f" {decision} of them on check runs, results, findings or outbox rows, {len(tally)} tamper classes, "
        f"{seconds:.1f} s"
    )
    print(summary)
    return {"tally": tally, "missed": missed, "summary": summary}


def _check(outcome: dict[str, Any], n: int) -> None:
    assert not outcome["missed"], f"{len(outcome['missed'])} of {n} tampers undetected:\n" + "\n".join(
        outcome["missed"][:30]
    )
    assert set(outcome["tally"]) == set(TAMPERS), f"classes never drawn: {sorted(set(TAMPERS) - set(outcome['tally']))}"
    assert sum(outcome["tally"][name] for name in DECISION_TAMPERS) >= n // 2


def test_tamper_campaign(
    ledger_url: str,
    charter_home: Path,
    policies: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    record_property: Any,
) -> None:
    from charter_guardrails.ledger import db

    _populate(policies, tmp_path / "data")
    db.reset_caches()
    _public_key_only(charter_home)
    code, report, err = _verify()
    assert code == 0, (report, err)
    assert report, (report, err)
    assert report["ok"], (report, err)
    events = report["events"]
    assert events >= 30, events

    if ledger_url.startswith("sqlite"):
        populated = Path(ledger_url.removeprefix("sqlite:///"))
        with create_engine(ledger_url).connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        pristine = tmp_path / "pristine.db"
        shutil.copyfile(populated, pristine)
        trial_db = tmp_path / "trial.db"
        trial_url = f"sqlite:///{trial_db}"
        monkeypatch.setenv("CHARTER_LEDGER_URL", trial_url)
        with create_engine(f"sqlite:///{pristine}").connect() as conn:
            ledger, original = Ledger(conn), _dump(conn)
            _check_populated(ledger)

        def trial(rng: random.Random) -> tuple[str, str, int, dict[str, Any] | None, str]:
            db.reset_caches()
            for suffix in ("-wal", "-shm"):
                Path(f"{trial_db}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(pristine, trial_db)
            engine = create_engine(trial_url)
            with engine.begin() as conn:
                name, what = _tamper(conn, ledger, rng, original)
            engine.dispose()
            return (name, what, *_verify())

        outcome = _run_trials(TRIALS["sqlite"], "sqlite", trial)
        _check(outcome, TRIALS["sqlite"])
        # and through the installed command, in its own process, on a few of them
        rng = random.Random(SEED)
        for _ in range(3):
            trial(rng)
            proc = subprocess.run(
                [str(Path(sys.executable).with_name("charter")), "audit", "verify"], capture_output=True, text=True
            )
            assert proc.returncode == 1
            assert "audit chain BROKEN: first broken event" in proc.stdout
            assert "Traceback" not in proc.stderr
    else:
        engine = create_engine(ledger_url)
        with engine.connect() as conn:
            ledger, original = Ledger(conn), _dump(conn)
            _check_populated(ledger)
            conn.rollback()

            def trial(rng: random.Random) -> tuple[str, str, int, dict[str, Any] | None, str]:
                transaction = conn.begin()
                try:
                    name, what = _tamper(conn, ledger, rng, original)
                    return (name, what, *_verify())
                finally:
                    transaction.rollback()

            with monkeypatch.context() as patch:  # the verification joins the trial's transaction
                patch.setattr("charter_guardrails.ledger.store.ledger_session", lambda url=None: _joined(conn))
                outcome = _run_trials(TRIALS["postgresql"], "postgresql", trial)
            with conn.begin():  # one more, committed, for the installed command in its own process
                _tamper(conn, ledger, random.Random(SEED), original)
        engine.dispose()
        _check(outcome, TRIALS["postgresql"])
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("charter")), "audit", "verify"], capture_output=True, text=True
        )
        assert proc.returncode == 1, proc
        assert "audit chain BROKEN" in proc.stdout, proc
        assert "Traceback" not in proc.stderr, proc
    record_property("tamper_campaign", outcome["summary"])


def test_text_that_is_not_a_timestamp_is_reported_not_a_crash(
    charter_home: Path, policies: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite stores timestamps as text: a tamperer can write anything there. The verifier says so and exits 1."""
    from charter_guardrails.ledger import db

    url = f"sqlite:///{charter_home / 'ledger.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)
    _populate(policies, tmp_path / "data")
    db.reset_caches()
    _public_key_only(charter_home)
    for table, column, seq in (
        ("audit_events", "ts", 3),
        ("audit_checkpoints", "signed_at", 5),
        ("incidents", "detected_at", 1),
    ):
        with create_engine(url).begin() as conn:
            key = "seq" if table.startswith("audit") else "id"
            # table, column and key come from the literal tuple above, never from input
            conn.execute(text(f"UPDATE {table} SET {column} = 'not a date' WHERE {key} = {seq}"))  # noqa: S608
        db.reset_caches()
        code, report, err = _verify()
        context = (table, code, report, err[-2000:])
        assert code == 1, context
        assert report is not None, context
        assert not report["ok"], context
        assert "Traceback" not in err, context
