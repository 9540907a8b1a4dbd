"""Fault injection: under faults, nothing is lost and nothing is half-written (GDPR Art. 32, AI Act Art. 12).

* SIGKILL during incident writes, hundreds of times: every incident a writer reported committed is
  there, none is partial (an incident always has its verdict, its alert outbox rows and its audit
  events), and ``charter audit verify`` passes after every kill.
* PostgreSQL restarted in the middle of a guardrail's ledger transaction (a private server of this
  test, never the shared one): the task fails with an infrastructure error, which Airflow retries,
  nothing of the failed attempt is in the ledger, and the retry records everything once.
* The reports folder full or read-only: a clear error names the folder, and the verdict is in the ledger.
* A retried or cleared task, run N times with the same run id: the ledger is identical.

The SMTP outage of two simulated hours is proved by
``tests/unit/test_alerts_relay.py::test_outage_of_two_hours_every_alert_delivered_once_with_its_key``
(SQLite and PostgreSQL): it is not repeated here.
"""

from __future__ import annotations

import os
import random
import select
import shutil
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.hardening.support_faults import scaled

# --- SIGKILL during incident writes ---------------------------------------------------------------

#: Alert targets of citizen_requests: two e-mail recipients and the signed webhook (``policies_with_webhook``).
OUTBOX_PER_INCIDENT = 3
HISTORY = 2  # incidents already in the ledger when a writer starts: the chain never starts at genesis


def _draft(run_id: str) -> Any:
    from charter_guardrails.incidents.incident import BreachType, IncidentDraft

    return IncidentDraft(
        breach_type=BreachType.INTEGRITY,
        severity="critical",
        dataset="training",
        run_id=run_id,
        title="Jeu de données modifié après son enregistrement",
        nature="le fichier ne correspond plus à son manifeste signé",
        facts={"ranges": [[1024, 2048]], "run": run_id},
        likely_consequences="un modèle entraîné sur des données altérées",
        measures_taken=["entraînement bloqué"],
        approx_records=12,
    )


def _guardrail_write(session: Any, policy: Any, run_id: str) -> None:
    """What ``persist_and_gate`` writes for a corrupted dataset, in one transaction: the run, the verdict, the
    incident."""
    from charter_guardrails.core.results import CheckResult, Severity, Verdict
    from charter_guardrails.incidents.incident import raise_incident
    from charter_guardrails.ledger.store import get_or_create_check_run, record_check_result

    check_run = get_or_create_check_run(session, use_case=policy.id, dag_id="integrity_monitor", run_id=run_id)
    record_check_result(
        session,
        check_run,
        CheckResult(
            check="integrity",
            verdict=Verdict.FAIL,
            severity=Severity.CRITICAL,
            engagements=["surete.2"],
            dataset="training",
            summary="training.csv differs from its signed manifest",
            metrics={"changed_chunks": 1},
            evidence={"outcome": "data_changed", "file": "training.csv", "manifest_id": None, "changed_chunks": [1]},
        ),
    )
    raise_incident(session, policy, _draft(run_id))


def _writer(policy: Any, trial: int, out: int, *, hold_after_commit: int | None = None) -> None:
    """The child: one guardrail write per transaction; say ``B`` before and ``C`` once committed.

    :param hold_after_commit: after that many writes, commit one more and say ``H`` instead of ``C``, then wait to
        be killed: the kill then lands between a commit and its report for certain (a random kill hits that
        window, a few microseconds wide, only by luck).
    """
    from charter_guardrails.ledger import db
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import text

    for engine in db._ENGINES:  # the parent's pooled connections are not this process's to use
        engine.dispose(close=False)
    with ledger_session() as session:  # connect (and check the migration) before saying ready
        session.execute(text("SELECT 1"))
    os.write(out, b"R\n")
    n = 0
    while True:
        run_id = f"scheduled__kill-{trial:04d}-{n:04d}"
        os.write(out, f"B {run_id}\n".encode())
        with ledger_session() as session:
            _guardrail_write(session, policy, run_id)
        if n == hold_after_commit:
            os.write(out, b"H\n")
            time.sleep(600)
        os.write(out, f"C {run_id}\n".encode())
        n += 1


