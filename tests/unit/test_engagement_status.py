"""The status of each engagement in the charter report: only its controls and sources are evidence, and
organisational engagements are kept only on a valid attestation. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.results import CheckResult, Severity, Verdict
from charter_guardrails.decision.model_registry import publish_version, record_approval, set_card_path, suspend
from charter_guardrails.ledger.store import get_or_create_check_run, ledger_session, record_check_result
from charter_guardrails.reporting.attestations import list_attestations, record_attestation, valid_attestations
from charter_guardrails.reporting.charter_report import STATUSES, charter_report, parse_period

from tests.clock import InDays, dated, in_days, today

ORGANISATIONAL = ("equite.3", "maitrise_humaine.5", "durabilite.2")
STATEMENT = "Session de sensibilisation aux biais tenue pour les équipes de conception."


def _report(chain: dict[str, Any] | None = None, *, start: str | None = None, end: str | None = None) -> dict[str, Any]:
    period_start, period_end = parse_period(start, end)
    with ledger_session() as session:
        report = charter_report(session, start=period_start, end=period_end, chain=chain)
    assert set(report["totals"]["by_status"]) == set(STATUSES)
    assert sum(report["totals"]["by_status"].values()) == 21
    return {e["id"]: e for e in report["engagements"]}


def _attest(engagement: str, *, on: date | None = None, expires: date | None = None) -> None:
    with ledger_session() as session:
        record_attestation(
            session,
            engagement_id=engagement,
            statement=STATEMENT,
            document_ref="CR-COMITE-2026-04",
            attested_by="Présidence du Comité",
            attested_on=on or in_days(-10),
            expires_on=expires or in_days(365),
        )


def _result(check: str, verdict: Verdict, *, engagements: list[str] | None = None, run_id: str = "r1") -> None:
    with ledger_session() as session:
        run = get_or_create_check_run(
            session, use_case="citizen_requests", dag_id="citizen_requests_refresh", run_id=run_id
        )
        record_check_result(
            session,
            run,
            CheckResult(
                check=check,
                verdict=verdict,
                severity=Severity.ERROR if verdict is Verdict.FAIL else Severity.INFO,
                engagements=engagements or [],
                summary=f"{check} : {verdict.value}",
            ),
        )


def test_an_empty_ledger_evaluates_nothing_and_attests_nothing(ledger_url: str) -> None:
    engagements = _report({"ok": True})
    assert {e["status"] for e in engagements.values()} == {"non évalué"}
    for engagement in (*ORGANISATIONAL, "durabilite.3"):
        assert engagements[engagement]["status"] == "non évalué"
        assert engagements[engagement]["attestation"] is None
        assert engagements[engagement]["needs_attestation"] is True
    assert engagements["transparence.1"]["status_reasons"] == [
        "aucun résultat de ses contrôles ni autre preuve sur la période"
    ]


def test_organisational_engagements_are_attested_only_with_a_valid_attestation(ledger_url: str) -> None:
    _result("quality", Verdict.PASS)
    before = _report()
    assert [before[e]["status"] for e in ORGANISATIONAL] == ["non évalué"] * 3
    assert "attesté" not in {e["status"] for e in before.values()}

    for engagement in ORGANISATIONAL:
        _attest(engagement)
    after = _report()
    for engagement in ORGANISATIONAL:
        entry = after[engagement]
        assert entry["status"] == "attesté"
        assert entry["attestation"]["valid"] is True
        assert entry["attestation"]["attested_by"] == "Présidence du Comité"
        assert entry["attestation"]["expires_on"] == in_days(365).isoformat()
        assert "attesté par Présidence du Comité" in entry["status_reasons"][0]
    assert after["equite.2"]["status"] == "contrôlé — conforme", "an attestation never stands for a control"
    with ledger_session() as session:
        assert set(valid_attestations(session, today())) == set(ORGANISATIONAL)


def test_an_expired_attestation_counts_as_missing_and_is_shown_as_expired(ledger_url: str) -> None:
    _attest("equite.3", on=in_days(-400), expires=in_days(-30))
    entry = _report()["equite.3"]
    assert entry["status"] == "non évalué"
    assert entry["attestation"]["valid"] is False
    assert entry["attestation"]["expired"] is True
    assert any("expirée" in r for r in entry["status_reasons"])
    with ledger_session() as session:
        assert valid_attestations(session, today()) == {}

    # the same attestation, read over a period that ends before it expired, holds
    past_end = in_days(-60)
    past = _report(start=(past_end - timedelta(days=90)).isoformat(), end=past_end.isoformat())["equite.3"]
    assert past["status"] == "attesté"


def test_an_attestation_given_after_the_period_does_not_count_for_it(ledger_url: str) -> None:
    _attest("maitrise_humaine.5", on=in_days(-5))
    end = in_days(-30)
    entry = _report(start=(end - timedelta(days=60)).isoformat(), end=end.isoformat())["maitrise_humaine.5"]
    assert entry["status"] == "non évalué"
    assert entry["attestation"] is None


def test_a_control_failure_puts_its_engagement_in_gaps_with_the_failure_listed(ledger_url: str) -> None:
    _result("integrity", Verdict.FAIL, engagements=["surete.2"])
    _result("integrity", Verdict.PASS, engagements=["surete.2"], run_id="r2")
    _result("quality", Verdict.PASS, run_id="r2")
    engagements = _report()
    surete2 = engagements["surete.2"]
    assert surete2["status"] == "contrôlé — écarts", "a later pass does not erase a failure of the period"
    assert surete2["status_reasons"] == ["integrity en échec 1 fois (citizen_requests)"]
    assert (surete2["evidence"]["fail"], surete2["evidence"]["pass"]) == (1, 1)
    assert surete2["evidence"]["failures"][0]["check"] == "integrity"
    assert engagements["equite.2"]["status"] == "contrôlé — conforme"
    assert engagements["proportionnalite.3"]["status"] == "contrôlé — conforme"
    assert engagements["equite.1"]["status"] == "non évalué", "fairness and performance never ran"


def test_a_check_that_carries_an_engagement_id_without_being_its_control_is_no_evidence(ledger_url: str) -> None:
    # quality is no control of Transparence 4 or Durabilité 1: carrying their ids does not evaluate them
    _result("quality", Verdict.FAIL, engagements=["transparence.4", "durabilite.1", "equite.2"])
    engagements = _report()
    for engagement in ("transparence.4", "durabilite.1"):
        assert engagements[engagement]["status"] == "non évalué"
        assert engagements[engagement]["evidence"]["results"] == 0
        assert engagements[engagement]["evidence"]["failures"] == []
    assert engagements["equite.2"]["status"] == "contrôlé — écarts"


def test_overrides_are_gaps_of_the_overridden_controls_and_evidence_of_human_control(ledger_url: str) -> None:
    with ledger_session() as session:
        record_approval(
            session,
            use_case="citizen_requests",
            run_id="r1",
            decision="overridden",
            actor="approbateur",
            justification="Écart de représentativité connu, compensé par pondération.",
            overridden_checks=["representativeness"],
        )
    engagements = _report()
    assert engagements["equite.2"]["status"] == "contrôlé — écarts"
    assert engagements["equite.2"]["status_reasons"] == ["dérogation sur representativeness (citizen_requests)"]
    assert engagements["equite.2"]["evidence"]["overrides"] == 1
    assert engagements["maitrise_humaine.2"]["status"] == "contrôlé — conforme"
    assert engagements["maitrise_humaine.2"]["evidence"]["overrides"] == 1
    assert engagements["equite.1"]["status"] == "non évalué", "representativeness is no control of Équité 1"


def _publish(tmp_path: Path, run_id: str, *, label: bool) -> None:
    folder = tmp_path / "models" / run_id
    folder.mkdir(parents=True)
    (folder / "model_card.html").write_text("<h1>Fiche</h1>", encoding="utf-8")
    if label:
        (folder / "ai_label.svg").write_text("<svg/>", encoding="utf-8")
        (folder / "ai_label.json").write_text("{}", encoding="utf-8")
    with ledger_session() as session:
        version = publish_version(
            session,
            use_case="waste_tonnage",
            run_id=run_id,
            metrics={"mae": 12.0},
            artifact_path=None,
            artifact_sha256=None,
            approved_by="approbateur",
        )
        set_card_path(session, version, str(folder / "model_card.html"), "approbateur")


def test_model_cards_ai_labels_and_the_kill_switch_are_sources(ledger_url: str, tmp_path: Path) -> None:
    _publish(tmp_path, "r1", label=True)
    engagements = _report()
    assert engagements["transparence.3"]["status"] == "contrôlé — conforme"
    assert engagements["transparence.4"]["status"] == "contrôlé — conforme"
    assert engagements["transparence.4"]["evidence"]["ai_labels"] == 1
    assert engagements["maitrise_humaine.2"]["status"] == "non évalué"

    _publish(tmp_path, "r2", label=False)
    with ledger_session() as session:
        suspend(session, "waste_tonnage", actor="rssi", reason="Erreurs signalées par les agents.")
    engagements = _report()
    assert engagements["transparence.4"]["status"] == "contrôlé — écarts"
    assert engagements["transparence.4"]["status_reasons"] == ["waste_tonnage v2 publiée sans étiquette IA"]
    assert engagements["transparence.3"]["status"] == "contrôlé — conforme"
    kill_switch = engagements["maitrise_humaine.2"]
    assert (kill_switch["evidence"]["suspensions"], kill_switch["evidence"]["resumptions"]) == (1, 0)
    assert kill_switch["evidence"]["approvals"] == 0, "a suspension is not a decision on a run"
    assert kill_switch["status"] == "contrôlé — conforme"


def test_open_incidents_of_its_types_and_a_broken_chain_are_gaps(ledger_url: str) -> None:
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.incidents.incident import BreachType, IncidentDraft, raise_incident

    with ledger_session() as session:
        raise_incident(
            session,
            load_policy("citizen_requests"),
            IncidentDraft(
                breach_type=BreachType.INTEGRITY,
                severity="high",
                dataset="training",
                run_id="r1",
                title="Corruption du jeu d'entraînement",
                nature="Un bloc du fichier diffère de son manifeste signé.",
                facts={},
                likely_consequences="Un modèle entraîné sur des données altérées.",
                measures_taken=["Entraînement bloqué"],
            ),
        )
    engagements = _report({"ok": False})
    assert engagements["surete.2"]["status"] == "contrôlé — écarts"
    assert engagements["surete.2"]["status_reasons"] == ["1 incident non résolu"]
    assert engagements["surete.1"]["status"] == "non évalué", "an integrity incident is no evidence for Sûreté 1"
    assert engagements["transparence.2"]["status"] == "contrôlé — écarts"
    assert "chaîne d'audit rompue" in engagements["transparence.2"]["status_reasons"]


def test_the_mixed_engagement_needs_both_its_evidence_and_the_committees_attestation(ledger_url: str) -> None:
    assert _report({"ok": True})["durabilite.3"]["status"] == "non évalué"

    _attest("durabilite.3")
    only_attested = _report({"ok": True})["durabilite.3"]
    assert only_attested["status"] == "attesté", "attestation events are not the audit evidence of the period"

    _result("quality", Verdict.PASS)  # its audit event is evidence of the signed chain in the period
    both = _report({"ok": True})["durabilite.3"]
    assert both["status"] == "contrôlé — conforme"
    assert both["evidence"]["audit_events"] >= 1

    broken = _report({"ok": False})["durabilite.3"]
    assert broken["status"] == "contrôlé — écarts"
    assert "chaîne d'audit rompue" in broken["status_reasons"]


def test_the_mixed_engagement_without_attestation_is_in_gaps_for_the_missing_attestation(ledger_url: str) -> None:
    _result("quality", Verdict.PASS)
    entry = _report({"ok": True})["durabilite.3"]
    assert entry["status"] == "contrôlé — écarts"
    assert "attestation du Comité manquante" in entry["status_reasons"]

    _attest("durabilite.3", on=in_days(-400), expires=in_days(-1))
    expired = _report({"ok": True})["durabilite.3"]
    assert expired["status"] == "contrôlé — écarts"
    assert "attestation du Comité manquante" in expired["status_reasons"]
    assert expired["attestation"]["expired"] is True


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"engagement_id": "equite.9"}, "not an engagement of the charter"),
        ({"engagement_id": "equite.2"}, "automated engagement"),
        ({"statement": "Fait."}, "at least 20 characters"),
        ({"document_ref": "  "}, "document reference is empty"),
        ({"attested_by": ""}, "attested_by"),
        ({"expires_on": InDays(-10)}, "expiry date after the attestation date"),
        ({"attested_on": InDays(2)}, "in the future"),
        ({"statement": "Formation tenue, contact : prenom.nom@example.fr pour la liste."}, "personal value"),
    ],
)
def test_an_attestation_is_refused_with_what_to_correct(ledger_url: str, changes: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {
        "engagement_id": "equite.3",
        "statement": STATEMENT,
        "document_ref": "CR-COMITE-2026-04",
        "attested_by": "Présidence du Comité",
        "attested_on": InDays(-10),
        "expires_on": InDays(365),
        **changes,
    }
    with ledger_session() as session, pytest.raises(ConfigError, match=message):
        record_attestation(session, **dated(values))
    with ledger_session() as session:
        assert list_attestations(session) == []


def test_an_attestation_is_a_signed_audit_event(ledger_url: str) -> None:
    from charter_guardrails.ledger.audit import verify_chain
    from charter_guardrails.ledger.models import AuditEvent
    from sqlalchemy import select

    _attest("equite.3")
    with ledger_session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "attestation.recorded")).one()
        assert event.actor == "Présidence du Comité"
        assert event.payload["engagement"] == "equite.3"
        assert event.payload["document_ref"] == "CR-COMITE-2026-04"
        assert event.payload["expires_on"] == in_days(365).isoformat()
        assert verify_chain(session).ok


def test_a_run_refused_by_the_kill_switch_is_human_control_at_work(ledger_url: str) -> None:
    _result("kill_switch", Verdict.FAIL, run_id="refused")
    _result("integrity", Verdict.FAIL, run_id="refused")
    engagements = _report({"ok": True})
    assert engagements["maitrise_humaine.2"]["status"] == "contrôlé — conforme"
    assert engagements["maitrise_humaine.2"]["evidence"]["fail"] == 1
    assert engagements["surete.2"]["status"] == "contrôlé — écarts"


def test_maitrise_humaine_1_counts_the_batches_the_model_in_service_scored(ledger_url: str) -> None:
    """The model in use is watched on what it scores: scored and unscored batches, the largest drift of its
    predictions between two batches; a batch left unscored (kill switch on) is not a gap."""
    from charter_guardrails.ledger.models_predictions import PredictionBatch

    assert _report()["maitrise_humaine.1"]["evidence"]["scored_batches"] == 0
    with ledger_session() as session:
        for n, (status, drift) in enumerate(
            (("scored", None), ("scored", 0.31), ("not_scored", None), ("scored", 0.12))
        ):
            session.add(
                PredictionBatch(
                    use_case="citizen_requests",
                    dag_id="citizen_requests_inference_guardrails",
                    run_id=f"r{n}",
                    batch=f"citizen_requests/accepted/lot{n}.csv",
                    status=status,
                    reason=None if status == "scored" else "kill_switch",
                    model_version=1 if status == "scored" else None,
                    rows=100,
                    distribution={},
                    drift=drift,
                )
            )
    engagement = _report()["maitrise_humaine.1"]
    evidence = engagement["evidence"]
    assert (evidence["scored_batches"], evidence["not_scored_batches"]) == (3, 1)
    assert evidence["max_prediction_drift"] == 0.31
    assert engagement["status"] == "contrôlé — conforme"
    assert any("3 lots notés par le modèle en service (citizen_requests)" in r for r in engagement["status_reasons"])
