"""The GDPR Art. 33 and Art. 34 decisions on an incident, resolving only once the Art. 33 decision is taken,
the ``charter incidents notify|communicate|register`` commands and the register of breaches, on SQLite and
PostgreSQL (see the ``ledger_url`` fixture)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.errors import ConfigError, IncidentDecisionRequired
from charter_guardrails.incidents.decisions import art33_open, art34_open, record_art33, record_art34
from charter_guardrails.incidents.incident import (
    BreachType,
    IncidentDraft,
    IncidentStatus,
    raise_incident,
    transition_incident,
)
from charter_guardrails.incidents.register import build_register, render_csv, render_html, write_register
from charter_guardrails.ledger import db
from charter_guardrails.ledger.audit import verify_chain
from charter_guardrails.ledger.models import AuditEvent, Base, Incident
from charter_guardrails.ledger.store import ledger_session
from sqlalchemy import inspect, select

from tests.clock import InDays, dated

RATIONALE = "Données restaurées depuis la sauvegarde vérifiée avant toute utilisation : aucun risque pour les usagers."
FORMULA_TITLE = '=HYPERLINK("https://attaquant.example";"cliquer")'


def _draft(run_id: str = "run-1", title: str = "Corruption de training.csv") -> IncidentDraft:
    return IncidentDraft(
        breach_type=BreachType.INTEGRITY,
        severity="critical",
        dataset="training",
        run_id=run_id,
        title=title,
        nature="data changed",
        facts={"changed_chunks": [3]},
        likely_consequences="model trained on altered data",
        measures_taken=["refresh blocked", "dataset quarantined"],
        approx_records=4000,
    )


def _raise(policies: dict[str, object], run_id: str = "run-1", title: str = "Corruption de training.csv") -> int:
    with ledger_session() as session:
        incident, created = raise_incident(session, policies["citizen_requests"], _draft(run_id, title))
        assert created
        return incident.id


def _detected_on(incident_id: int) -> date:
    """The day the incident was detected: a decision's date may not be earlier, and a register of that day holds it
    (a run that crosses midnight raises it on one day and runs the test's next lines on the next)."""
    with ledger_session() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return incident.detected_at.replace(tzinfo=incident.detected_at.tzinfo or UTC).astimezone(UTC).date()


def _day_start(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


def _events(action: str) -> list[AuditEvent]:
    with ledger_session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def test_decisions_are_recorded_with_who_and_when_and_each_is_an_audit_event(ledger_url: str, policies) -> None:
    incident_id = _raise(policies)
    day = _detected_on(incident_id)
    with ledger_session() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        assert art33_open(incident)
        assert art34_open(incident)
        record_art33(session, incident_id, "to_notify", actor="rssi")
        assert art33_open(incident), "a notification that is owed keeps the decision open"
    with ledger_session() as session:
        incident = record_art33(
            session, incident_id, "notified", actor="rssi", notified_on=day, authority="CNIL", reference="NOT-42"
        )
        assert not art33_open(incident)
        incident = record_art34(session, incident_id, "not_required", actor="dpo", ground="b")
        assert not art34_open(incident)
    with ledger_session() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        assert (incident.art33_decision, incident.art33_decided_by) == ("notified", "rssi")
        assert (incident.art33_notified_on, incident.art33_authority, incident.art33_reference) == (
            day,
            "CNIL",
            "NOT-42",
        )
        assert incident.art33_decided_at is not None
        assert incident.art33_decided_at > datetime.now(UTC) - timedelta(minutes=5)
        assert (incident.art34_decision, incident.art34_ground, incident.art34_decided_by) == (
            "not_required",
            "b",
            "dpo",
        )
        assert verify_chain(session).ok
    art33 = _events("incident.art33_decision")
    assert [(e.actor, e.payload["decision"], e.payload["previous"]) for e in art33] == [
        ("rssi", "to_notify", None),
        ("rssi", "notified", "to_notify"),
    ]
    assert (art33[1].payload["notified_on"], art33[1].payload["authority"], art33[1].payload["reference"]) == (
        day.isoformat(),
        "CNIL",
        "NOT-42",
    )
    assert art33[1].subject_id == str(incident_id)
    art34 = _events("incident.art34_decision")
    assert [(e.actor, e.payload["decision"], e.payload["ground"]) for e in art34] == [("dpo", "not_required", "b")]


@pytest.mark.parametrize(
    ("article", "decision", "fields", "message"),
    [
        ("art33", "notified", {"notified_on": InDays(0), "reference": "R-1"}, r"authority \(`--authority`\)"),
        ("art33", "notified", {"authority": "CNIL", "reference": "R-1"}, r"notified_on \(`--on`\)"),
        ("art33", "not_required", {}, r"rationale \(`--rationale`\)"),
        ("art33", "not_required", {"rationale": "Pas de risque."}, "at least 50"),
        ("art33", "to_notify", {"authority": "CNIL"}, "does not apply"),
        ("art33", "maybe", {}, "choose one of: to_notify, notified, not_required"),
        ("art33", "notified", {"notified_on": "31/12/2026", "authority": "CNIL", "reference": "R"}, "YYYY-MM-DD"),
        (
            "art33",
            "notified",
            {"notified_on": InDays(2), "authority": "CNIL", "reference": "R"},
            "in the future",
        ),
        ("art34", "not_required", {}, r"ground \(`--ground`\)"),
        ("art34", "not_required", {"ground": "d"}, "choose one of: a, b, c"),
        ("art34", "communicated", {"communicated_on": InDays(0)}, r"channel \(`--channel`\)"),
    ],
)
def test_a_decision_missing_a_field_is_refused_by_name_and_records_nothing(
    ledger_url: str, policies, article: str, decision: str, fields: dict[str, object], message: str
) -> None:
    incident_id = _raise(policies)
    record = record_art33 if article == "art33" else record_art34
    with pytest.raises(ConfigError, match=message), ledger_session() as session:
        record(session, incident_id, decision, actor="rssi", **dated(fields))  # type: ignore[operator]
    with ledger_session() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        assert (incident.art33_decision, incident.art34_decision) == (None, None)
    assert _events(f"incident.{article}_decision") == []


def test_who_decides_and_which_incident_are_checked(ledger_url: str, policies) -> None:
    incident_id = _raise(policies)
    with pytest.raises(ConfigError, match="named person"), ledger_session() as session:
        record_art33(session, incident_id, "to_notify", actor="  ")
    with pytest.raises(ConfigError, match="no incident #999"), ledger_session() as session:
        record_art33(session, 999, "to_notify", actor="rssi")
    with ledger_session() as session:
        record_art34(
            session,
            incident_id,
            "communicated",
            actor="rssi",
            communicated_on=_detected_on(incident_id),
            channel="courrier",
        )
    with pytest.raises(ConfigError, match="cannot be undone"), ledger_session() as session:
        record_art34(session, incident_id, "not_required", actor="rssi", ground="a")


def test_free_text_is_masked_before_it_is_stored_or_audited(ledger_url: str, policies) -> None:
    incident_id = _raise(policies)
    with ledger_session() as session:
        record_art33(
            session,
            incident_id,
            "not_required",
            actor="rssi",
            rationale=f"{RATIONALE} Signalé par jean.dupont@example.fr au 06 12 34 56 78.",
        )
    with ledger_session() as session:
        stored = session.get(Incident, incident_id)
        assert stored is not None
        rationale = stored.art33_rationale or ""
    payload = json.dumps(_events("incident.art33_decision")[0].payload, ensure_ascii=False)
    for text in (rationale, payload):
        assert "jean.dupont@example.fr" not in text
        assert "06 12 34 56 78" not in text
        assert "j***@***" in text


def test_resolving_is_refused_while_the_art33_decision_is_open_and_allowed_after(ledger_url: str, policies) -> None:
    incident_id = _raise(policies)
    with ledger_session() as session:
        transition_incident(session, incident_id, IncidentStatus.ACKNOWLEDGED, actor="rssi")
    with (
        pytest.raises(IncidentDecisionRequired, match=r"no GDPR Art\. 33 notification decision") as refused,
        ledger_session() as session,
    ):
        transition_incident(session, incident_id, IncidentStatus.RESOLVED, actor="rssi")
    assert f"charter incidents notify {incident_id}" in str(refused.value)
    assert refused.value.incident_id == incident_id
    with ledger_session() as session:
        record_art33(session, incident_id, "to_notify", actor="rssi")
    with pytest.raises(IncidentDecisionRequired, match="still owed"), ledger_session() as session:
        transition_incident(session, incident_id, IncidentStatus.RESOLVED, actor="rssi")
    with ledger_session() as session:
        assert session.get(Incident, incident_id).status == "acknowledged"  # type: ignore[union-attr]
        record_art33(session, incident_id, "not_required", actor="rssi", rationale=RATIONALE)
    with ledger_session() as session:
        resolved = transition_incident(session, incident_id, IncidentStatus.RESOLVED, actor="rssi", comment="restauré")
        assert resolved.status == "resolved"
        assert verify_chain(session).ok
    assert [e.actor for e in _events("incident.resolved")] == ["rssi"]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The exit code of ``charter argv`` (argparse's own refusals exit through SystemExit), stdout, stderr."""
    try:
        code = charter(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_commands_exit_0_when_recorded_1_when_resolving_too_early_and_2_on_bad_input(
    ledger_url: str, policies, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    incident_id = str(_raise(policies))
    code, _, err = _cli(capsys, "incidents", "resolve", incident_id, "--by", "rssi")
    assert code == 1
    assert "cannot be resolved" in err
    assert f"charter incidents notify {incident_id}" in err
    code, _, err = _cli(capsys, "incidents", "notify", incident_id, "--decision", "not_required", "--by", "rssi")
    assert code == 2
    assert "--rationale" in err
    code, _, err = _cli(capsys, "incidents", "notify", incident_id, "--decision", "notified")
    assert code == 2
    assert "--by" in err
    code, _, err = _cli(capsys, "incidents", "communicate", incident_id, "--decision", "later", "--by", "rssi")
    assert code == 2
    assert "invalid choice" in err
    code, _, err = _cli(capsys, "incidents", "notify", "999", "--decision", "to_notify", "--by", "rssi")
    assert code == 2
    assert "charter incidents list" in err

    code, out, _ = _cli(
        capsys,
        *(
            "incidents",
            "notify",
            incident_id,
            "--decision",
            "notified",
            "--on",
            _detected_on(int(incident_id)).isoformat(),
        ),
        *("--authority", "CNIL", "--reference", "NOT-7", "--by", "rssi", "--json"),
    )
    assert code == 0
    assert json.loads(out)["art33"]["decision"] == "notified"
    code, out, _ = _cli(
        capsys,
        *("incidents", "communicate", incident_id, "--decision", "not_required", "--ground", "a", "--by", "dpo"),
    )
    assert code == 0
    assert "Art. 34 decision `not_required` recorded (by dpo" in out
    code, out, _ = _cli(capsys, "incidents", "resolve", incident_id, "--by", "rssi", "--json")
    assert code == 0
    assert json.loads(out)["status"] == "resolved"

    folder = tmp_path / "registre"
    day = _detected_on(int(incident_id)).isoformat()
    code, out, _ = _cli(capsys, "incidents", "register", "--from", day, "--to", day, "--out", str(folder), "--json")
    assert code == 0
    written = json.loads(out)
    assert written["count"] == 1
    assert sorted(Path(p).suffix for p in written["files"]) == [".csv", ".html", ".json"]
    assert all(Path(p).parent == folder for p in written["files"])
    code, _, err = _cli(capsys, "incidents", "register", "--from", "2026-13-01", "--to", day)
    assert code == 2
    assert "2026-01-31" in err
    code, _, err = _cli(capsys, "incidents", "register", "--from", day, "--to", day, "--format", "pdf")
    assert code == 2
    assert "choose among html, json, csv" in err


def test_the_register_of_a_period_holds_every_incident_with_its_decisions(ledger_url: str, policies) -> None:
    notified = _raise(policies, "run-1")
    not_required = _raise(policies, "run-2", FORMULA_TITLE)
    undecided = _raise(policies, "run-3", "-2+3 lignes modifiées")
    day, last = _detected_on(notified), _detected_on(undecided)
    with ledger_session() as session:
        record_art33(session, notified, "notified", actor="rssi", notified_on=last, authority="CNIL", reference="N-1")
        record_art34(session, notified, "communicated", actor="rssi", communicated_on=last, channel="courrier")
        record_art33(session, not_required, "not_required", actor="dpo", rationale=RATIONALE)
        record_art34(session, not_required, "not_required", actor="dpo", ground="a")
        transition_incident(session, not_required, IncidentStatus.RESOLVED, actor="dpo", comment="restauré")
    start = _day_start(day)
    with ledger_session() as session:
        register = build_register(session, start, _day_start(last) + timedelta(days=1))
        earlier = build_register(session, start - timedelta(days=30), start)
    assert earlier["count"] == 0
    assert register["count"] == 3
    assert register["art33_open"] == 1
    entries = {e["id"]: e for e in register["incidents"]}
    assert sorted(entries) == sorted([notified, not_required, undecided])
    first = entries[notified]
    assert first["decisions"]["art33"] | {"decided_at": None} == {
        "decision": "notified",
        "open": False,
        "decided_by": "rssi",
        "decided_at": None,
        "notified_on": last.isoformat(),
        "authority": "CNIL",
        "reference": "N-1",
        "rationale": None,
        "notified_late": False,
    }
    assert first["decisions"]["art34"]["channel"] == "courrier"
    assert first["facts"]["details"] == {"changed_chunks": [3]}
    assert first["effects"] == "model trained on altered data"
    assert first["remedial_action"]["measures_taken"] == ["refresh blocked", "dataset quarantined"]
    assert first["dates"]["notify_deadline"] is not None
    second = entries[not_required]
    assert (second["decisions"]["art33"]["rationale"], second["decisions"]["art34"]["ground"]) == (RATIONALE, "a")
    assert second["remedial_action"]["resolution"] == ["restauré"]
    assert (second["dates"]["resolved_by"], second["status"]) == ("dpo", "resolved")
    assert entries[undecided]["decisions"]["art33"]["open"]
    assert json.loads(json.dumps(register)) == register

    html = render_html(register)
    for entry_id in entries:
        assert f'id="incident-{entry_id}"' in html
    assert "notifiée à l&#39;autorité de contrôle" in html
    assert "art. 34-3-a" in html
    assert "=HYPERLINK(&#34;https://attaquant.example&#34;;&#34;cliquer&#34;)" in html  # escaped, never markup

    rows = list(csv.DictReader(io.StringIO(render_csv(register)), delimiter=";"))
    assert [int(r["id"]) for r in rows] == [e["id"] for e in register["incidents"]]
    by_id = {int(r["id"]): r for r in rows}
    assert by_id[not_required]["title"] == "'" + FORMULA_TITLE
    assert by_id[undecided]["title"] == "'-2+3 lignes modifiées"
    assert by_id[notified]["title"] == "Corruption de training.csv"
    assert (by_id[notified]["art33_decision"], by_id[notified]["art33_authority"]) == ("notified", "CNIL")
    assert by_id[not_required]["art34_ground"] == "a"
    assert by_id[undecided]["art33_decision"] == ""
    assert all(not value.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for value in r.values())


def test_every_csv_cell_is_quoted_and_the_files_are_written(ledger_url: str, policies, tmp_path: Path) -> None:
    day = _detected_on(_raise(policies, "run-1", "@SUM(A1:A9)"))
    start = _day_start(day)
    with ledger_session() as session:
        register = build_register(session, start, start + timedelta(days=1))
    text = render_csv(register)
    header, row = text.splitlines()[:2]
    assert header.startswith('"id";"title";')
    assert row.startswith('"')
    assert row.endswith('"')
    assert '"\'@SUM(A1:A9)"' in row
    assert len(next(csv.reader(io.StringIO(row), delimiter=";"))) == len(header.split(";"))
    paths = write_register(register, tmp_path / "out", ["csv", "json"])
    assert [p.name for p in paths] == [
        f"registre-violations-{day.isoformat()}-{day.isoformat()}.csv",
        f"registre-violations-{day.isoformat()}-{day.isoformat()}.json",
    ]
    assert paths[0].read_bytes().decode("utf-8-sig") == text
    assert json.loads(paths[1].read_text(encoding="utf-8"))["count"] == 1
    with pytest.raises(ConfigError, match="choose among"):
        write_register(register, tmp_path / "out", ["xlsx"])


def test_the_migration_adds_the_decision_columns_and_matches_the_models(ledger_url: str, policies) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = db.get_engine(ledger_url)
    names = {f"art33_{n}" for n in ("decision", "decided_by", "decided_at", "notified_on", "authority")}
    names |= {"art33_reference", "art33_rationale", "art34_decision", "art34_decided_by", "art34_decided_at"}
    names |= {"art34_communicated_on", "art34_channel", "art34_ground"}
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    config = db._alembic_config(ledger_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    db.reset_caches()
    assert not names & {c["name"] for c in inspect(db.get_engine(ledger_url)).get_columns("incidents")}
    assert db.migrate(ledger_url) == ("0002", db.head_revision())
    columns = {c["name"]: c for c in inspect(db.get_engine(ledger_url)).get_columns("incidents")}
    assert names <= set(columns)
    assert all(columns[name]["nullable"] for name in names)
    incident_id = _raise(policies)
    with ledger_session() as session:
        record_art33(session, incident_id, "not_required", actor="rssi", rationale=RATIONALE)
        assert verify_chain(session).ok
