"""The named outcome of verifying a file against its manifest, and what it becomes.

A :class:`Verification` turns into the ``integrity`` :class:`~charter_guardrails.core.results.CheckResult`
and, when it is evidence of corruption, into the security incident that Sûreté 2 calls for. The
catalogue, the result model and the incident model are imported when first needed, so that this
module stays light on the ``charter verify`` path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.integrity.manifest import INCIDENT_OUTCOMES, Outcome

if TYPE_CHECKING:
    from charter_guardrails.core.results import CheckResult
    from charter_guardrails.incidents.incident import IncidentDraft

MEASURES_TAKEN = [
    "rafraîchissement bloqué (refresh blocked)",
    "jeu de données mis en quarantaine (dataset quarantined)",
]

#: The nature of the breach, per outcome that raises an incident.
_INCIDENT_NATURE = {
    Outcome.DATA_CHANGED: "altération des données : le fichier ne correspond plus à son manifeste signé",
    Outcome.MANIFEST_EDITED: "altération du manifeste : le document ne correspond plus à sa signature",
    Outcome.UNKNOWN_KEY: "manifeste signé par une clé inconnue ou non approuvée",
}


@dataclass
class Verification:
    """The named outcome of verifying one file against one dataset's manifest."""

    outcome: Outcome
    use_case: str
    dataset: str
    path: str
    summary: str
    facts: dict[str, Any] = field(default_factory=dict)
    manifest_id: int | None = None
    row_count: int | None = None
    size_bytes: int | None = None
    seconds: float | None = None

    @property
    def intact(self) -> bool:
        return self.outcome is Outcome.INTACT

    @property
    def raises_incident(self) -> bool:
        return self.outcome in INCIDENT_OUTCOMES

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "dataset": f"{self.use_case}.{self.dataset}",
            "file": self.path,
            "summary": self.summary,
            "manifest_id": self.manifest_id,
            "row_count": self.row_count,
            "size_bytes": self.size_bytes,
            "facts": self.facts,
        }

    def _evidence(self) -> dict[str, Any]:
        """The outcome, the file, the manifest and the facts: the result's evidence and the incident's facts."""
        return {
            "outcome": self.outcome.value,
            "file": Path(self.path).name,
            "manifest_id": self.manifest_id,
            **self.facts,
        }

    def to_check_result(self) -> CheckResult:
        """The verdict: pass when intact, fail otherwise (critical when it is evidence of corruption)."""
        from charter_guardrails.core.catalogue import CATALOGUE, CheckName
        from charter_guardrails.core.results import CheckResult, Severity, Verdict

        metrics: dict[str, float | int | None] = {
            "size_bytes": self.size_bytes,
            "rows": self.row_count,
            "changed_chunks": int(self.facts.get("changed_chunk_count", 0) or 0),
        }
        if self.seconds:
            metrics["seconds"] = round(self.seconds, 4)
        return CheckResult(
            check=CheckName.INTEGRITY,
            verdict=Verdict.PASS if self.intact else Verdict.FAIL,
            severity=Severity.INFO if self.intact else (Severity.CRITICAL if self.raises_incident else Severity.ERROR),
            engagements=CATALOGUE[CheckName.INTEGRITY].engagement_ids(),
            summary=self.summary,
            metrics=metrics,
            evidence=self._evidence(),
            dataset=self.dataset,
        )

    def incident_draft(self, run_id: str | None) -> IncidentDraft | None:
        """The security incident this outcome calls for (Sûreté 2), or None when intact or a configuration problem."""
        if not self.raises_incident:
            return None
        # The incident module imports the policy model: only when there is an incident to raise.
        from charter_guardrails.incidents.incident import BreachType, IncidentDraft

        return IncidentDraft(
            breach_type=BreachType.INTEGRITY,
            severity="critical",
            dataset=self.dataset,
            run_id=run_id,
            title=f"Corruption détectée sur {self.use_case}.{self.dataset} ({self.outcome.value})",
            nature=_INCIDENT_NATURE[self.outcome],
            facts=self._evidence(),
            likely_consequences=(
                "un modèle entraîné ou une inférence produite sur des données altérées (empoisonnement possible, "
                "décisions erronées pour les usagers)"
            ),
            measures_taken=list(MEASURES_TAKEN),
            approx_records=self.row_count,
        )
