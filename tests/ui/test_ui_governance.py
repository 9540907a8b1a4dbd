"""The governance library behind the view: engagements, overview, run report sections, masking,
deadlines and the charter report, on a ledger filled through the library's own functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from charte_ledger import LEAKED_PHONE, LedgerRows, populate_ledger
from charter_guardrails.core.results import PRINCIPLES
from charter_guardrails.reporting import governance as gov


def test_the_charter_has_21_engagements_over_its_six_principles() -> None:
    engagements = gov.load_engagements()
    assert len(engagements) == 21
    assert {e.principle for e in engagements} == set(PRINCIPLES)
    assert {"surete.2", "equite.1", "maitrise_humaine.6", "durabilite.3", "transparence.4", "proportionnalite.3"} <= {
        e.id for e in engagements
    }
    assert "integrity" in next(e for e in engagements if e.id == "surete.2").controls


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("appelez le 06 12 34 56 78 svp", "06 12 34 56 78"),
        ("tél. +33 6 12 34 56 78", "+33 6 12 34 56 78"),
        ("écrire à jean.dupont@example.fr", "jean.dupont@example.fr"),
        ("NIR 1 85 05 13 055 123 45", "1 85 05 13 055 123 45"),
    ],
)
def test_personal_values_are_masked(text: str, raw: str) -> None:
    masked = gov.mask_personal_values(text)
    assert raw not in masked
    assert "*" in masked


def test_masking_keeps_counts_dates_and_masked_examples() -> None:
    for text in ("37 numéros sur 5000 lignes", "2026-11-28T09:00:00+00:00", "06 ** ** ** 78", "PSI 0,41 > 0,2"):
        assert gov.mask_personal_values(text) == text


def test_time_left_on_the_72_hour_deadline() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert gov.time_left(now + timedelta(hours=5, minutes=7), now)["label"] == "5 h 07 min restantes"
    late = gov.time_left(now - timedelta(hours=2), now)
    assert late["overdue"]
    assert late["label"] == "dépassé de 2 h 00 min"


@pytest.fixture
def filled_ledger(ledger_url: str, charter_home: Path) -> LedgerRows:
    """The UI tests' ledger on SQLite and on PostgreSQL (the ``ledger_url`` fixture)."""
    return populate_ledger(ledger_url, charter_home / "reports")


