"""`make bench-audit`: verifying the audit chain at scale, full and incremental, with its baselines.

Builds a ledger of ``BENCH_EVENTS`` events (default 1,000,000; ``make bench-audit-smoke``: 20,000) on SQLite
(``BENCH_DB=postgresql``: a throw-away database on the server of ``CHARTER_TEST_PG_ADMIN``), written in bulk:
rows chained, hashed and signed exactly as ``append_event`` writes them (one event in ``SUBJECT_EVERY`` creates
an approval and carries its row digest; with ``BENCH_CHECK_RUNS=1``, the default, every other event records a
check result of its run, one run per ten events, two PII findings on each personal-data result, and carries the
run's composite digest as ``record_check_result`` does; ``BENCH_CHECK_RUNS=0`` leaves those events without
subject or rows, as before check runs were audited), inserted in batches rather than appended one by one,
plus the anchor file. Then, each in its own process (peak RSS is that process's ``ru_maxrss``, from ``os.wait4``):

* plain read: every event and its signed head streamed and counted, nothing checked: the floor of any verification;
* the verification as it was before checkpoints (ORM objects, a dict of every hash and of every subject's last
  event), on ``BENCH_BASELINE_EVENTS`` events (default ``min(BENCH_EVENTS, 100000)``) and extrapolated linearly
  to ``BENCH_EVENTS``: it is linear in time and memory, and at 1,000,000 events it would need gigabytes;
* ``charter audit verify --full --json`` (target: peak RSS ≤ 256 MiB), which records a signed verification;
* ``BENCH_APPEND`` events appended with ``append_event``, then ``charter audit verify --json``, incremental
  (target: its verification ≤ 1 s, as the command reports it; the process's wall time, start-up included, is
  printed beside it);
* the view's audit page, ``GET /audit`` through FastAPI's TestClient on the governance app with the reader
  check stubbed (after ``BENCH_APPEND`` more events: the page verifies them and renders; target ≤ 1 s);
* the charter report's chain section, ``charter_document.chain_section`` (after ``BENCH_APPEND`` more events;
  target ≤ 1 s).

Prints the times, ratios and peak RSS, ``os.getloadavg()`` and PASS/FAIL per target. Exits 1 when a chain
does not verify, and on a missed target with ``BENCH_STRICT=1``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

BIN = Path(sys.executable).parent
SUBJECT_EVERY = 100
BATCH = 5000
TARGET_RSS_MIB = 256
TARGET_SECONDS = 1.0
PG_ADMIN = os.environ.get("CHARTER_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
CHECKS = ("integrity", "quality", "personal_data", "drift", "declaration", "proportionality", "performance")
CHECK_RUNS = os.environ.get("BENCH_CHECK_RUNS", "1") == "1"


def _keyed(model: Any, row: dict[str, Any]) -> dict[Any, Any]:
    """A row keyed by column, as ``mapping_digest`` reads it."""
    table = model.__table__
    return {table.c[name]: value for name, value in row.items()}


class Runs:
    """The check runs of the bulk ledger, their results and findings, and each run's digest as it grows."""

    def __init__(self) -> None:
        self.key: str | None = None
        self.ids = {"check_runs": 0, "check_results": 0, "pii_findings": 0}
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in self.ids}
        self.digest: Any = None

    def _add(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        self.ids[table] += 1
        row = {"id": self.ids[table], **row}
        self.rows[table].append(row)
        return row

    def record(self, seq: int, ts: datetime, check: str) -> tuple[int, dict[str, Any]]:
        """A result of ``check`` in the run of event ``seq``; (run id, what its event records of the run)."""
        from charter_guardrails.ledger.audit_rows import RunDigest
        from charter_guardrails.ledger.models import CheckResultRecord, CheckRun, PiiFinding

        key = f"run-{seq // 10}"
        if key != self.key:
            self.key = key
            run = {"use_case": "citizen_requests", "dag_id": "refresh", "run_id": key, "started_at": ts}
            run |= {"finished_at": None, "decision": None, "blocked_by": [], "reports": {}}
            self.digest = RunDigest(_keyed(CheckRun, self._add("check_runs", run)))
        result = {"check_run_id": self.ids["check_runs"], "check": check, "dataset": f"d{seq % 10}"}
        result |= {"verdict": "pass", "severity": "info", "engagements": ["surete.2"], "summary": f"{check}: ok"}
        result |= {"message_id": None, "message_params": None, "metrics": {"rows": 1000 + seq % 97}}
        result |= {"evidence": {}, "report_path": None, "created_at": ts}
        result_row = self._add("check_results", result)
        self.digest.add_result(_keyed(CheckResultRecord, result_row))
        for entity in ("FR_PHONE", "EMAIL_ADDRESS") if check == "personal_data" else ():
            finding = {"check_result_id": result_row["id"], "column": "commentaire", "entity_type": entity}
            finding |= {"count": 3 + seq % 5, "share": 0.003, "mean_score": 0.85, "max_score": 0.97}
            finding |= {"masked_examples": ["06 ** ** ** 78"], "allowed": False}
            self.digest.add_finding(_keyed(PiiFinding, self._add("pii_findings", finding)))
        return self.ids["check_runs"], self.digest.state()

    def flush(self, conn: Any) -> None:
        from charter_guardrails.ledger.models import CheckResultRecord, CheckRun, PiiFinding
        from sqlalchemy import insert

        for name, model in (
            ("check_runs", CheckRun),
            ("check_results", CheckResultRecord),
            ("pii_findings", PiiFinding),
        ):
            if self.rows[name]:
                conn.execute(insert(model.__table__), self.rows[name])
            self.rows[name] = []


# ------------------------------------------------------------------------------------------------
# building a ledger in bulk


def _event_rows(
    seq: int, prev: str, approval_id: int, runs: Runs | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One event as ``append_event`` would store it, and the approval it creates (every SUBJECT_EVERY-th)."""
    from charter_guardrails.ledger.audit import event_hash, mapping_digest
    from charter_guardrails.ledger.models import Approval

    ts = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seq, microseconds=seq % 997)
    approval = None
    event: dict[str, Any] = {"seq": seq, "ts": ts, "use_case": "citizen_requests", "run_id": f"run-{seq // 10}"}
    if seq % SUBJECT_EVERY == 0:
        approval = {
            "id": approval_id,
            "use_case": "citizen_requests",
            "run_id": f"run-{seq // 10}",
            "decision": "approved",
            "actor": "claire.martin",
            "justification": None,
            "overridden_checks": [],
            "decided_at": ts,
        }
        table = Approval.__table__
        digest = mapping_digest(Approval, {table.c[name]: value for name, value in approval.items()})
        event |= {"actor": "claire.martin", "action": "approval.approved", "payload": {"row_digest": digest}}
        event |= {"subject_type": "approvals", "subject_id": str(approval_id)}
    else:
        check = CHECKS[seq % len(CHECKS)]
        payload = {"check": check, "verdict": "pass", "dataset": "training", "metrics": {"rows": 1000 + seq % 97}}
        event |= {"actor": "charter-guardrails", "action": "check.recorded", "payload": payload}
        event |= {"subject_type": None, "subject_id": None}
        if runs is not None:
            run_id, state = runs.record(seq, ts, check)
            event |= {"subject_type": "check_runs", "subject_id": str(run_id), "payload": payload | state}
    event["prev_hash"] = prev
    event["hash"] = event_hash(SimpleNamespace(**event))
    return event, approval


def build_ledger(url: str, events: int, anchor: Path) -> float:
    """``events`` events chained and signed, inserted in batches; the anchor file names the last. Seconds taken."""
    from charter_guardrails.core import keys
    from charter_guardrails.ledger.audit import GENESIS, checkpoint_message, write_anchor
    from charter_guardrails.ledger.db import get_engine, migrate
    from charter_guardrails.ledger.models import Approval, AuditCheckpoint, AuditEvent
    from sqlalchemy import insert

    began = time.perf_counter()
    migrate(url)
    engine = get_engine(url)
    signing = keys.load_signing_key()
    kid = keys.key_id(signing.public_key())
    prev, approval_id, signature = GENESIS, 0, ""
    runs = Runs() if CHECK_RUNS else None
    for low in range(1, events + 1, BATCH):
        rows, heads, approvals = [], [], []
        for seq in range(low, min(low + BATCH, events + 1)):
            approval_id += seq % SUBJECT_EVERY == 0
            event, approval = _event_rows(seq, prev, approval_id, runs)
            signature = base64.b64encode(signing.sign(checkpoint_message(seq, event["hash"]))).decode("ascii")
            rows.append(event)
            heads.append({"seq": seq, "head_hash": event["hash"], "signature": signature, "key_id": kid})
            heads[-1]["signed_at"] = event["ts"]
            if approval:
                approvals.append(approval)
            prev = event["hash"]
        with engine.begin() as conn:
            if approvals:
                conn.execute(insert(Approval.__table__), approvals)
            if runs is not None:
                runs.flush(conn)
            conn.execute(insert(AuditEvent.__table__), rows)
            conn.execute(insert(AuditCheckpoint.__table__), heads)
    write_anchor(anchor, {"seq": events, "hash": prev, "signature": signature, "key_id": kid})
    return time.perf_counter() - began


def append(count: int) -> None:
    from charter_guardrails.ledger.audit import append_event
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        for i in range(count):
            append_event(session, actor="bench", action="check.recorded", payload={"check": "quality", "i": i})


# ------------------------------------------------------------------------------------------------
# what each child process measures (``bench_audit.py --child NAME``), printed as one JSON line


def child_plain() -> dict[str, Any]:
    """Every event with its signed head, streamed and counted: the floor of any verification."""
    from charter_guardrails.ledger.models import AuditCheckpoint, AuditEvent
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    events, heads = AuditEvent.__table__, AuditCheckpoint.__table__
    stmt = (
        select(*events.c, heads.c.signature, heads.c.key_id)
        .select_from(events.outerjoin(heads, heads.c.seq == events.c.seq))
        .order_by(events.c.seq)
    )
    began, rows = time.perf_counter(), 0
    with ledger_session() as session:
        for _row in session.execute(stmt, execution_options={"yield_per": 2000}):
            rows += 1
    return {"seconds": time.perf_counter() - began, "rows": rows, "ok": rows > 0}


def child_old() -> dict[str, Any]:
    """The verification as it was before checkpoints: every event and head as ORM objects, dicts of them all."""
    from charter_guardrails.core import keys
    from charter_guardrails.ledger.audit import GENESIS, checkpoint_message, event_hash, row_digest
    from charter_guardrails.ledger.models import AUDITED_MODELS, AuditCheckpoint, AuditEvent
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    public_keys = keys.load_trusted_public_keys()
    began, problems = time.perf_counter(), 0
    with ledger_session() as session:
        hashes: dict[int, str] = {}
        last_subject: dict[tuple[str, str], Any] = {}
        expected, prev = 1, GENESIS
        for ev in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
            problems += ev.seq != expected or ev.prev_hash != prev or event_hash(ev) != ev.hash
            hashes[ev.seq] = ev.hash
            if ev.subject_type and ev.subject_id:
                last_subject[(ev.subject_type, ev.subject_id)] = ev
            expected, prev = ev.seq + 1, ev.hash
        checkpoints = list(session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)))
        for cp in checkpoints:
            key = public_keys.get(cp.key_id)
            problems += key is None or not keys.verify_signature(
                checkpoint_message(cp.seq, cp.head_hash), cp.signature, key
            )
            problems += hashes.get(cp.seq) != cp.head_hash
        for table in ("manifests", "incidents", "approvals", "model_versions"):  # what it audited
            model = AUDITED_MODELS[table]
            for row in session.scalars(select(model)):
                ev = last_subject.get((table, str(row.id)))  # type: ignore[attr-defined]
                problems += ev is None or ev.payload.get("row_digest") != row_digest(row)
    return {"seconds": time.perf_counter() - began, "rows": len(hashes), "ok": problems == 0}


def child_page() -> dict[str, Any]:
    """``GET /audit`` of the governance app through TestClient, after ``BENCH_APPEND`` more events."""
    import charter_airflow.ui.templating as templating
    from charter_airflow.ui.app import create_app
    from charter_airflow.ui.scope import EVERYTHING, bind_scope
    from charter_airflow.ui.security import require_reader
    from fastapi.testclient import TestClient

    templating.can_act = lambda user: False  # type: ignore[assignment]  # no Airflow auth manager here
    templating.issue_csrf_token = lambda user: "bench"  # type: ignore[assignment]
    app = create_app()
    app.dependency_overrides[require_reader] = lambda: SimpleNamespace(get_name=lambda: "viewer")
    app.dependency_overrides[bind_scope] = lambda: EVERYTHING  # a reader of every use case, as the auditors are
    client = TestClient(app)
    assert client.get("/audit").status_code == 200  # templates compiled, the appended events verified
    append(int(os.environ.get("BENCH_APPEND", "5")))
    began = time.perf_counter()
    response = client.get("/audit")
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "ok": response.status_code == 200 and "Chaîne d'audit vérifiée" in response.text}


def child_report() -> dict[str, Any]:
    """The charter report's chain section (``charter_document.chain_section``), after ``BENCH_APPEND`` events."""
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting.charter_document import chain_section

    append(int(os.environ.get("BENCH_APPEND", "5")))
    began = time.perf_counter()
    with ledger_session() as session:
        chain, head = chain_section(session)
    return {"seconds": time.perf_counter() - began, "ok": chain["ok"] is True and head["verified"] is True}


CHILDREN = {"plain": child_plain, "old": child_old, "page": child_page, "report": child_report}


# ------------------------------------------------------------------------------------------------
# the parent


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, stdout) of one process; its stderr (progress) goes to ours."""
    began = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.stdout.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {code}: {out[-2000:]}")
    return time.perf_counter() - began, usage.ru_maxrss / 1024, out


def _child(name: str, env: dict[str, str]) -> dict[str, Any]:
    wall, rss, out = _run([sys.executable, __file__, "--child", name], env)
    return {**json.loads(out.strip().splitlines()[-1]), "wall": wall, "rss": rss}


def _cli(env: dict[str, str], *extra: str) -> dict[str, Any]:
    wall, rss, out = _run([str(BIN / "charter"), "audit", "verify", "--json", *extra], env)
    report = json.loads(out)
    return {"seconds": report["seconds"], "ok": report["ok"], "checked": report["checked"], "wall": wall, "rss": rss}


def _database(workdir: Path, name: str) -> tuple[str, Any]:
    """A ledger URL and how to drop it afterwards."""
    if os.environ.get("BENCH_DB", "sqlite") != "postgresql":
        return f"sqlite:///{workdir / f'{name}.db'}", lambda: None
    import psycopg

    database = f"charter_bench_{name}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{database}", drop


def _environment(workdir: Path) -> dict[str, str]:
    """This process and its children use the bench's own CHARTER_HOME, keys and anchor file."""
    for name in ("CHARTER_LEDGER_URL", "CHARTER_SIGNING_KEY", "CHARTER_PUBLIC_KEY", "CHARTER_KEYS_DIR"):
        os.environ.pop(name, None)
    os.environ["CHARTER_HOME"] = str(workdir / "home")
    os.environ["CHARTER_AUDIT_ANCHOR"] = str(workdir / "home" / "audit" / "head.json")
    from charter_guardrails.core.keys import init_keys

    init_keys()
    return dict(os.environ)


def _use(env: dict[str, str], url: str) -> None:
    from charter_guardrails.ledger import db

    env["CHARTER_LEDGER_URL"] = os.environ["CHARTER_LEDGER_URL"] = url
    db.reset_caches()


def measure(workdir: Path, events: int, baseline_events: int) -> dict[str, Any]:
    env = _environment(workdir)
    url, drop = _database(workdir, "main")
    drops = [drop]
    try:
        _use(env, url)
        results: dict[str, Any] = {"build": build_ledger(url, events, Path(env["CHARTER_AUDIT_ANCHOR"]))}
        print(f"built {events:,} events in {results['build']:.1f} s; measuring", flush=True)
        results["plain"] = _child("plain", env)
        results["full"] = _cli(env, "--full")
        append(int(os.environ.get("BENCH_APPEND", "5")))
        results["incremental"] = _cli(env)
        results["page"] = _child("page", env)
        results["report"] = _child("report", env)
        if baseline_events < events:  # the old verification, on a smaller ledger of the same make
            small, drop_small = _database(workdir, "baseline")
            drops.append(drop_small)
            _use(env, small)
            build_ledger(small, baseline_events, workdir / "baseline-anchor.json")
        results["old"] = _child("old", env)
    finally:
        from charter_guardrails.ledger import db

        db.reset_caches()
        for drop_database in drops:
            drop_database()
    return results


def _print(results: dict[str, Any], events: int, baseline_events: int) -> list[tuple[str, bool]]:
    plain, full, old = results["plain"], results["full"], results["old"]
    scale = events / baseline_events
    old_seconds = old["seconds"] * scale
    old_rss = plain["rss"] + max(0.0, old["rss"] - plain["rss"]) * scale  # above the interpreter and its imports
    rows = [
        ("plain streaming read (floor)", plain["seconds"], plain["rss"], plain["wall"]),
        (f"old full verification, measured at {baseline_events:,}", old["seconds"], old["rss"], old["wall"]),
        (f"old full verification, extrapolated to {events:,}", old_seconds, old_rss, None),
        ("charter audit verify --full", full["seconds"], full["rss"], full["wall"]),
        (
            "charter audit verify (incremental)",
            results["incremental"]["seconds"],
            results["incremental"]["rss"],
            results["incremental"]["wall"],
        ),
        ("audit page GET /audit (TestClient)", results["page"]["seconds"], results["page"]["rss"], None),
        ("charter report chain section", results["report"]["seconds"], results["report"]["rss"], None),
    ]
    print(f"{'':<50}{'seconds':>10}{'peak RSS MiB':>14}{'process wall s':>16}")
    for name, seconds, rss, wall in rows:
        print(f"{name:<50}{seconds:>10.3f}{rss:>14.1f}{'' if wall is None else f'{wall:.2f}':>16}")
    print(
        f"full verification: {events / full['seconds']:,.0f} events/s; "
        f"time vs old (extrapolated) x{full['seconds'] / old_seconds:.2f}, "
        f"peak RSS vs old (extrapolated) x{full['rss'] / old_rss:.2f}, "
        f"time vs plain read x{full['seconds'] / plain['seconds']:.1f}"
    )
    print(f"load average {os.getloadavg()}")
    return [
        (f"full verification verifies ({full['checked']:,} events)", full["ok"] is True),
        (f"full verification peak RSS {full['rss']:.0f} MiB <= {TARGET_RSS_MIB} MiB", full["rss"] <= TARGET_RSS_MIB),
        (
            f"incremental verification {results['incremental']['seconds']:.3f} s <= {TARGET_SECONDS:.0f} s",
            results["incremental"]["ok"] is True and results["incremental"]["seconds"] <= TARGET_SECONDS,
        ),
        (
            f"audit page {results['page']['seconds']:.3f} s <= {TARGET_SECONDS:.0f} s",
            results["page"]["ok"] and results["page"]["seconds"] <= TARGET_SECONDS,
        ),
        (
            f"report chain section {results['report']['seconds']:.3f} s <= {TARGET_SECONDS:.0f} s",
            results["report"]["ok"] and results["report"]["seconds"] <= TARGET_SECONDS,
        ),
        ("old verification agrees (baseline ledger verifies)", old["ok"] is True),
    ]


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(CHILDREN[sys.argv[2]]()))
        return 0
    events = int(os.environ.get("BENCH_EVENTS", "1000000"))
    baseline_events = min(events, int(os.environ.get("BENCH_BASELINE_EVENTS", "100000")))
    backend = os.environ.get("BENCH_DB", "sqlite")
    workdir = Path(tempfile.mkdtemp(prefix="charter-bench-audit-", dir=os.environ.get("BENCH_DIR")))
    print(
        f"audit chain benchmark: {events:,} events on {backend} (one in {SUBJECT_EVERY} creates an audited row;"
        f" check runs with results and findings: {'yes' if CHECK_RUNS else 'no'}),"
        f" {os.cpu_count()} cores, load average {os.getloadavg()} at start",
        flush=True,
    )
    try:
        results = measure(workdir, events, baseline_events)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    checks = _print(results, events, baseline_events)
    for text, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {text}")
    correct = checks[0][1] and checks[-1][1]
    strict = os.environ.get("BENCH_STRICT") == "1"
    return 0 if correct and (all(p for _, p in checks) or not strict) else 1


if __name__ == "__main__":
    sys.exit(main())
