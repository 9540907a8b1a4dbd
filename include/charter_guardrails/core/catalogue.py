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
    TrainingEvidence,
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
    TRAINING = "training"
    PERFORMANCE = "performance"
    FAIRNESS = "fairness"
    FOOTPRINT = "footprint"
    DRIFT = "drift"


@dataclass(frozen=True)
class CheckSpec:
    """What the charter expects of one check.

    :param name: the check.
    :param overridable: whether an approver may publish despite its failure, with a written
        justification (Maîtrise humaine 2). Safety and proportionality checks never are.
    :param evidence_model: the model its ``evidence`` must fit.

    The engagements a check serves are not listed here: ``engagements.yaml`` maps each engagement of
    the charter to its controls, and a check serves the engagements that name it.
    """

    name: CheckName
    overridable: bool
    evidence_model: type[Evidence]

    @property
    def engagements(self) -> tuple[str, ...]:
        return tuple(self.engagement_ids())

    def engagement_ids(self) -> list[str]:
        """The engagements as a fresh list, for ``CheckResult.engagements``."""
        # Imported here: engagements.py reads the principles from results.py, which needs this module.
        from charter_guardrails.core.engagements import engagements_of

        return engagements_of(self.name)


_SPECS = (
    CheckSpec(CheckName.KILL_SWITCH, False, KillSwitchEvidence),
    CheckSpec(CheckName.DECLARATION, False, DeclarationEvidence),
    CheckSpec(CheckName.INTEGRITY, False, IntegrityEvidence),
    CheckSpec(CheckName.PERSONAL_DATA, False, PersonalDataEvidence),
    CheckSpec(CheckName.QUALITY, True, QualityEvidence),
    CheckSpec(CheckName.REPRESENTATIVENESS, True, RepresentativenessEvidence),
    CheckSpec(CheckName.PROPORTIONALITY, False, ProportionalityEvidence),
    # a candidate that did not train (or broke the trainer contract) has nothing a human could publish
    CheckSpec(CheckName.TRAINING, False, TrainingEvidence),
    CheckSpec(CheckName.PERFORMANCE, True, PerformanceEvidence),
    CheckSpec(CheckName.FAIRNESS, True, FairnessEvidence),
    CheckSpec(CheckName.FOOTPRINT, True, FootprintEvidence),
    CheckSpec(CheckName.DRIFT, True, DriftEvidence),
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
