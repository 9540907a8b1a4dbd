"""The DPO's documents: the Art. 30 register entry and the draft AIPD of both shipped use cases, in HTML, JSON and
PDF, signed; every value taken from the policy is the policy's under its key path; every field only a person can
fill is marked and empty; an undeclared register section is reported missing; no personal value from the ledger."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

USE_CASES = ("citizen_requests", "waste_tonnage")
RAW_PHONE = "06 12 34 56 78"
MASKED_EXAMPLE = "06 ** ** ** 78"
RAW_EMAIL = "jeanne.dupont@example.org"
HUMAN_MARK = "à compléter par"


#: The evidence of a personal-data failure as the check writes it, but for a raw phone number leaked by mistake.
PII_EVIDENCE = {
    "mode": "exhaustive",
    "guarantee": "every row scanned",
    "min_score": 0.5,
    "dataset_personal_data": True,
    "columns": [
        {
            "column": "channel",
            "declared": True,
            "allowed": [],
            "found": ["FR_PHONE"],
            "forbidden": ["FR_PHONE"],
            "forbidden_rows": 37,
            "ok": False,
            "reason": f"exemple non masqué par erreur : {RAW_PHONE}",
            "warning": None,
        }
    ],
    "declared_columns_absent": [],
}


@pytest.fixture
def ledger(charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite ledger holding a blocked run of citizen_requests: a personal-data failure whose evidence
    leaked a raw phone number, a masked PII finding, drift and fairness results, and an incident."""
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.ledger import db
    from charter_guardrails.ledger.store import get_or_create_check_run, ledger_session

    url = f"sqlite:///{charter_home / 'ledger.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)
    policy = load_policy("citizen_requests")
    with ledger_session(url) as session:
        run = get_or_create_check_run(session, use_case=policy.id, dag_id="citizen_requests_refresh", run_id="r1")
        _record_results(session, run)
        _raise_incident(session, policy)
    return url


def _record_results(session: Any, run: Any) -> None:
    """Results of the run: personal data (with a raw value leaked into its summary and evidence) and its masked
    finding, drift, fairness and quality."""
    from charter_guardrails.core.engagements import engagements_of
    from charter_guardrails.core.results import CheckResult, Severity, Verdict
    from charter_guardrails.ledger.models import PiiFinding
    from charter_guardrails.ledger.store import record_check_result

    pii = record_check_result(
        session,
        run,
        CheckResult(
            check="personal_data",
            verdict=Verdict.FAIL,
            severity=Severity.ERROR,
            engagements=engagements_of("personal_data"),
            dataset="training",
            summary=f"Téléphone trouvé dans channel : {RAW_PHONE}",
            metrics={"rows_scanned": 5000, "findings": 37},
            evidence=PII_EVIDENCE,
        ),
    )
    session.add(
        PiiFinding(
            check_result_id=pii.id,
            column="channel",
            entity_type="FR_PHONE",
            count=37,
            share=0.0074,
            mean_score=0.82,
            max_score=0.95,
            masked_examples=[MASKED_EXAMPLE],
            allowed=False,
        )
    )
    for check, verdict, metrics in (
        ("drift", Verdict.FAIL, {"features": 2, "drifted_features": 1}),
        ("fairness", Verdict.PASS, {"max_difference": 0.04, "limit": 0.2}),
        ("quality", Verdict.PASS, {"success_percent": 100.0}),
    ):
        record_check_result(
            session,
            run,
            CheckResult(
                check=check,
                verdict=verdict,
                severity=Severity.ERROR if verdict is Verdict.FAIL else Severity.INFO,
                engagements=engagements_of(check),
                dataset="training",
                summary=f"{check} : signalé par {RAW_EMAIL}",
                metrics=metrics,
            ),
        )


def _raise_incident(session: Any, policy: Any) -> None:
    """A confidentiality incident whose title and nature carry raw values (a check must never do that)."""
    from charter_guardrails.incidents.incident import BreachType, IncidentDraft, raise_incident

    raise_incident(
        session,
        policy,
        IncidentDraft(
            breach_type=BreachType.CONFIDENTIALITY,
            severity="medium",
            dataset="training",
            run_id="r1",
            title=f"Téléphone {RAW_PHONE} signalé par {RAW_EMAIL}",
            nature=f"37 numéros dont {RAW_PHONE}",
            facts={"column": "channel", "count": 37},
            likely_consequences="Exposition de coordonnées d'usagers.",
            measures_taken=["Entraînement bloqué"],
            approx_records=37,
        ),
    )


def _documents(policy_id: str) -> dict[str, dict[str, Any]]:
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting.dpo_aipd import build_aipd
    from charter_guardrails.reporting.dpo_register import build_register_entry

    policy = load_policy(policy_id)
    with ledger_session() as session:
        return {"registre": build_register_entry(policy, session), "aipd": build_aipd(policy, session)}


def _fields(node: Any) -> list[dict[str, Any]]:
    """Every field of a document (a mapping with a label, a display and a value), walked here independently."""
    if isinstance(node, dict):
        own = [node] if {"label", "display", "value"} <= node.keys() else []
        return own + [f for value in node.values() for f in _fields(value)]
    if isinstance(node, list):
        return [f for value in node for f in _fields(value)]
    return []


