"""The catalogue of checks: every check's name, the engagements it serves, whether a human may
override its failure, and the model of the evidence it writes.

One catalogue, like Airflow's ``TriggerRule``: checks emit ``CheckName.X`` and take their engagements
from the spec, the gate derives what may be overridden from it, and the governance view reads the
evidence through the spec's model. A check name is never spelled by hand elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from charter_guardrails.core.evidence import (
    DeclarationEvidence,
    DriftEvidence,
    Evidence,
    FairnessEvidence,
    FootprintEvidence,
    IntegrityEvidence,
    KillSwitchEvidence,
    PerformanceEvidence,
    PersonalDataEvidence,
    ProportionalityEvidence,
    QualityEvidence,
    RepresentativenessEvidence,
)


class CheckName(StrEnum):
    """The stable name of a check, as ``CheckResult.check``, ledger rows and ``engagements.yaml`` spell it."""

    KILL_SWITCH = "kill_switch"
    DECLARATION = "declaration"
    INTEGRITY = "integrity"
    PERSONAL_DATA = "personal_data"
    QUALITY = "quality"
    REPRESENTATIVENESS = "representativeness"
    PROPORTIONALITY = "proportionality"
    PERFORMANCE = "performance"
    FAIRNESS = "fairness"
    FOOTPRINT = "footprint"
    DRIFT = "drift"


@dataclass(frozen=True)
class CheckSpec:
    """What the charter expects of one check.

    :param name: the check.
    :param engagements: the charter engagements its results carry, in the order they are written.
    :param overridable: whether an approver may publish despite its failure, with a written
        justification (Maîtrise humaine 2). Safety and proportionality checks never are.
    :param evidence_model: the model its ``evidence`` must fit.
    """

    name: CheckName
    engagements: tuple[str, ...]
    overridable: bool
    evidence_model: type[Evidence]

    def engagement_ids(self) -> list[str]:
        """The engagements as a fresh list, for ``CheckResult.engagements``."""
        return list(self.engagements)


def _spec(name: CheckName, engagements: tuple[str, ...], overridable: bool, model: type[Evidence]) -> CheckSpec:
    return CheckSpec(name=name, engagements=engagements, overridable=overridable, evidence_model=model)


_SPECS = (
    _spec(CheckName.KILL_SWITCH, ("maitrise_humaine.2",), False, KillSwitchEvidence),
    _spec(
        CheckName.DECLARATION,
        ("transparence.1", "proportionnalite.1", "proportionnalite.2", "maitrise_humaine.6"),
        False,
        DeclarationEvidence,
    ),
    _spec(CheckName.INTEGRITY, ("surete.2",), False, IntegrityEvidence),
    _spec(CheckName.PERSONAL_DATA, ("surete.1", "proportionnalite.3"), False, PersonalDataEvidence),
    _spec(CheckName.QUALITY, ("equite.2", "maitrise_humaine.1"), True, QualityEvidence),
    _spec(CheckName.REPRESENTATIVENESS, ("equite.1", "equite.2"), True, RepresentativenessEvidence),
    _spec(
        CheckName.PROPORTIONALITY,
        ("proportionnalite.1", "proportionnalite.2", "proportionnalite.3", "maitrise_humaine.6"),
        False,
        ProportionalityEvidence,
    ),
    # Durabilité 1: a model is only retrained when the gain justifies it.
    _spec(CheckName.PERFORMANCE, ("durabilite.1",), True, PerformanceEvidence),
    _spec(CheckName.FAIRNESS, ("equite.1",), True, FairnessEvidence),
    _spec(CheckName.FOOTPRINT, ("durabilite.1",), True, FootprintEvidence),
    _spec(CheckName.DRIFT, ("maitrise_humaine.1", "equite.2"), True, DriftEvidence),
)

#: Every check's spec, by name.
CATALOGUE: Mapping[CheckName, CheckSpec] = MappingProxyType({s.name: s for s in _SPECS})

#: Checks whose failure an approver may override with a written justification.
OVERRIDABLE_CHECKS = frozenset(name for name, spec in CATALOGUE.items() if spec.overridable)
#: Checks whose failure blocks whatever a human answers.
NEVER_OVERRIDABLE_CHECKS = frozenset(name for name, spec in CATALOGUE.items() if not spec.overridable)


def spec_of(name: CheckName | str) -> CheckSpec:
    """The spec of a check; ``ValueError`` for a name the catalogue does not know."""
    return CATALOGUE[CheckName(name)]
