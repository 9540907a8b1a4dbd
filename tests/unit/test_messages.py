"""Check messages: the French catalogue covers every message, results keep their message in the ledger,
and the views, the brief and the command line read French."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from charter_guardrails.checks.quality import drift, representativeness, suite_run
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core import messages
from charter_guardrails.core.catalogue import CATALOGUE, CheckName
from charter_guardrails.core.messages import Message, Template, joined, render, render_summary
from charter_guardrails.core.results import CheckResult, Verdict
from charter_guardrails.ledger import db
from charter_guardrails.ledger.models import CheckResultRecord
from charter_guardrails.ledger.store import (
    get_or_create_check_run,
    ledger_session,
    record_check_result,
    results_for_run,
)
from charter_guardrails.refresh import footprint
from charter_guardrails.reporting.ledger_rows import result_dict
from sqlalchemy import inspect, select, text

LIBRARY = Path(messages.__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"%\((\w+)\)[-+ #0]*\d*(?:\.\d+)?([a-z])")
LEFTOVER = re.compile(r"%\(\w+\)|\{\w+\}")


def _catalogue(path: Path):
    with path.open("rb") as handle:
        return read_po(handle, locale="fr", domain=messages.DOMAIN)


def _sample_params(template: Template) -> dict[str, object]:
    """A value per placeholder: a number for the numeric conversions, a structural name otherwise."""
    return {
        name: (0.25 if conversion in "efg" else 7 if conversion in "di" else f"{name}_1")
        for name, conversion in PLACEHOLDER.findall(template.msgid)
    }


def test_every_message_the_code_can_emit_is_translated_in_french() -> None:
    templates = messages.load_all_templates()
    french = {m.id: m for m in _catalogue(messages.catalogue_path("fr")) if m.id}
    assert len(templates) > 50
    assert set(templates) <= set(french), sorted(set(templates) - set(french))
    for msgid in templates:
        entry = french[msgid]
        assert entry.string, f"no French text for {msgid!r}"
        assert not entry.fuzzy, msgid
        if msgid not in messages.IDENTICAL:
            assert entry.string != msgid, f"{msgid!r} is not translated"
        assert sorted(PLACEHOLDER.findall(entry.string)) == sorted(PLACEHOLDER.findall(msgid)), msgid


def test_the_catalogues_hold_what_pybabel_extracts_and_nothing_stale() -> None:
    extracted = messages.extract_msgids(p for p in LIBRARY.rglob("*.py") if "migrations" not in p.parts)
    template = {m.id for m in _catalogue(messages.catalogue_path("fr", "pot")) if m.id}
    french = _catalogue(messages.catalogue_path("fr"))
    assert extracted == set(messages.load_all_templates())
    assert template == extracted
    assert {m.id for m in french if m.id} == extracted
    assert list(french.check()) == []  # python-format placeholders agree between msgid and msgstr


@pytest.mark.parametrize("check", list(CheckName))
def test_every_check_renders_its_summaries_in_english_and_french(check: CheckName) -> None:
    templates = messages.templates_of(check.value)
    translated = [t for t in templates if t.msgid not in messages.IDENTICAL]
    assert translated, f"check {check} declares no message"
    for template in translated:
        message = template(**_sample_params(template))
        english, french = render(message, "en"), render(message, "fr")
        assert english == template.msgid % _sample_params(template)
        assert french != english, template.msgid
        assert not LEFTOVER.search(french), french
        assert not LEFTOVER.search(english), english


def test_a_composite_summary_translates_part_by_part() -> None:
    measured = footprint.MEASURED_PER_KWH(wh=1200.0, gco2e=3.1, metric="accuracy", gain=-0.01, per_kwh=-0.008)
    problems = [footprint.OVER_BUDGET(kwh=1.2, budget=0.5), footprint.WORSE_CANDIDATE(gain=-0.01)]
    message = footprint.NOT_WORTH_FOOTPRINT(problems=problems, measured=measured)

    english, french = render(message, "en"), render(message, "fr")

    assert english.startswith("the refresh is not worth its footprint: the training used 1.200000 kWh")
    assert "; the candidate is worse than the reference (gain -0.0100)" in english
    assert french.startswith("le réentraînement ne vaut pas son empreinte : l’entraînement a consommé 1.200000 kWh")
    assert " ; le candidat est moins bon que la référence" in french
    assert "pour un gain de accuracy de -0.0100" in french
    assert message.msgids() == [
        footprint.NOT_WORTH_FOOTPRINT.msgid,
        footprint.OVER_BUDGET.msgid,
        footprint.WORSE_CANDIDATE.msgid,
        footprint.MEASURED_PER_KWH.msgid,
    ]


def test_joined_items_keep_their_separator() -> None:
    reasons = joined([drift.TEXT_LENGTH_DRIFT(psi=0.4, psi_max=0.2), drift.VOCABULARY_DRIFT(oov=12.0, oov_max=10.0)])
    message = drift.FEATURE_DRIFTED(feature="channel", reasons=reasons)
    assert render(message, "en") == "channel: length PSI 0.400 > 0.2, 12% of words unseen in training > 10%"
    assert render(message, "fr") == (
        "channel : PSI des longueurs 0.400 > 0.2, 12 % des mots absents de l’entraînement > 10 %"
    )


def test_a_template_refuses_parameters_that_do_not_fit() -> None:
    with pytest.raises(messages.MessageError, match="cannot be rendered"):
        suite_run.SUITE_PASSED(suite="s", dataset="d")
    with pytest.raises(messages.MessageError, match="cannot be rendered"):
        footprint.OVER_BUDGET(kwh="a lot", budget=0.5)


def test_a_result_with_a_message_has_its_english_rendering_as_summary_and_round_trips() -> None:
    message = representativeness.NO_EQUITY_GROUPS(use_case="citizen_requests")
    result = CheckResult(check=CheckName.REPRESENTATIVENESS, verdict=Verdict.PASS, message=message)

    assert result.summary == "use case citizen_requests declares no equity groups: nothing to compare"
    assert result.message_id == representativeness.NO_EQUITY_GROUPS.msgid
    assert result.message_params == {"use_case": "citizen_requests"}
    assert (
        result.summary_in("fr") == "le cas d’usage citizen_requests ne déclare aucun groupe d’équité : rien à comparer"
    )
    assert result.summary_in("en") == result.summary
    assert CheckResult.from_json_dict(result.to_json_dict()) == result
    assert CheckResult.model_validate_json(result.model_dump_json()).summary_in("fr") == result.summary_in("fr")


def test_a_result_needs_a_summary_or_a_message() -> None:
    with pytest.raises(ValueError, match="needs a summary or a message"):
        CheckResult(check=CheckName.DRIFT, verdict=Verdict.PASS)


def test_an_unknown_message_falls_back_to_the_stored_english_summary() -> None:
    assert render_summary("stored text", "a sentence no catalogue knows %(n)s", {"n": 1}, "fr") == "stored text"
    assert render_summary("stored text", None, None, "fr") == "stored text"
    known = footprint.WORSE_CANDIDATE.msgid
    assert render_summary("stored text", known, {"gain": "not a number"}, "fr") == "stored text"
    nested = {"problems": [{"msgid": "unknown part", "params": {}}], "measured": "m"}
    assert render_summary("stored text", footprint.NOT_WORTH_FOOTPRINT.msgid, nested, "fr") == "stored text"
    assert (
        render(Message(msgid="an unknown sentence about %(n)s", params={"n": 2}), "fr") == "an unknown sentence about 2"
    )


def _record(result: CheckResult) -> None:
    with ledger_session() as session:
        run = get_or_create_check_run(session, use_case="citizen_requests", dag_id="d", run_id="r1")
        record_check_result(session, run, result)


def test_a_stored_result_reads_back_with_its_message_and_renders_in_french(charter_home, monkeypatch) -> None:
    url = f"sqlite:///{charter_home / 'messages.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)
    try:
        problems = [representativeness.GROUP_COLUMN_ABSENT(column="arrondissement")]
        message = representativeness.NOT_REPRESENTATIVE(columns=["arrondissement"], problems=1, reasons=problems)
        _record(CheckResult(check=CheckName.REPRESENTATIVENESS, verdict=Verdict.FAIL, message=message))

        with ledger_session() as session:
            run = get_or_create_check_run(session, use_case="citizen_requests", dag_id="d", run_id="r1")
            (result,) = results_for_run(session, run)
            row = session.scalars(select(CheckResultRecord)).one()
            view = result_dict(row)
    finally:
        db.reset_caches()

    assert result.message == message
    assert row.message_id == representativeness.NOT_REPRESENTATIVE.msgid
    assert row.message_params == message.params
    french = (
        "les données d’entraînement ne sont PAS représentatives des groupes déclarés (arrondissement) : "
        "1 problème(s) — la colonne de groupe arrondissement est absente des données"
    )
    assert result.summary_in("fr") == french
    assert view["summary"] == french
    assert view["summary_en"] == result.summary
    assert result.summary.startswith("training data is NOT representative")


def test_an_existing_ledger_gains_the_message_columns_and_keeps_its_rows(charter_home, monkeypatch) -> None:
    from alembic import command

    url = f"sqlite:///{charter_home / 'existing.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    engine = db.get_engine(url)
    config = db._alembic_config(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO check_runs (use_case, dag_id, run_id, started_at, blocked_by, reports) "
                    "VALUES ('citizen_requests', 'd', 'r0', '2026-12-01 00:00:00', '[]', '{}')"
                )
            )
            connection.execute(
                text(
                    'INSERT INTO check_results (check_run_id, "check", dataset, verdict, severity, engagements, '
                    "summary, metrics, evidence, created_at) VALUES (1, 'drift', 'inference', 'pass', 'info', '[]', "
                    "'no drift on 3 feature(s) against the training reference', '{}', '{}', '2026-12-01 00:00:00')"
                )
            )
        assert {c["name"] for c in inspect(engine).get_columns("check_results")} >= {"summary", "evidence"}

        before, after = db.migrate(url)

        assert (before, after) == ("0001", db.head_revision())
        columns = {c["name"]: c for c in inspect(engine).get_columns("check_results")}
        assert columns["message_id"]["nullable"]
        assert columns["message_params"]["nullable"]
        with ledger_session() as session:
            row = session.scalars(select(CheckResultRecord)).one()
            view = result_dict(row)
    finally:
        db.reset_caches()
    assert row.message_id is None
    assert row.message_params is None
    assert view["summary"] == "no drift on 3 feature(s) against the training reference"  # no message: as stored


def test_the_command_line_prints_french_with_lang_fr(charter_home, monkeypatch, capsys) -> None:
    url = f"sqlite:///{charter_home / 'cli.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)
    data = charter_home / "training.csv"
    data.write_text("id;channel\n1;web\n", encoding="utf-8")
    ref = "citizen_requests.training"
    try:
        assert charter(["--lang", "fr", "verify", str(data), "--dataset", ref]) == 2
        unregistered = capsys.readouterr().out
        assert charter(["hash", str(data), "--dataset", ref]) == 0
        data.write_text("id;channel\n1;tel\n", encoding="utf-8")
        assert charter(["--lang", "fr", "verify", str(data), "--dataset", ref, "--no-record"]) == 1
        french = capsys.readouterr().out
        assert charter(["verify", str(data), "--dataset", ref, "--no-record"]) == 1
        english = capsys.readouterr().out
    finally:
        db.reset_caches()

    assert unregistered.startswith(f"NO MANIFEST: aucun manifeste enregistré pour {ref} : lancez d’abord")
    assert f"{ref} : training.csv ne correspond plus à son manifeste signé n°1 : bloc 0 modifié (octets" in french
    assert f"{ref}: training.csv differs from its signed manifest #1: chunk 0 (bytes" in english
    assert "manifeste" not in english


def test_the_language_option_refuses_an_unknown_language(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        charter(["--lang", "de", "privacy", "scan", "x.csv"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'de'" in capsys.readouterr().err


def test_every_check_of_the_catalogue_has_its_modules() -> None:
    assert set(messages.CHECK_MESSAGE_MODULES) == {c.value for c in CATALOGUE}


def test_an_incident_alert_states_its_facts_in_french() -> None:
    from charter_guardrails.incidents.messages import Alert, text_body

    def body(facts: dict[str, object]) -> str:
        payload = {"incident_id": 3, "severity": "high", "breach_type": "gdpr_compliance", "facts": facts}
        return text_body(Alert(1, 3, "email", "dpo@example.org", "key-3", payload, 1))

    privacy = body(
        {
            "columns": [{"column": "channel", "forbidden": ["FR_PHONE", "EMAIL_ADDRESS"], "forbidden_rows": 4}],
            "scan_mode": "sampling",
            "rows": 1000,
            "scanned_rows": 200,
        }
    )
    integrity = body({"outcome": "data_changed", "file": "training.csv", "changed_chunk_count": 1})

    assert "colonne channel : FR_PHONE/EMAIL_ADDRESS (4 ligne(s))" in privacy
    assert "analyse par échantillon, 200 ligne(s) analysée(s) sur 1000" in privacy
    assert '"columns"' not in privacy
    assert "résultat : données modifiées" in integrity