def _at(tree: Any, path: str) -> Any:
    """The value under a key path such as ``datasets[0].retention.days``."""
    for name, index in re.findall(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", path):
        tree = tree[name] if name else tree[int(index)]
    return tree


def test_both_documents_of_both_use_cases_are_written_in_three_formats_and_signed(ledger: str, tmp_path: Path) -> None:
    from charter_guardrails.core.keys import load_public_key
    from charter_guardrails.reporting.dpo_files import write_dpo_document
    from charter_guardrails.reporting.report_signing import verify_report

    out = tmp_path / "dpo"
    for use_case in USE_CASES:
        for kind, doc in _documents(use_case).items():
            written = write_dpo_document(doc, out)
            assert sorted(written) == ["html", "json", "pdf"]
            assert written["pdf"].read_bytes().startswith(b"%PDF-")
            assert json.loads(written["json"].read_text(encoding="utf-8"))["use_case"] == use_case
            html = written["html"].read_text(encoding="utf-8")
            assert html.startswith("<!doctype html>")
            assert str(escape(doc["title"])) in html
            for path in written.values():
                assert path.name.startswith(f"{kind}-{use_case}.")
                assert verify_report(path, load_public_key()).ok, path
    assert len(list(out.glob("*.sig.json"))) == 12


@pytest.mark.parametrize("use_case", USE_CASES)
def test_every_field_taken_from_the_policy_is_the_policys_value_under_its_key_path(ledger: str, use_case: str) -> None:
    from charter_guardrails.core.policy import load_policy

    policy = load_policy(use_case).model_dump(mode="json")
    for kind, doc in _documents(use_case).items():
        sourced = [f for f in _fields(doc) if "source" in f]
        assert len(sourced) >= 15, kind
        for field in sourced:
            expected = _at(policy, field["source"])
            if field.get("missing"):
                assert expected is None, field
                assert field["value"] is None
            else:
                assert field["value"] == expected, field
        paths = {f["source"] for f in sourced}
        assert {"purpose", "legal_basis", "dpo"} <= paths, kind
    register = _documents(use_case)["registre"]
    paths = {f["source"] for f in _fields(register) if "source" in f}
    if policy["datasets"][0]["personal_data"]:
        assert "datasets[0].retention.days" in paths
        assert "datasets[0].columns[2].personal_data" in paths  # message: free text
    assert "processing.transfers" in paths  # declared empty: "no transfer", not missing


def test_fields_only_a_person_can_fill_are_marked_and_empty(ledger: str) -> None:
    from charter_guardrails.reporting.dpo_files import render_html

    docs = _documents("citizen_requests")
    aipd_human = {f["label"] for f in _fields(docs["aipd"]) if f.get("human_only")}
    assert {"Vraisemblance", "Gravité", "Avis du DPO", "Avis des personnes concernées ou de leurs représentants"} <= (
        aipd_human
    )
    for doc in docs.values():
        human = [f for f in _fields(doc) if f.get("human_only")]
        assert human
        assert len(human) == doc["completeness"]["human_only"]
        for field in human:
            assert field["value"] is None, field
            assert field["display"].startswith(HUMAN_MARK), field
            assert field["to_complete_by"], field
            assert "source" not in field
        html = render_html(doc)
        assert html.count('<tr class="human-only">') == len(human)
        assert html.count('<span class="todo">' + HUMAN_MARK) == len(human) + 1  # and once in the legend
    # Likelihood and severity are asked for each of the three risks of the CNIL method.
    risks = docs["aipd"]["parts"][2]["sections"]
    assert [r["id"] for r in risks] == ["acces", "modification", "disparition"]
    for risk in risks:
        marked = {f["label"] for f in risk["fields"] if f.get("human_only")}
        assert {"Vraisemblance", "Gravité", "Sources de risque", "Impacts sur les personnes"} <= marked


def test_a_policy_without_the_processing_section_reports_what_is_missing(
    ledger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.reporting.dpo_files import render_html

    shipped_dir = get_settings().policies_dir
    raw = yaml.safe_load((shipped_dir / "citizen_requests.yaml").read_text(encoding="utf-8"))
    del raw["processing"]
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "citizen_requests.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(folder))

    docs = _documents("citizen_requests")
    missing = docs["registre"]["completeness"]["missing"]
    for key in ("controller", "recipients", "transfers", "processor_contracts", "entry_ref", "joint_controllers"):
        assert f"processing.{key}" in missing, key
    assert "processing.organisational_measures" in docs["aipd"]["completeness"]["missing"]
    html = render_html(docs["registre"])
    assert "non déclaré" in html
    assert "processing.transfers" in html
    assert "aucun (déclaré vide)" not in html  # nothing declared, so nothing declared empty either

    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(shipped_dir))
    shipped = _documents("waste_tonnage")["registre"]  # a shipped policy that leaves some keys out
    assert "processing.entry_ref" in shipped["completeness"]["missing"]
    assert "processing.transfers" not in shipped["completeness"]["missing"]


def test_no_personal_value_from_the_ledger_reaches_the_documents(ledger: str) -> None:
    from charter_guardrails.reporting.dpo_files import render_html, render_json

    docs = _documents("citizen_requests")
    history = docs["aipd"]["ledger_history"]
    assert history["personal_data_findings"]["FR_PHONE"] == {"findings": 1, "values": 37, "not_allowed": 37}
    assert history["incidents"]["by_breach_type"] == {"confidentiality": 1}
    assert history["checks"]["drift"]["verdicts"]["fail"] == 1
    assert history["checks"]["fairness"]["last"]["metrics"] == {"max_difference": 0.04, "limit": 0.2}
    for doc in docs.values():
        for text in (render_json(doc), render_html(doc)):
            for value in (RAW_PHONE, MASKED_EXAMPLE, RAW_EMAIL, "12 34 56"):
                assert value not in text
