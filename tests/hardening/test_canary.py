"""Canary personal data: known personal values never leave the input files.

Valid canaries (NIR, SIRET and IBAN with their checksums, a ``+33`` phone, an e-mail, a name and a
street address) are seeded into every citizen dataset, in one row in 40, and into the undeclared
columns of both ``__pii_leak`` variants. Every DAG scenario then runs with ``dag.test()``:

* clean refresh, approved by a named approver;
* blocked: PII leak (citizen requests and waste tonnage), corruption, quality failure (rejected);
* overridden: the biased sample, with a written justification;
* inference: a clean batch passed on and scored by the published model, a drifted batch quarantined;

the alert relay delivers every incident to a real SMTP server and a real HTTP server on loopback.
Then each canary is looked for, in its raw and normalised forms, in the task logs, the XCom table
(and every other table of the Airflow metadata database), every column of every ledger table,
the reports and Data Docs, the model cards and artifacts, the pseudonymised training data, the predictions
written beside the accepted batch, the alert e-mails and webhook payloads, the exception messages of the tasks
and the CLI's output.
Then the DPO's commands run on the same data: ``charter dsr find`` by e-mail, phone and NIR, and
``charter dsr erase``; their output, log records and reports, and the ledger after them, are searched too.
Zero occurrences is the only passing result.

The input files hold the canaries by construction (and so do the accepted and quarantined copies
of an inference batch, which *are* the input, passed on or held back): they are the positive
control of the search, not a place it looks for leaks.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import register
from tests.hardening.support_faults import (
    FULL,
    CanarySearch,
    HitlAnswer,
    file_text,
    files_under,
    ledger_text,
    sqlite_dump_text,
)

REFRESH, INFERENCE = "citizen_requests_model_refresh", "citizen_requests_inference_guardrails"
JUSTIFICATION = "Écart de représentativité connu et documenté ; chaque orientation reste validée par un agent."

#: (scenario, DAG, dataset file to register, run conf, human answer, decision recorded in the ledger)
SCENARIOS: list[tuple[str, str, tuple[str, str, str], dict[str, str], tuple[str, str, dict[str, str]] | None, str]] = [
    (
        "clean refresh",
        REFRESH,
        ("citizen_requests", "training", "citizen_requests/training.csv"),
        {},
        ("Approve", "claire.martin", {}),
        "published",
    ),
    # Inference before the biased sample is published: the drift reference is the clean training data's.
    (
        "clean batch",
        INFERENCE,
        ("citizen_requests", "inference", "citizen_requests/inference_batch.csv"),
        {},
        None,
        "passed",
    ),
    (
        "drifted batch",
        INFERENCE,
        ("citizen_requests", "inference", "citizen_requests/inference_batch__drifted.csv"),
        {"batch_file": "citizen_requests/inference_batch__drifted.csv"},
        None,
        "quarantined",
    ),
    (
        "PII leak",
        REFRESH,
        ("citizen_requests", "training", "citizen_requests/training__pii_leak.csv"),
        {"training_file": "citizen_requests/training__pii_leak.csv"},
        None,
        "blocked",
    ),
    (
        "corruption",
        REFRESH,
        ("citizen_requests", "training", "citizen_requests/training.csv"),
        {"training_file": "citizen_requests/training__corrupted.csv"},
        None,
        "blocked",
    ),
    (
        "quality failure",
        REFRESH,
        ("citizen_requests", "training", "citizen_requests/training__quality_failure.csv"),
        {"training_file": "citizen_requests/training__quality_failure.csv"},
        ("Reject", "karim.haddad", {}),
        "rejected",
    ),
    (
        "overridden",
        REFRESH,
        ("citizen_requests", "training", "citizen_requests/training__biased.csv"),
        {"training_file": "citizen_requests/training__biased.csv"},
        ("Override", "karim.haddad", {"justification": JUSTIFICATION}),
        "overridden",
    ),
    (
        "waste PII leak",
        "waste_tonnage_model_refresh",
        ("waste_tonnage", "training", "waste_tonnage/training__pii_leak.csv"),
        {"training_file": "waste_tonnage/training__pii_leak.csv"},
        None,
        "blocked",
    ),
]


def _dags() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags


def _decision(dag_id: str, run_id: str) -> str | None:
    from charter_guardrails.ledger.models import CheckRun
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        run = session.scalars(select(CheckRun).where(CheckRun.dag_id == dag_id, CheckRun.run_id == run_id)).first()
        return run.decision if run else None


@pytest.fixture
def canaries(charter_home: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: Path):
    """A CHARTER_HOME whose sample data carries canaries, a migrated SQLite ledger, and a webhook receiver."""
    from charter_demo.sample_data import Canaries, generate
    from charter_guardrails.core.policy import UseCasePolicy, policy_files
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.ledger import db

    from tests.unit.test_alerts_relay import Hooks, policies_with_webhook

    url = f"sqlite:///{charter_home / 'ledger.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)
    policies = {p.id: p for p in (UseCasePolicy.from_file(f) for f in policy_files())}
    # A fixed seed in CI (a failure can be replayed); a new one each time at full size (more names and numbers
    # over time).
    seed = int(os.environ.get("CHARTER_CANARY_SEED") or (time.time_ns() % 1_000_000 if FULL else 20261128))
    values = Canaries.from_seed(seed)
    print(f"canary seed {seed} (replay with CHARTER_CANARY_SEED={seed})")
    generate(get_settings().data_dir, policies, rows=4000, canaries=values)
    hooks = Hooks()
    policies_with_webhook(charter_home.parent / "policies", monkeypatch, hooks.url)
    try:
        yield values, hooks
    finally:
        hooks.close()


def test_canary_search_finds_every_form(canaries) -> None:
    """The search itself: every canary is found in the inputs, and in the forms people write it in."""
    from charter_guardrails.core.settings import get_settings

    values, _ = canaries
    search = CanarySearch(values)
    for path in files_under(get_settings().data_dir / "citizen_requests"):
        search.search_file("inputs", path)
    for path in files_under(get_settings().data_dir / "waste_tonnage"):
        search.search_file("inputs", path)
    assert {h.canary for h in search.hits} == set(search.forms), "a canary is missing from the inputs"
    digits = "".join(c for c in values.phone if c.isdigit())[2:]
    written = {
        "phone": [
            "0" + digits[0] + "-" + "-".join(digits[i : i + 2] for i in range(1, 9, 2)),
            "+33 (0)" + digits,
            "0033 " + digits,
        ],
        "nir": [values.nir.replace(" ", ""), values.nir.replace(" ", ".")],
        "siret": [values.siret.replace(" ", ""), values.siret[:11]],
        "iban": [values.iban.replace(" ", "").lower(), values.iban.replace(" ", "-")],
        "email": [values.email.upper(), values.email.replace("@", "%40")],
        "name": [values.name.upper(), values.last_name.lower(), json.dumps(values.name)],
        "address": [values.address.upper(), values.address.replace(" ", "&nbsp;")],
    }
    for canary, texts in written.items():
        for text in texts:
            assert any(h.canary == canary for h in CanarySearch(values).search("t", "t", f"… {text} …")), (canary, text)
    assert not CanarySearch(values).search(
        "t", "t", "06 ** ** ** 78, 1 85 ** ** *** *** 45, j***@e***.fr, J*** D***, <PERSON_3f2a9c01de>"
    )


def test_canaries_never_leave_the_inputs(
    canaries, airflow_db: Path, monkeypatch: pytest.MonkeyPatch, capfd, caplog
) -> None:
    from aiosmtpd.controller import Controller
    from airflow.sdk.execution_time import task_runner
    from charter_guardrails.cli.main import main as charter
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.ledger.models import AlertOutbox, Incident
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    from tests.unit.test_alerts_relay import Mailbox, free_port

    values, hooks = canaries
    settings = get_settings()
    caplog.set_level(logging.INFO)

    raised: list[str] = []
    execute = task_runner._execute_task

    def recording(context: Any, ti: Any, log: Any) -> Any:
        try:
            return execute(context, ti, log)
        except BaseException as exc:
            raised.append("".join(traceback.format_exception(exc)))
            raise

    monkeypatch.setattr(task_runner, "_execute_task", recording)

    dags = _dags()
    decisions: dict[str, str | None] = {}
    timings: dict[str, float] = {}
    for name, dag_id, registered, conf, answer, _expected in SCENARIOS:
        started = time.perf_counter()
        register(*registered)
        responder = None
        if answer is not None:
            responder = HitlAnswer(dag_id, answer[0], user=answer[1], params_input=answer[2])
            responder.start()
        try:
            dag_run = dags[dag_id].test(run_conf=conf or None)
        finally:
            if responder is not None:
                responder.stop.set()
        if responder is not None:
            assert responder.error is None, f"{name}: the HITL form was not answered"
            assert responder.answered.is_set(), f"{name}: the HITL form was not answered"
        decisions[name] = _decision(dag_id, dag_run.run_id)
        timings[name] = round(time.perf_counter() - started, 1)
    assert decisions == {name: expected for name, *_, expected in SCENARIOS}, decisions
    assert raised, "no task raised: the failing scenarios did not fail"

    # The relay delivers every incident's alerts: e-mail through Airflow's SMTP connection, and the webhook.
    with ledger_session() as session:
        incidents = session.scalars(select(Incident)).all()
        outbox = session.scalars(select(AlertOutbox)).all()
    assert {i.breach_type for i in incidents} >= {"gdpr_compliance", "integrity", "availability"}
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        monkeypatch.delenv("CHARTER_SMTP_HOST", raising=False)
        monkeypatch.setenv(
            "AIRFLOW_CONN_SMTP_DEFAULT",
            json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": controller.port,
                    "extra": {
                        "disable_ssl": True,
                        "disable_tls": True,
                        "from_email": "alertes-charte@ampmetropole.example",
                        "retry_limit": 0,
                    },
                }
            ),
        )
        dags["incident_alert_relay"].test()
    finally:
        controller.stop()
    assert len(mailbox.messages) == sum(1 for o in outbox if o.channel == "email") > 0
    assert len(hooks.received) == sum(1 for o in outbox if o.channel == "webhook")
    # one webhook per incident; the rest are the approvers' notices, which belong to no incident
    assert sum(1 for o in outbox if o.channel == "webhook" and o.incident_id is not None) == len(incidents)

    # What an operator reads on the command line.
    outputs = capfd.readouterr()
    for argv in (
        ["incidents", "list", "--json"],
        ["audit", "log", "--limit", "1000", "--json"],
        ["runs", "list", "--json"],
        ["model", "list", "--json"],
        ["alerts", "status", "--json"],
        *[["incidents", "show", str(i.id), "--json"] for i in incidents],
    ):
        charter(argv)
    cli_output = capfd.readouterr()
    assert charter(["audit", "verify"]) == 0

    search = CanarySearch(values)
    search.search("task logs", "captured stdout and stderr", outputs.out + outputs.err + cli_output.err)
    search.search(
        "task logs",
        "log records",
        "\n".join(f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records),
    )
    for path in files_under(airflow_db / "logs"):
        search.search_file("task logs", path)
    search.search("Airflow metadata (XCom included)", "airflow.db", sqlite_dump_text(airflow_db / "airflow.db"))
    search.search("ledger", "every table", ledger_text())
    for path in files_under(settings.reports_dir):
        search.search_file("Data Docs" if "data_docs" in path.parts else "reports", path)
    for path in files_under(settings.home / "models"):
        search.search_file("model cards and artifacts", path)
    for path in files_under(settings.home / "work"):
        search.search_file("pseudonymised and minimised training data", path)
    for path in sorted(settings.data_dir.rglob("*.predictions.parquet")):  # beside the accepted batch, not input
        search.search_file("predictions of accepted batches", path)
    for path in files_under(
        settings.home,
        exclude=[
            settings.data_dir,
            settings.reports_dir,
            settings.home / "models",
            settings.home / "work",
            settings.home / "ledger.db",
            settings.home / "ledger.db-wal",
            settings.home / "ledger.db-shm",
        ],
    ):
        search.search_file("other files of the install", path)
    for message in mailbox.messages:
        parts = [message.as_string()] + [
            part.get_content() for part in message.walk() if part.get_content_maintype() == "text"
        ]
        search.search("alert e-mails", message["Message-ID"], "\n".join(parts))
    for headers, body in hooks.received:
        search.search(
            "webhook payloads",
            headers.get("X-Idempotency-Key", "?"),
            json.dumps(headers) + json.dumps(body, ensure_ascii=False),
        )
    search.search("exception messages", "task exceptions", "\n".join(raised))
    search.search("CLI output", "charter incidents, audit log, runs, models, alerts", cli_output.out)

    # Every place was searched and held something to search.
    for place in (
        "task logs",
        "Airflow metadata (XCom included)",
        "ledger",
        "reports",
        "Data Docs",
        "model cards and artifacts",
        "pseudonymised and minimised training data",
        "predictions of accepted batches",
        "alert e-mails",
        "webhook payloads",
        "exception messages",
        "CLI output",
    ):
        assert search.searched.get(place, 0) > 0, f"nothing searched in {place}"
    # The guardrails did see the canaries: the pseudonymised data holds the tokens that replaced them.
    pseudonymised = "\n".join(file_text(p) for p in (settings.home / "work").rglob("*__pseudonymised.parquet"))
    for token in ("<PERSON_", "<FR_PHONE_", "<EMAIL_ADDRESS_", "<FR_NIR_", "<LOCATION_"):
        assert token in pseudonymised, f"no {token}… token in the pseudonymised training data"

    started = time.perf_counter()
    _data_subject_requests(values, search, capfd, caplog)
    timings["data-subject requests"] = round(time.perf_counter() - started, 1)

    print(f"\ncanary scenarios (seconds): {timings}; searched characters per place: {search.searched}")
    assert not search.hits, "canary personal data found outside the inputs:\n" + "\n".join(
        str(h) for h in search.hits[:40]
    )


def _data_subject_requests(values: Any, search: CanarySearch, capfd: Any, caplog: Any) -> None:
    """The DPO's commands after the scenarios: ``charter dsr find`` by e-mail, phone and NIR locates the canary
    person (in the inputs and the pseudonymised copies), ``charter dsr erase`` removes them, a second ``find`` finds
    nothing and the audit chain still verifies; their output, log records, reports and the ledger join the search."""
    from charter_guardrails.cli.main import main as charter
    from charter_guardrails.core.settings import get_settings

    capfd.readouterr()
    first_record = len(caplog.records)
    found = []
    for kind, value in (("email", values.email), ("phone", values.phone), ("nir", values.nir)):
        assert charter(["dsr", "find", "--identifier", value, "--type", kind, "--json"]) == 0, kind
        found.append(json.loads(capfd.readouterr().out))
        assert {p["kind"] for p in found[-1]["places"]} >= {"raw", "working_copy"}, found[-1]["places"]
    request = ["--type", "email", "--request-id", "canary-erasure", "--json"]
    assert charter(["dsr", "erase", "--identifier", values.email, *request, "--yes"]) == 0
    erased = capfd.readouterr()
    assert charter(["dsr", "find", "--identifier", values.email, "--type", "email"]) == 1
    assert charter(["audit", "verify"]) == 0
    again = capfd.readouterr()
    search.search(
        "CLI output",
        "charter dsr find, erase",
        json.dumps(found, ensure_ascii=False) + erased.out + erased.err + again.out + again.err,
    )
    search.search(
        "task logs",
        "log records of charter dsr",
        "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records[first_record:]),
    )
    search.search("ledger", "every table, after the erasure", ledger_text())
    for path in files_under(get_settings().reports_dir / "dsr"):
        search.search_file("data-subject request reports", path)
    assert search.searched.get("data-subject request reports", 0) > 0, "no data-subject request report"


def test_canaries_never_reach_airflow_task_log_files(canaries, airflow_db: Path) -> None:
    """The same search in the log files real Airflow processes write (``dag.test()`` writes none).

    A PII leak blocked and a drifted batch quarantined run on an api-server, a scheduler and a
    dag-processor with the LocalExecutor: each task runs in its own process, which writes its log
    file under AIRFLOW_HOME/logs, failing tasks with their exception and traceback. At full size the
    clean refresh (approved) and the biased one (overridden) run too, answered through the HITL REST API.
    """
    from charter_demo.local_airflow import LocalAirflow
    from charter_guardrails.core.settings import get_settings

    values, _ = canaries
    register("citizen_requests", "training", "citizen_requests/training__pii_leak.csv")
    register("citizen_requests", "inference", "citizen_requests/inference_batch__drifted.csv")
    before = {p for p in (airflow_db / "logs").rglob("*") if p.is_file()}
    users = {"claire.martin": ("admin", "pw-claire"), "karim.haddad": ("admin", "pw-karim")}
    with LocalAirflow(home=airflow_db, users=users) as running:
        client = running.client("claire.martin")
        client.wait_for_dag(REFRESH)
        client.wait_for_dag(INFERENCE)
        runs = [
            (REFRESH, client.trigger(REFRESH, {"training_file": "citizen_requests/training__pii_leak.csv"}), "failed"),
            (
                INFERENCE,
                client.trigger(INFERENCE, {"batch_file": "citizen_requests/inference_batch__drifted.csv"}),
                "failed",
            ),
        ]
        for dag_id, run_id, expected in runs:
            assert client.wait_for_run(dag_id, run_id) == expected, (
                dag_id,
                run_id,
                client.task_instances(dag_id, run_id),
            )
        if FULL:
            register("citizen_requests", "training", "citizen_requests/training.csv")
            for conf, option, params in (
                ({}, "Approve", {}),
                (
                    {"training_file": "citizen_requests/training__biased.csv"},
                    "Override",
                    {"justification": JUSTIFICATION},
                ),
            ):
                if conf:
                    register("citizen_requests", "training", conf["training_file"])
                run_id = client.trigger(REFRESH, conf)
                client.wait_for_hitl(REFRESH, run_id, "human_review")
                # four eyes: an approver who did not trigger the run answers
                approver = running.client("karim.haddad")
                approver.answer_hitl(REFRESH, run_id, "human_review", option, params)
                approver.close()
                assert client.wait_for_run(REFRESH, run_id) == "success"
                runs.append((REFRESH, run_id, "success"))
        client.close()
    logs = sorted(p for p in (airflow_db / "logs").rglob("*") if p.is_file() and p not in before)
    task_logs = [p for p in logs if any(part.startswith("run_id=") for part in p.parts)]
    assert {p.parts[-2] for p in task_logs} >= {
        "task_id=scan_personal_data",
        "task_id=route_batch",
        "task_id=check_drift",
    }, task_logs
    text = "\n".join(p.read_text(errors="replace") for p in task_logs)
    assert "AirflowFailException" in text, "the failing tasks' errors are not in their log files"
    assert "batch quarantined" in text, "the failing tasks' errors are not in their log files"
    search = CanarySearch(values)
    for path in logs:
        search.search_file("Airflow log files", path)
    search.search("Airflow metadata (XCom included)", "airflow.db", sqlite_dump_text(airflow_db / "airflow.db"))
    search.search("ledger", "every table", ledger_text())
    for path in files_under(get_settings().reports_dir):
        search.search_file("reports", path)
    print(f"{len(task_logs)} task log files and {len(logs) - len(task_logs)} other log files searched")
    assert not search.hits, "canary personal data found in Airflow's files:\n" + "\n".join(
        str(h) for h in search.hits[:40]
    )