def test_overview_run_report_and_charter_report(filled_ledger: LedgerRows) -> None:
    from charter_guardrails.ledger.store import ledger_session

    rows = filled_ledger
    with ledger_session() as session:
        overview = gov.use_case_overview(session, "citizen_requests")
        assert overview["principles"]["surete"]["verdict"] == "fail"
        assert overview["principles"]["equite"]["verdict"] == "fail"  # drift fails, representativeness warns
        assert overview["principles"]["durabilite"]["verdict"] == "pass"
        assert sorted(i["id"] for i in overview["open_incidents"]) == [rows.incident_id, rows.pii_incident_id]
        waste = gov.use_case_overview(session, "waste_tonnage")
        assert waste["production_model"]["version"] == 3
        assert waste["production_model"]["suspended"] is False

        report = gov.run_report(session, rows.blocked_run_pk)
        assert report is not None
        assert report["verdict"] == "fail"
        assert report["run"]["decision"] == "blocked"
        assert {r["check"] for r in report["failed"]} == {"integrity", "personal_data", "drift"}
        by_check = {r["check"]: r for r in report["results"]}
        assert LEAKED_PHONE not in str(report)
        assert by_check["personal_data"]["pii_findings"][0]["masked_examples"] == ["06 ** ** ** 78", "07 ** ** ** 12"]
        drift = {f["feature"]: f for f in by_check["drift"]["sections"]["drift"]}
        assert drift["channel"]["drifted"]
        assert drift["channel"]["score"] == {
            "name": "js_distance",
            "value": 0.41,
            "threshold": 0.1,
        }
        assert drift["message"]["score"] == {"name": "length_psi", "value": 0.03, "threshold": 0.2}
        assert not drift["message"]["drifted"]
        groups = by_check["representativeness"]["sections"]["groups"][0]
        assert groups["column"] == "arrondissement"
        shares = {g["group"]: g for g in groups["groups"]}
        assert shares["13015"]["gap_pp"] == pytest.approx(-6.1)
        assert shares["13015"]["reference"] == pytest.approx(0.081)
        assert [r["group"] for r in by_check["fairness"]["sections"]["fairness"]] == ["18-29", "30-59", "60+"]
        energy = by_check["footprint"]["sections"]["energy"]
        assert (energy["energy_kwh"], energy["gco2e"], energy["gain_per_kwh"]) == (0.012, 0.7, 1.6)

        start, end = gov.parse_period(None, None)
        charter = gov.charter_report(session, start=start, end=end, chain={"ok": True})
    engagements = {e["id"]: e for e in charter["engagements"]}
    assert len(engagements) == 21
    surete2 = engagements["surete.2"]["evidence"]
    assert (surete2["pass"], surete2["fail"], surete2["incidents"]) == (1, 1, 1)
    assert engagements["surete.2"]["status"] == "contrôlé — écarts"
    assert "integrity en échec 1 fois (citizen_requests)" in engagements["surete.2"]["status_reasons"]
    assert surete2["last_run"] is not None
    assert surete2["failures"][0]["check"] == "integrity"
    assert engagements["surete.1"]["evidence"]["incidents"] == 1, (
        "only the confidentiality incident counts for Sûreté 1"
    )
    assert engagements["durabilite.1"]["status"] == "contrôlé — conforme"
    assert engagements["transparence.4"]["status"] == "contrôlé — conforme", "the AI label lies beside the card"
    assert engagements["equite.3"]["status"] == "non évalué", "organisational, and nothing attests it"
    assert charter["totals"]["runs"] == 2
    assert charter["totals"]["incidents"] == 2

    later_start, later_end = gov.parse_period("2030-01-01", "2030-06-30")
    with ledger_session() as session:
        empty = gov.charter_report(session, start=later_start, end=later_end)
    assert all(e["evidence"]["results"] == 0 for e in empty["engagements"])


def test_drift_features_read_the_evidence_the_drift_check_writes() -> None:
    from charter_guardrails.core.evidence import DriftEvidence

    evidence = DriftEvidence.model_validate(
        {
            "features": {
                "delay_days": {
                    "psi": 0.5,
                    "ks_statistic": 0.3,
                    "ks_pvalue": 1e-6,
                    "batch_n": 400,
                    "kind": "numeric",
                    "drifted": True,
                    "reasons": ["PSI 0.500 > 0.2"],
                }
            },
            "drifted": ["delay_days"],
            "missing_features": [],
            "thresholds": {
                "psi_max": 0.2,
                "ks_pvalue_min": 0.01,
                "chi2_pvalue_min": 0.01,
                "js_max": 0.1,
                "text_length_psi_max": 0.2,
                "vocabulary_oov_max": 0.3,
                "max_drifted_features": 1,
            },
        }
    )
    features = gov.drift_features(evidence)
    assert features[0]["score"] == {"name": "psi", "value": 0.5, "threshold": 0.2}
    assert features[0]["drifted"]
    assert features[0]["histogram"] is None
    assert list(features[0]["stats"]) == [
        "feature",
        "psi",
        "ks_statistic",
        "ks_pvalue",
        "batch_n",
        "kind",
        "drifted",
        "reasons",
    ]


def test_svg_charts_escape_labels() -> None:
    from charter_airflow.ui.charts import grouped_bars, stacked_verdicts

    svg = grouped_bars(["<script>", "13015"], [0.1, 0.08], [0.2, 0.02], title="Parts", percent=True)
    assert svg.startswith("<svg")
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert svg.count("<rect") >= 4
    bars = stacked_verdicts([{"day": "2026-11-27", "pass": 3, "warn": 1, "fail": 0, "total": 4}], title="Résultats")
    assert bars.count("<rect") >= 2 + 3  # two bars and the legend
