"""The engagements file maps the charter's engagements to evidence by their meaning, and the declaration
check enforces what the policy must declare for Transparence 1, Maîtrise humaine 3 and Proportionnalité 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from charter_guardrails.checks.declaration import check_declaration
from charter_guardrails.core.catalogue import CATALOGUE
from charter_guardrails.core.engagements import (
    ENGAGEMENTS_FILE,
    EngagementKind,
    engagement_by_id,
    engagements_of,
    load_engagements,
)
from charter_guardrails.core.errors import ConfigError, PolicyError
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.results import Verdict

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "include" / "policies"

#: Engagements per principle, as the charter numbers them.
CHARTER_COUNTS = {
    "transparence": 4,
    "equite": 3,
    "maitrise_humaine": 6,
    "durabilite": 3,
    "surete": 2,
    "proportionnalite": 3,
}


def _controls(engagement_id: str) -> set[str]:
    return set(engagement_by_id(engagement_id).controls)


def _sources(engagement_id: str) -> set[str]:
    return set(engagement_by_id(engagement_id).sources)


def test_the_charter_has_21_engagements_numbered_as_it_numbers_them() -> None:
    engagements = load_engagements()
    assert len(engagements) == 21
    for principle, count in CHARTER_COUNTS.items():
        numbers = [e.number for e in engagements if e.principle == principle]
        assert numbers == list(range(1, count + 1)), principle
    assert all(e.principle_aim for e in engagements), "every principle states its aim"


def test_the_file_says_its_wording_is_a_paraphrase() -> None:
    raw = yaml.safe_load(ENGAGEMENTS_FILE.read_text(encoding="utf-8"))
    assert raw["wording"] == "paraphrase"
    assert "Charte" in raw["source"]
    assert not any(e.text.startswith("«") for e in load_engagements()), "a paraphrase is not shown as a quotation"


def test_organisational_engagements_have_no_automated_controls() -> None:
    organisational = {e.id for e in load_engagements() if e.kind is EngagementKind.ORGANISATIONAL}
    assert organisational == {"equite.3", "maitrise_humaine.5", "durabilite.2"}
    for eng_id in organisational:
        assert not _controls(eng_id), eng_id
        assert not _sources(eng_id), eng_id
    # The committee's evaluation is the organisational part of Durabilité 3; the report and its chain the other.
    assert engagement_by_id("durabilite.3").kind is EngagementKind.MIXED
    assert engagement_by_id("durabilite.3").needs_attestation


def test_every_automated_engagement_names_its_evidence() -> None:
    for eng in load_engagements():
        assert eng.evidence, eng.id
        if eng.kind is not EngagementKind.ORGANISATIONAL:
            assert eng.controls or eng.sources, eng.id


@pytest.mark.parametrize(
    ("engagement", "controls", "sources"),
    [
        ("transparence.1", {"declaration"}, set()),
        ("transparence.2", {"training", "performance"}, {"audit"}),
        ("transparence.3", set(), {"model_cards"}),
        ("transparence.4", set(), {"ai_labels"}),
        ("equite.1", {"fairness", "performance"}, set()),
        ("equite.2", {"quality", "representativeness", "drift"}, set()),
        ("maitrise_humaine.1", {"drift", "performance"}, {"predictions"}),
        ("maitrise_humaine.2", {"kill_switch"}, {"approvals", "overrides", "kill_switch"}),
        ("maitrise_humaine.3", {"declaration"}, set()),
        ("maitrise_humaine.4", set(), {"model_cards", "approvals"}),
        ("maitrise_humaine.6", {"declaration"}, set()),
        ("durabilite.1", {"footprint"}, set()),
        ("surete.1", {"personal_data"}, {"incidents"}),
        ("surete.2", {"integrity"}, {"incidents"}),
        ("proportionnalite.1", {"declaration", "proportionality", "training"}, set()),
        ("proportionnalite.2", {"declaration", "performance"}, set()),
        ("proportionnalite.3", {"proportionality", "quality"}, set()),
    ],
)
def test_controls_follow_the_meaning_of_the_engagement(engagement: str, controls: set[str], sources: set[str]) -> None:
    assert _controls(engagement) == controls
    assert _sources(engagement) == sources


def test_integrity_incidents_count_for_surete_2_only_and_privacy_ones_for_surete_1() -> None:
    assert engagement_by_id("surete.2").incident_types == ("integrity",)
    assert set(engagement_by_id("surete.1").incident_types) == {"confidentiality", "gdpr_compliance"}


def test_a_check_carries_exactly_the_engagements_that_name_it() -> None:
    for name, spec in CATALOGUE.items():
        assert spec.engagement_ids() == engagements_of(name)
        assert spec.engagement_ids(), f"{name} serves no engagement"
    assert "transparence.4" not in {e for spec in CATALOGUE.values() for e in spec.engagements}
    policy = UseCasePolicy.from_file(POLICIES / "citizen_requests.yaml")
    assert check_declaration(policy).engagements == [
        "transparence.1",
        "maitrise_humaine.3",
        "maitrise_humaine.6",
        "proportionnalite.1",
        "proportionnalite.2",
    ]


def _rewrite(tmp_path: Path, old: str, new: str) -> Path:
    text = ENGAGEMENTS_FILE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "engagements.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_an_organisational_engagement_with_controls_is_refused(tmp_path: Path) -> None:
    path = _rewrite(
        tmp_path, "        kind: organisational\n", "        kind: organisational\n        controls: [quality]\n"
    )
    with pytest.raises(ConfigError, match=r"equite.engagements\[2\]: an organisational engagement"):
        load_engagements.__wrapped__(path)


def test_an_automated_engagement_without_evidence_is_refused(tmp_path: Path) -> None:
    path = _rewrite(tmp_path, "        controls: [footprint]\n", "")
    with pytest.raises(ConfigError, match=r"durabilite.engagements\[0\]: no controls or sources"):
        load_engagements.__wrapped__(path)


def test_a_gap_in_the_numbering_is_refused(tmp_path: Path) -> None:
    path = _rewrite(tmp_path, "      - number: 6\n", "      - number: 7\n")
    with pytest.raises(ConfigError, match=r"numbered 1\.\.n"):
        load_engagements.__wrapped__(path)


# --- the declaration check -------------------------------------------------------------------------------


def _policy(tmp_path: Path, name: str = "citizen_requests", **changes: object) -> UseCasePolicy:
    data = yaml.safe_load((POLICIES / f"{name}.yaml").read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return UseCasePolicy.from_file(path)


def test_the_sample_policies_declare_everything() -> None:
    for path in sorted(POLICIES.glob("*.yaml")):
        result = check_declaration(UseCasePolicy.from_file(path))
        assert result.verdict is Verdict.PASS, (path.name, result.evidence)
    waste = check_declaration(UseCasePolicy.from_file(POLICIES / "waste_tonnage.yaml"))
    assert waste.evidence["origin"] == "external"
    assert waste.evidence["provider"]
    assert "CCAP" in waste.evidence["compliance_commitment"]
    assert waste.evidence["task_nature"] == "routine"
    assert waste.evidence["success_metric"] == "mae"


def test_a_task_nature_that_contradicts_decision_support_fails(tmp_path: Path) -> None:
    result = check_declaration(_policy(tmp_path, task_nature="routine"))
    assert result.verdict is Verdict.FAIL
    assert "task_nature is routine but decision_support is true" in result.evidence["problems"][0]


def test_missing_declarations_warn_and_name_the_key(tmp_path: Path) -> None:
    result = check_declaration(_policy(tmp_path, task_nature=None, sourcing=None, objective=None))
    assert result.verdict is Verdict.WARN
    warnings = " ".join(result.evidence["warnings"])
    for key in ("task_nature", "sourcing", "objective"):
        assert f"{key} is not declared" in warnings


def test_an_external_system_must_name_its_provider_and_commitment(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="name the provider and its compliance commitment"):
        _policy(tmp_path, sourcing={"origin": "external"})
    with pytest.raises(PolicyError, match=r"sourcing.provider.compliance_commitment"):
        _policy(tmp_path, sourcing={"origin": "external", "provider": {"name": "Éditeur"}})


def test_the_success_metric_is_the_metric_the_model_is_evaluated_on(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"differs from model\.metric 'f1_macro'"):
        _policy(
            tmp_path, objective={"statement": "Orienter correctement les demandes des usagers", "success_metric": "mae"}
        )


def test_the_documentation_lists_each_engagement_as_the_file_maps_it() -> None:
    rows = {
        line.split("`")[1]: line
        for line in (ROOT / "docs" / "charter.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| `") and "." in line.split("`")[1]
    }
    assert set(rows) == {e.id for e in load_engagements()}
    for eng in load_engagements():
        cells = [c.strip() for c in rows[eng.id].split("|")[1:-1]]
        assert cells[1] == eng.kind.value, eng.id
        assert cells[2] == (", ".join(f"`{c}`" for c in eng.controls) or "—"), eng.id