def _read_lines(fd: int, *, until: bytes | None = None, timeout: float = 30) -> list[str]:
    """Lines from the child; stop at the line ``until`` or at end of file."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        if until is not None and (until + b"\n") in data:
            break
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            raise TimeoutError(f"the writer said nothing for {timeout} s")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data.decode().splitlines()


def _reset_ledger(url: str, template: Path | None) -> None:
    """An empty ledger for the next trial (the chain is verified in full after each kill)."""
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.ledger import db

    _close_connections()
    get_settings().audit_anchor.unlink(missing_ok=True)
    if template is not None:
        database = Path(url.removeprefix("sqlite:///"))
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(template, database)
        return
    from charter_guardrails.ledger.models import Base
    from sqlalchemy import text

    with db.get_engine(url).begin() as conn:
        conn.execute(
            text("TRUNCATE " + ", ".join(t.name for t in Base.metadata.sorted_tables) + " RESTART IDENTITY CASCADE")
        )


def _close_connections() -> None:
    """Close the pooled connections but keep the engines, whose compiled statements the writers reuse."""
    from charter_guardrails.ledger import db

    for engine in db._ENGINES:
        engine.dispose()


def _check_after_kill(committed: list[str], begun: list[str]) -> dict[str, Any]:
    from charter_guardrails.cli.main import main as charter
    from charter_guardrails.ledger.models import (
        AlertOutbox,
        AuditCheckpoint,
        AuditEvent,
        CheckResultRecord,
        CheckRun,
        Incident,
    )
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import func, select

    with ledger_session() as session:
        incidents = {i.run_id: i.id for i in session.scalars(select(Incident))}
        outbox = Counter(session.scalars(select(AlertOutbox.incident_id)))
        raised = Counter(session.scalars(select(AuditEvent.subject_id).where(AuditEvent.action == "incident.raised")))
        recorded = Counter(session.scalars(select(AuditEvent.run_id).where(AuditEvent.action == "check.recorded")))
        verdicts = Counter(session.scalars(select(CheckRun.run_id).join(CheckResultRecord)))
        runs = set(session.scalars(select(CheckRun.run_id)))
        events = session.scalar(select(func.count()).select_from(AuditEvent))
        checkpoints = session.scalar(select(func.count()).select_from(AuditCheckpoint))
    lost = [r for r in committed if r not in incidents]
    assert not lost, f"incidents reported committed are missing: {lost}"
    partial = {
        run: (outbox[i], raised[str(i)], verdicts[run], recorded[run])
        for run, i in incidents.items()
        if (outbox[i], raised[str(i)], verdicts[run], recorded[run]) != (OUTBOX_PER_INCIDENT, 1, 1, 1)
    }
    assert not partial, f"incidents without all their outbox rows, audit events or verdict: {partial}"
    assert runs == set(incidents), f"a verdict without its incident: {runs ^ set(incidents)}"
    assert set(incidents) <= {f"history-{i}" for i in range(HISTORY)} | set(begun), "an incident nobody wrote"
    # per incident: its run started, its result, the incident, and one event per alert queued
    assert events == checkpoints == (3 + OUTBOX_PER_INCIDENT) * len(incidents), (events, checkpoints, len(incidents))
    assert charter(["audit", "verify"]) == 0, "the audit chain does not verify after a SIGKILL"
    in_write = bool(begun) and (not committed or begun[-1] != committed[-1])
    return {
        "incidents": len(incidents) - HISTORY,
        "in_write": in_write,
        "unreported": in_write and begun[-1] in incidents,
    }


def run_sigkill_campaign(url: str, trials: int, seed: int, template: str | None, report: str) -> None:
    """The campaign, in an interpreter of its own: forking the test process, which holds spaCy, Airflow and
    Great Expectations by then, makes every writer pay copy-on-write faults and slows the campaign down."""
    import contextlib
    import io
    import json

    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.ledger.store import ledger_session

    policy = load_policy("citizen_requests")
    rng = random.Random(seed)
    stats: Counter[str] = Counter()
    failure = None
    # How long one guardrail write takes here and now (the machine is shared): kills spread over about eight of them.
    _reset_ledger(url, Path(template) if template else None)
    for i in range(8):
        if i == 2:  # after two writes that compile the statements
            timed = time.perf_counter()
        with ledger_session() as session:
            _guardrail_write(session, policy, f"timing-{i}")
    window = min(max(8 * (time.perf_counter() - timed) / 6, 0.02), 0.5)
    started = time.perf_counter()
    for trial in range(trials):
        _reset_ledger(url, Path(template) if template else None)
        for i in range(HISTORY):
            with ledger_session() as session:
                _guardrail_write(session, policy, f"history-{i}")
        _close_connections()  # no connection crosses the fork
        read_end, write_end = os.pipe()
        pid = os.fork()
        hold = rng.randrange(3) if trial == trials - 1 else None  # the last trial kills after a commit, for sure
        if pid == 0:  # pragma: no cover - the child is killed, never returns
            try:
                os.close(read_end)
                _writer(policy, trial, write_end, hold_after_commit=hold)
            finally:
                os._exit(70)
        os.close(write_end)
        try:
            lines = _read_lines(read_end, until=b"R")
            if hold is None:
                time.sleep(rng.uniform(0, window))
            elif "H" not in lines:  # the first read may have taken it already
                lines += _read_lines(read_end, until=b"H")
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            lines += _read_lines(read_end)
        finally:
            os.close(read_end)
        begun = [line[2:] for line in lines if line.startswith("B ")]
        committed = [line[2:] for line in lines if line.startswith("C ")]
        try:
            assert os.WIFSIGNALED(status), f"the writer ended by itself ({status})"
            assert os.WTERMSIG(status) == signal.SIGKILL, f"the writer ended by itself ({status})"
            with contextlib.redirect_stdout(io.StringIO()):
                result = _check_after_kill(committed, begun)
        except AssertionError as exc:
            failure = f"trial {trial} (seed {seed}), after {len(committed)} reported commits: {exc}"
            break
        if not result["incidents"]:  # the machine got slower since the timing: widen the window, or no kill lands late
            window = min(window * 1.25, 2.0)
        stats["trials"] += 1
        stats["incidents committed"] += result["incidents"]
        stats["killed inside a write"] += result["in_write"]
        stats["committed but not yet reported"] += result["unreported"]
    Path(report).write_text(
        json.dumps(
            {
                "stats": stats,
                "failure": failure,
                "seconds": round(time.perf_counter() - started, 1),
                "kill_window_ms": round(window * 1000),
            }
        )
    )


@pytest.mark.slow
def test_sigkill_during_incident_writes_loses_nothing_and_leaves_no_partial_row(
    ledger_url: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    import json
    import subprocess
    import sys

    from charter_guardrails.ledger import db

    from tests.conftest import ROOT

    backend = "sqlite" if ledger_url.startswith("sqlite") else "postgresql"
    trials = scaled(60, 200) if backend == "sqlite" else scaled(40, 200)
    seed = int(os.environ.get("CHARTER_KILL_SEED", "20261128"))
    from tests.unit.test_alerts_relay import policies_with_webhook

    policies_with_webhook(tmp_path / "policies", monkeypatch, "http://127.0.0.1:9/charter-alerts")
    template = None
    db.reset_caches()
    if backend == "sqlite":
        template = Path(ledger_url.removeprefix("sqlite:///")).with_name("ledger.template.db")
        shutil.copyfile(Path(ledger_url.removeprefix("sqlite:///")), template)
    report = tmp_path / "campaign.json"
    code = (
        f"from tests.hardening.test_faults import run_sigkill_campaign; "
        f"run_sigkill_campaign({ledger_url!r}, {trials}, {seed},"
        f" {str(template) if template else None!r}, {str(report)!r})"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report.exists(), proc.stderr[-3000:]
    outcome = json.loads(report.read_text())
    stats = outcome["stats"]
    with capsys.disabled():
        print(
            f"\nSIGKILL campaign on {backend}: {stats} in {outcome['seconds']} s"
            f" (kills within {outcome['kill_window_ms']} ms)"
        )
    assert outcome["failure"] is None, outcome["failure"]
    assert stats["trials"] == trials
    # The kills landed where it matters: inside a transaction, and some between a commit and its report.
    assert stats["killed inside a write"] >= trials // 2, stats
    assert stats["committed but not yet reported"] > 0, stats
    assert stats["incidents committed"] >= trials // 2, stats


# --- shared set-up of the guardrail steps -----------------------------------------------------------


def _context(dag_id: str, run_id: str) -> dict[str, Any]:
    from types import SimpleNamespace

    return {"dag_run": SimpleNamespace(dag_id=dag_id, run_id=run_id), "params": {}}


def _sample(rows: int = 1000) -> None:
    """Sample data in the CHARTER_HOME, the clean training file registered (signed manifest)."""
    from charter_demo.sample_data import generate
    from charter_guardrails.core.policy import UseCasePolicy, policy_files
    from charter_guardrails.core.settings import get_settings

    from tests.e2e.support import register

    policies = {p.id: p for p in (UseCasePolicy.from_file(f) for f in policy_files())}
    generate(get_settings().data_dir, policies, rows=rows)
    register("citizen_requests", "training", "citizen_requests/training.csv")


def _run_rows(run_id: str) -> dict[str, Any]:
    """What the ledger holds about one Airflow run: results, findings, verifications, incidents, outbox, audit
    events."""
    from charter_guardrails.ledger.models import (
        AlertOutbox,
        AuditEvent,
        CheckResultRecord,
        CheckRun,
        Incident,
        ManifestVerification,
        PiiFinding,
    )
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        runs = session.scalars(select(CheckRun).where(CheckRun.run_id == run_id)).all()
        results = session.scalars(
            select(CheckResultRecord).where(CheckResultRecord.check_run_id.in_([r.id for r in runs]))
        ).all()
        incidents = session.scalars(select(Incident).where(Incident.run_id == run_id)).all()
        return {
            "runs": len(runs),
            "results": sorted((r.check, r.verdict) for r in results),
            "findings": len(
                session.scalars(select(PiiFinding).where(PiiFinding.check_result_id.in_([r.id for r in results]))).all()
            ),
            "verifications": sorted(
                session.scalars(select(ManifestVerification.outcome).where(ManifestVerification.run_id == run_id))
            ),
            "incidents": sorted(i.breach_type for i in incidents),
            "outbox": len(
                session.scalars(select(AlertOutbox).where(AlertOutbox.incident_id.in_([i.id for i in incidents]))).all()
            ),
            "events": sorted(session.scalars(select(AuditEvent.action).where(AuditEvent.run_id == run_id))),
        }


# --- PostgreSQL restarted in the middle of a run ----------------------------------------------------


@pytest.fixture(scope="module")
def private_pg():
    """A PostgreSQL server of this module only: the shared one at 127.0.0.1:5432 is never restarted."""
    from tests.hardening.support_faults import PrivatePostgres, postgres_bin

    if postgres_bin() is None:
        pytest.fail("PostgreSQL server binaries are needed under /usr/lib/postgresql/*/bin")
    with PrivatePostgres() as server:
        yield server


def _restart_inside(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, server: Any, mode: str) -> list[str]:
    """Wrap ``module.name`` so that PostgreSQL restarts right after its first call has flushed its rows, before the
    commit."""
    original = getattr(module, name)
    restarts: list[str] = []

    def wrapper(session: Any, *args: Any, **kwargs: Any) -> Any:
        out = original(session, *args, **kwargs)
        if not restarts:
            session.flush()  # the rows are on the server, in the open transaction
            server.pg_ctl("restart", mode=mode)
            restarts.append(mode)
        return out

    monkeypatch.setattr(module, name, wrapper)
    return restarts


@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["fast", "immediate"])
@pytest.mark.parametrize("guardrail", ["integrity incident", "personal-data findings"])
def test_postgres_restart_mid_transaction_fails_the_task_then_its_retry_records_once(
    guardrail: str, mode: str, private_pg, charter_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import charter_guardrails.checks.privacy.verdict as verdict_module
    import charter_guardrails.incidents.incident as incidents_module
    from airflow.sdk.exceptions import AirflowFailException
    from charter_airflow.dag_factory import REFRESH_STEPS
    from charter_airflow.guardrail_tasks import run_step
    from charter_guardrails.cli.main import main as charter
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.ledger import db
    from sqlalchemy.exc import OperationalError

    url = private_pg.create_database(f"ledger_{guardrail.split()[0].replace('-', '_')}_{mode}")
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    from tests.unit.test_alerts_relay import policies_with_webhook

    policies_with_webhook(charter_home.parent / "policies", monkeypatch, "http://127.0.0.1:9/charter-alerts")
    db.migrate(url)
    _sample(rows=600)
    run_id = f"scheduled__restart-{mode}"
    context = _context("citizen_requests_model_refresh", run_id)
    policy = load_policy("citizen_requests")
    steps = {s.task_id: s for s in REFRESH_STEPS}

    def attempt() -> dict[str, Any]:
        if (
            guardrail == "integrity incident"
        ):  # verdict, verification, incident, outbox and audit events in one transaction
            return run_step(
                steps["verify_integrity"],
                policy=policy,
                context=context,
                path="citizen_requests/training__corrupted.csv",
            )
        return run_step(steps["scan_personal_data"], policy=policy, context=context)  # verdict and findings

    if guardrail == "integrity incident":
        restarts = _restart_inside(monkeypatch, incidents_module, "append_event", private_pg, mode)
    else:
        restarts = _restart_inside(monkeypatch, verdict_module, "record_findings", private_pg, mode)

    # Attempt 1: the server restarts in the middle of the transaction. An infrastructure error, not a verdict:
    # Airflow retries it. Any other exception escapes pytest.raises and fails the test.
    with pytest.raises((db.LedgerUnavailable, OperationalError)) as failure:
        attempt()
    assert restarts == [mode]
    assert not isinstance(failure.value, AirflowFailException), failure.value
    assert isinstance(failure.value, db.LedgerUnavailable | OperationalError), repr(failure.value)
    print(f"attempt 1 failed with {type(failure.value).__name__}: {str(failure.value)[:600]}")
    assert _run_rows(run_id) == {
        "runs": 0,
        "results": [],
        "findings": 0,
        "verifications": [],
        "incidents": [],
        "outbox": 0,
        "events": [],
    }, "the failed attempt left rows behind"
    assert charter(["audit", "verify"]) == 0

    # Attempt 2 (Airflow's retry), on the restarted server: everything once.
    if guardrail == "integrity incident":
        with pytest.raises(
            AirflowFailException, match="guardrail integrity failed"
        ):  # the verdict: bad data, not retried
            attempt()
        expected = {
            "runs": 1,
            "results": [("integrity", "fail")],
            "findings": 0,
            "verifications": ["data_changed"],
            "incidents": ["integrity"],
            "outbox": OUTBOX_PER_INCIDENT,
            "events": [*["alert.queued"] * OUTBOX_PER_INCIDENT, "check.recorded", "incident.raised", "run.started"],
        }
        assert _run_rows(run_id) == expected
    else:
        assert attempt()["verdict"] in ("pass", "warn")
        rows = _run_rows(run_id)
        assert rows["results"] == [("personal_data", rows["results"][0][1])]
        assert rows["findings"] > 0
        assert rows["events"] == ["check.recorded", "findings.recorded", "run.started"]
        assert rows["incidents"] == []
    assert charter(["audit", "verify"]) == 0


# --- the reports folder is full or read-only --------------------------------------------------------

#: Guardrails that write a report under CHARTER_REPORTS_DIR, and the report they write.
REPORTING_STEPS = {"personal_data": "JSON and HTML scan report", "quality": "Data Docs", "drift": "JSON drift report"}


def _reporting_steps(context: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Run each reporting guardrail; what it returned or raised (exception class names and message)."""
    from charter_airflow.dag_factory import INFERENCE_STEPS, REFRESH_STEPS
    from charter_airflow.guardrail_tasks import run_step
    from charter_guardrails.core.policy import load_policy

    policy = load_policy("citizen_requests")
    refresh = {s.task_id: s for s in REFRESH_STEPS}
    inference = {s.task_id: s for s in INFERENCE_STEPS}
    steps = {
        "personal_data": lambda: run_step(refresh["scan_personal_data"], policy=policy, context=context),
        "quality": lambda: run_step(refresh["validate_quality"], policy=policy, context=context),
        "drift": lambda: run_step(inference["check_drift"], policy=policy, context=context),
        # A failing verdict stays a failing verdict (not retried), and says the report is missing too.
        "personal_data of a PII leak": lambda: run_step(
            refresh["scan_personal_data"],
            policy=policy,
            path="citizen_requests/training__pii_leak.csv",
            context={
                **context,
                "dag_run": type(context["dag_run"])(
                    dag_id=context["dag_run"].dag_id, run_id=context["dag_run"].run_id + "-leak"
                ),
            },
        ),
    }
    outcomes: dict[str, dict[str, Any]] = {}
    for name, step in steps.items():
        try:
            outcomes[name] = {"returned": step()}
        except Exception as exc:  # noqa: BLE001 - the test reads it
            outcomes[name] = {"raised": [c.__name__ for c in type(exc).__mro__], "message": str(exc)}
    return outcomes


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_reports_folder_full_or_read_only_is_a_clear_error_and_the_verdict_is_recorded(
    fault: str, ledger_url: str, charter_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from charter_guardrails.checks.privacy.scanner import detect_values
    from charter_guardrails.cli.main import main as charter
    from charter_guardrails.core.errors import ReportWriteError
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.ledger import db

    from tests.hardening.support_faults import in_forked_child, mount_fault

    _sample(rows=600)
    reports = get_settings().reports_dir
    run_id = f"scheduled__reports-{fault}"
    context = _context("citizen_requests_model_refresh", run_id)
    detect_values(
        ["Je suis Jeanne Martin, au 3 rue Paradis."], "free_text", "message"
    )  # load spaCy once, before the forks
    db.reset_caches()  # no connection crosses the fork
    outcome = in_forked_child(lambda: mount_fault(fault, reports), lambda: _reporting_steps(context))
    if "unavailable" in outcome:
        pytest.skip(f"a {fault} filesystem cannot be simulated here: {outcome['unavailable']}")
    assert "returned" in outcome, outcome
    reason = {"full": "No space left on device", "read-only": "Read-only file system"}[fault]
    recorded = dict(_run_rows(run_id)["results"])
    for check, report in REPORTING_STEPS.items():
        result = outcome["returned"][check]
        # A clear error: the task fails, Airflow retries it (not AirflowFailException), and the message says what
        # and where.
        assert "raised" in result, f"{check}: the {report} could not be written, yet the task succeeded: {result}"
        assert AirflowFailException.__name__ not in result["raised"], result
        message = result["message"]
        print(f"{fault}, {check}: {message}")
        assert reason in message, f"{check}: unclear error: {message}"
        assert str(reports) in message, f"{check}: unclear error: {message}"
        assert "recorded" in message, f"{check}: unclear error: {message}"
        assert ReportWriteError.__name__ in result["raised"], result
        # ... and the verdict is in the ledger all the same.
        assert check in recorded, f"{check}: the verdict was lost with the report ({recorded})"
    leak = outcome["returned"]["personal_data of a PII leak"]
    assert AirflowFailException.__name__ in leak["raised"], leak
    assert f"{reason}" in leak["message"], leak
    assert "also, the personal-data scan report could not be written" in leak["message"], leak
    leak_rows = _run_rows(run_id + "-leak")
    assert leak_rows["results"] == [("personal_data", "fail")], leak_rows
    assert leak_rows["incidents"] == ["gdpr_compliance"], leak_rows
    assert charter(["audit", "verify"]) == 0


# --- a retried or cleared task leaves the ledger as it was ------------------------------------------


def _ledger_state() -> dict[str, Any]:
    """Every column of every ledger table, and the signed audit anchor outside the database."""
    from charter_guardrails.core.settings import get_settings

    from tests.hardening.support_faults import ledger_dump

    anchor = get_settings().audit_anchor
    return {"tables": ledger_dump(), "anchor": anchor.read_text() if anchor.exists() else None}


def _differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out = []
    if before["anchor"] != after["anchor"]:
        out.append(f"audit anchor: {before['anchor']!r} -> {after['anchor']!r}")
    for table in sorted(set(before["tables"]) | set(after["tables"])):
        rows_before, rows_after = before["tables"].get(table, []), after["tables"].get(table, [])
        if len(rows_before) != len(rows_after):
            out.append(f"{table}: {len(rows_before)} rows -> {len(rows_after)}")
            continue
        for old, new in zip(rows_before, rows_after, strict=True):
            changed = sorted(k for k in old if old[k] != new.get(k))
            if changed:
                label = "/".join(str(old[k]) for k in ("check", "dataset", "action") if old.get(k))
                out.append(
                    f"{table}#{old.get('id', '?')} {label}: "
                    + "; ".join(_change(k, old[k], new.get(k)) for k in changed)
                )
    return out


def _change(key: str, old: Any, new: Any, depth: int = 0) -> str:
    """Where two values differ, down to the innermost key (a JSON column holds a deep document)."""
    if isinstance(old, dict) and isinstance(new, dict) and depth < 6:
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return "; ".join(_change(f"{key}.{k}", old.get(k), new.get(k), depth + 1) for k in keys)
    return f"{key} {str(old)[:100]!r} -> {str(new)[:100]!r}"


def _step_runs(policy: Any) -> list[tuple[str, Any]]:
    """The task bodies of three DAG runs, as (run: task, callable), in DAG order.

    A clean refresh through the human decision and publish, a blocked refresh (corrupted delivery:
    integrity incident) and a quarantined inference batch (drift incident). Each task gets the same
    upstream outputs every time, as a retried or cleared task does from XCom.
    """
    from charter_airflow import batch_routing, publish
    from charter_airflow.dag_factory import INFERENCE_STEPS, REFRESH_STEPS
    from charter_airflow.guardrail_tasks import run_step
    from charter_guardrails.decision.gate import INFERENCE_CHECKS

    clean = _context("citizen_requests_model_refresh", "manual__idempotent-clean")
    corrupt = _context("citizen_requests_model_refresh", "manual__idempotent-corrupted")
    corrupt["params"] = {"training_file": "citizen_requests/training__corrupted.csv"}
    drifted = _context("citizen_requests_inference_guardrails", "manual__idempotent-drifted")
    drifted["params"] = {"batch_file": "citizen_requests/inference_batch__drifted.csv"}
    outputs: dict[str, Any] = {}
    refresh = {s.task_id: s for s in REFRESH_STEPS}
    inference = {s.task_id: s for s in INFERENCE_STEPS}

    def keep(name: str, value: Any) -> Any:
        outputs.setdefault(name, value)  # the first attempt's XCom, which every retry reads
        return outputs[name]

    def answer() -> dict[str, Any]:
        needs_override = outputs["gate"]["decision"]["outcome"] == "needs_override"
        return {
            "chosen_options": ["Override" if needs_override else "Approve"],
            "params_input": {"justification": "Échantillon réduit de l'essai, écarts connus et documentés."},
            "responded_by_user": {"id": "karim.haddad", "name": "karim.haddad"},  # an override approver
        }

    def task(table: dict[str, Any], name: str, context: dict[str, Any], *inputs: str) -> Any:
        return lambda: run_step(table[name], policy=policy, context=context, inputs=tuple(outputs[i] for i in inputs))

    def kept(name: str, *inputs: str) -> Any:
        return lambda: keep(name, task(refresh, name, clean, *inputs)())

    return [
        ("clean: kill_switch", task(refresh, "kill_switch", clean)),
        ("clean: verify_integrity", task(refresh, "verify_integrity", clean)),
        ("clean: scan_personal_data", task(refresh, "scan_personal_data", clean)),
        ("clean: pseudonymise", kept("pseudonymise")),
        ("clean: validate_quality", task(refresh, "validate_quality", clean)),
        ("clean: check_representativeness", task(refresh, "check_representativeness", clean)),
        ("clean: check_proportionality", kept("check_proportionality", "pseudonymise")),
        ("clean: train_candidate", kept("train_candidate", "check_proportionality")),
        ("clean: evaluate", kept("evaluate", "train_candidate")),
        ("clean: footprint_gate", task(refresh, "footprint_gate", clean, "train_candidate", "evaluate")),
        ("clean: gate", lambda: keep("gate", publish.gate(policy, clean, REFRESH_CHECKS))),
        ("clean: human_review", lambda: _record_answer(policy, clean, answer())),
        ("clean: publish", lambda: publish.publish(policy, clean, expected=REFRESH_CHECKS)),
        ("corrupted: kill_switch", task(refresh, "kill_switch", corrupt)),
        ("corrupted: verify_integrity", task(refresh, "verify_integrity", corrupt)),
        ("corrupted: gate", lambda: publish.gate(policy, corrupt, REFRESH_CHECKS)),
        ("drifted: kill_switch", task(inference, "kill_switch", drifted)),
        ("drifted: verify_integrity", task(inference, "verify_integrity", drifted)),
        ("drifted: scan_personal_data", task(inference, "scan_personal_data", drifted)),
        ("drifted: validate_quality", task(inference, "validate_quality", drifted)),
        ("drifted: check_drift", task(inference, "check_drift", drifted)),
        (
            "drifted: route_batch",
            lambda: batch_routing.route(
                policy, drifted, role="inference", file_param="batch_file", expected=INFERENCE_CHECKS
            ),
        ),
    ]


#: Not retried: training takes the longest and its retry is a new candidate; a retried approval form asks the
#: approvers again, and their new answer is a new record.
NOT_RETRIED = {"clean: train_candidate", "clean: human_review"}


def _record_answer(policy: Any, context: dict[str, Any], answer: dict[str, Any]) -> None:
    """What the review task does when the form is answered: record Airflow's HITL record in the ledger."""
    from charter_airflow.runtime import run_ids
    from charter_guardrails.decision.review_records import ReviewAnswer, record_answer
    from charter_guardrails.ledger.store import ledger_session

    user = answer["responded_by_user"]
    recorded = ReviewAnswer(
        responder_id=user["id"],
        responder_name=user["name"],
        choice=answer["chosen_options"][0],
        justification=answer["params_input"]["justification"],
    )
    with ledger_session() as session:
        record_answer(session, use_case=policy.id, run_id=run_ids(context)[1], answer=recorded)


#: Not cleared after the run published: they read the production model, which that publish changed
#: (the kill switch reports the production version; evaluate compares with it). Retried, they are identical.
READS_PRODUCTION = {"clean: kill_switch", "clean: evaluate"}
#: The drifted batch, a delivery, was moved to quarantine/ by its routing: a cleared check reads it there (the
#: same bytes, the same outcome), and its evidence names that file, so it runs after the ledger is compared.
READS_QUARANTINE = {"drifted: verify_integrity"}


REFRESH_CHECKS = (
    "kill_switch",
    "integrity",
    "personal_data",
    "quality",
    "representativeness",
    "proportionality",
    "training",
    "performance",
    "fairness",
    "footprint",
)


def _attempt(step: Any) -> str:
    """Run a task body as Airflow would; its outcome (a failing verdict is an outcome too)."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    try:
        step()
    except (AirflowFailException, AirflowSkipException) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "success"


def test_retried_or_cleared_tasks_leave_the_ledger_identical(
    ledger_url: str, charter_home: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from charter_guardrails.cli.main import main as charter
    from charter_guardrails.core.policy import load_policy

    from tests.e2e.support import register
    from tests.unit.test_alerts_relay import policies_with_webhook

    policies_with_webhook(charter_home.parent / "policies", monkeypatch, "http://127.0.0.1:9/charter-alerts")
    _sample(rows=scaled(1200, 4000))
    register("citizen_requests", "inference", "citizen_requests/inference_batch__drifted.csv")
    policy = load_policy("citizen_requests")
    times = scaled(3, 10)
    task_bodies = _step_runs(policy)

    # Retried: each task runs `times` times in a row; after every retry the ledger is what its first attempt left.
    first: dict[str, str] = {}
    for name, step in task_bodies:
        first[name] = _attempt(step)
        after_first = _ledger_state()
        for attempt in range(2, 1 + (1 if name in NOT_RETRIED else times)):
            assert _attempt(step) == first[name], f"{name}: another outcome on attempt {attempt}"
            changed = _differences(after_first, _ledger_state())
            assert not changed, f"{name}, attempt {attempt}: the ledger changed:\n" + "\n".join(changed[:40])
    assert first["clean: publish"] == "success", first
    assert first["corrupted: verify_integrity"].startswith("AirflowFailException: guardrail integrity failed"), first
    assert first["drifted: route_batch"].startswith("AirflowFailException: batch quarantined"), first
    reference = _ledger_state()
    tables = reference["tables"]
    assert len(tables["incidents"]) == 2, tables["incidents"]
    assert len(tables["model_versions"]) == 1, tables["incidents"]
    assert len(tables["approvals"]) == 1, tables["incidents"]

    # Cleared: the three runs again, task after task, once the whole pipeline has run.
    data = charter_home / "data" / "citizen_requests"
    assert not (data / "inference_batch__drifted.csv").exists(), "a quarantined delivery leaves its folder"
    assert [p.name for p in (data / "quarantine").iterdir()] == [
        "manual__idempotent-drifted__inference_batch__drifted.csv"
    ]
    for name, step in task_bodies:
        if name not in NOT_RETRIED | READS_PRODUCTION | READS_QUARANTINE:
            assert _attempt(step) == first[name], f"{name}: another outcome once cleared"
    changed = _differences(reference, _ledger_state())
    assert not changed, "after clearing the runs the ledger differs:\n" + "\n".join(changed[:40])
    for name, step in task_bodies:
        if name in READS_QUARANTINE:
            assert _attempt(step) == first[name], f"{name}: another outcome once cleared"
    capsys.readouterr()
    assert charter(["audit", "verify"]) == 0
    with capsys.disabled():
        print(
            f"\nidempotency on {ledger_url.split(':')[0]}: {len(task_bodies)} task bodies,"
            f" each run {times} times in a row, "
            f"then the runs cleared; {sum(len(rows) for rows in tables.values())} ledger rows and the anchor identical"
        )
