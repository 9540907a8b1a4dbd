"""The catalogue of checks is the one list: engagements.yaml, the gate and CheckResult agree with it."""

from __future__ import annotations

import pytest
from charter_guardrails.core.catalogue import CATALOGUE, OVERRIDABLE_CHECKS, CheckName
from charter_guardrails.core.engagements import ENGAGEMENTS_FILE, load_engagements
from charter_guardrails.core.evidence import DriftThresholds, FairnessEvidence
from charter_guardrails.core.policy_models import DriftPolicy
from charter_guardrails.core.results import CheckResult, with_report_error
from charter_guardrails.decision.gate import INFERENCE_CHECKS, NEVER_OVERRIDABLE, OVERRIDABLE, REFRESH_CHECKS
from pydantic import ValidationError


def test_every_check_has_a_spec() -> None:
    assert set(CATALOGUE) == set(CheckName)
    assert all(spec.name is name for name, spec in CATALOGUE.items())


def test_every_control_of_the_charter_is_a_check() -> None:
    controls = {c for e in load_engagements() for c in e.controls}
    assert controls, "engagements.yaml names controls"
    assert controls <= {n.value for n in CheckName}, controls - {n.value for n in CheckName}


def test_every_check_is_reached_from_an_engagement() -> None:
    reached = {c for e in load_engagements() for c in e.controls}
    assert set(CheckName) <= reached, set(CheckName) - reached


def test_every_engagement_a_check_serves_exists() -> None:
    known = {e.id for e in load_engagements()}
    for name, spec in CATALOGUE.items():
        assert spec.engagements, name
        assert set(spec.engagements) <= known, (name, set(spec.engagements) - known)


def test_a_control_that_is_not_a_check_is_a_config_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from charter_guardrails.core.errors import ConfigError

    bad = tmp_path / "engagements.yaml"
    text = ENGAGEMENTS_FILE.read_text(encoding="utf-8").replace("controls: [integrity]", "controls: [ai_label]", 1)
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"controls: \['ai_label'\] are not checks"):
        load_engagements.__wrapped__(bad)


def test_evidence_that_does_not_fit_its_model_is_rejected() -> None:
    with pytest.raises(ValidationError, match="does not fit KillSwitchEvidence"):
        CheckResult(check=CheckName.KILL_SWITCH, verdict="pass", summary="s", evidence={"suspended": "maybe"})
    with pytest.raises(ValidationError, match="does not fit FairnessEvidence"):
        CheckResult(check=CheckName.FAIRNESS, verdict="pass", summary="s", evidence={"groups": {"13001": 0.8}})
    with pytest.raises(ValidationError):
        CheckResult(check="model_card", verdict="pass", summary="s")


def test_evidence_stays_a_dict_on_the_wire_and_reads_back_typed() -> None:
    evidence = {
        "positive_label": None,
        "max_metric_difference": 0.2,
        "breaches": [],
        "small_groups_left_out": {"age_band": {"90+": 3}},
        "not_measurable": [],
        "table": [{"column": "age_band", "group": "18-29", "accuracy": 0.84, "count": 310, "compared": True}],
        "holdout_rows": 313,
    }
    result = CheckResult(check=CheckName.FAIRNESS, verdict="pass", summary="s", evidence=evidence)
    wire = result.to_json_dict()
    assert wire["check"] == "fairness"
    assert wire["evidence"] == evidence
    typed = CheckResult.from_json_dict(wire).typed_evidence()
    assert isinstance(typed, FairnessEvidence)
    assert typed.table[0].accuracy == 0.84
    with_error = with_report_error(result, "JSON fairness report", "/reports", OSError(28, "No space left on device"))
    assert isinstance(with_error.typed_evidence(), FairnessEvidence)
    assert CheckResult(check=CheckName.DRIFT, verdict="pass", summary="s").typed_evidence() is None


def test_the_gate_reads_overridability_from_the_catalogue() -> None:
    assert OVERRIDABLE == OVERRIDABLE_CHECKS == {n for n, s in CATALOGUE.items() if s.overridable}
    assert set(CheckName) - OVERRIDABLE == NEVER_OVERRIDABLE
    assert {CheckName.INTEGRITY, CheckName.PERSONAL_DATA, CheckName.PROPORTIONALITY} <= NEVER_OVERRIDABLE
    assert set(REFRESH_CHECKS) | set(INFERENCE_CHECKS) <= set(CheckName)


def test_drift_thresholds_mirror_the_policy() -> None:
    assert list(DriftThresholds.model_fields) == list(DriftPolicy.model_fields)
    DriftThresholds.model_validate(DriftPolicy().model_dump())
