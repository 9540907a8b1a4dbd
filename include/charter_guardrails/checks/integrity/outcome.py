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
from charter_guardrails.core.messages import Message, Template

if TYPE_CHECKING:
    from charter_guardrails.core.results import CheckResult
    from charter_guardrails.incidents.incident import IncidentDraft

INTACT = Template("%(dataset)s: %(file)s matches its signed manifest #%(manifest_id)s (%(size_bytes)s bytes)")
DATA_CHANGED = Template("%(dataset)s: %(file)s differs from its signed manifest #%(manifest_id)s: %(change)s")
ROOT_DIFFERS = Template("the Merkle root differs")
CHUNK_CHANGED = Template("chunk %(chunk)s (bytes %(first_byte)s–%(last_byte)s) changed")
CHUNK_ROWS_CHANGED = Template(
    "chunk %(chunk)s (bytes %(first_byte)s–%(last_byte)s, rows %(first_row)s–%(last_row)s) changed"
)
IN_FILE = Template("%(change)s in file %(file)s")
MORE_CHUNKS = Template("%(change)s, and %(more)s more chunk(s)")
MANIFEST_EDITED = Template(
    "the manifest of %(dataset)s was edited: it no longer matches its signature (key %(key_id)s)"
)
UNKNOWN_KEY = Template("the manifest of %(dataset)s is signed by key %(key_id)s, which is not a trusted key")
KEY_MISSING = Template("cannot verify %(dataset)s: no trusted public key")
NO_MANIFEST = Template("no manifest registered for %(dataset)s: run `charter hash FILE --dataset %(dataset)s` first")
TABLE_INTACT = Template("%(dataset)s: table %(table)s matches its signed manifest #%(manifest_id)s (%(rows)s rows)")
TABLE_CHANGED = Template("%(dataset)s: table %(table)s differs from its signed manifest #%(manifest_id)s: %(change)s")
SCHEMA_CHANGED = Template("the schema changed (%(changes)s)")
RANGE_CHANGED = Template(
    "key range %(index)s, %(key)s in [%(start)s, %(end)s): %(rows_registered)s row(s) registered, %(rows_now)s now"
)
MORE_RANGES = Template("%(change)s, and %(more)s more key range(s)")
NO_TABLE_MANIFEST = Template("no manifest registered for %(dataset)s: run `charter hash --dataset %(dataset)s` first")

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
_TABLE_CHANGED = "altération des données : la table ne correspond plus à son manifeste signé"


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
    #: a SQL table was verified (``path`` is its name), not a file
    table: bool = False

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

    def message(self) -> Message:
        """The summary as a message: the outcome, the dataset, the manifest and where the file changed."""
        ref = f"{self.use_case}.{self.dataset}"
        file = Path(self.path).name
        key_id = str(self.facts.get("key_id", ""))
        if self.table and self.outcome in (Outcome.INTACT, Outcome.DATA_CHANGED, Outcome.NO_MANIFEST):
            return self._table_message(ref)
        if self.outcome is Outcome.INTACT:
            return INTACT(dataset=ref, file=file, manifest_id=self.manifest_id, size_bytes=self.size_bytes)
        if self.outcome is Outcome.DATA_CHANGED:
            return DATA_CHANGED(dataset=ref, file=file, manifest_id=self.manifest_id, change=self._change())
        if self.outcome is Outcome.MANIFEST_EDITED:
            return MANIFEST_EDITED(dataset=ref, key_id=key_id)
        if self.outcome is Outcome.UNKNOWN_KEY:
            return UNKNOWN_KEY(dataset=ref, key_id=key_id)
        if self.outcome is Outcome.KEY_MISSING:
            return KEY_MISSING(dataset=ref)
        return NO_MANIFEST(dataset=ref)

    def _change(self) -> Message:
        ranges = self.facts.get("ranges") or []
        if not ranges:
            return ROOT_DIFFERS()
        first = ranges[0]
        where = {"chunk": first["chunk"], "first_byte": first["bytes"][0], "last_byte": first["bytes"][1]}
        if "rows" in first:
            change = CHUNK_ROWS_CHANGED(**where, first_row=first["rows"][0], last_row=first["rows"][1])
        else:
            change = CHUNK_CHANGED(**where)
        if "file" in first:
            change = IN_FILE(change=change, file=first["file"])
        more = int(self.facts.get("changed_chunk_count", 1) or 1) - 1
        return MORE_CHUNKS(change=change, more=more) if more > 0 else change

    def _table_message(self, ref: str) -> Message:
        if self.outcome is Outcome.NO_MANIFEST:
            return NO_TABLE_MANIFEST(dataset=ref)
        table = Path(self.path).name
        if self.outcome is Outcome.INTACT:
            return TABLE_INTACT(dataset=ref, table=table, manifest_id=self.manifest_id, rows=self.row_count)
        change: list[Message] = []
        if self.facts.get("schema_changes"):
            change.append(SCHEMA_CHANGED(changes=list(self.facts["schema_changes"])))
        ranges = self.facts.get("changed_ranges") or []
        if ranges:
            first, key = ranges[0], ", ".join(self.facts.get("key_columns") or [])
            bounds = {
                e: "…" if first[e] is None else ", ".join(text for _tag, text in first[e]) for e in ("start", "end")
            }
            counts = {k: first[k] for k in ("index", "rows_registered", "rows_now")}
            one = RANGE_CHANGED(key=key, **bounds, **counts)
            change.append(MORE_RANGES(change=one, more=len(ranges) - 1) if len(ranges) > 1 else one)
        return TABLE_CHANGED(dataset=ref, table=table, manifest_id=self.manifest_id, change=change or [ROOT_DIFFERS()])

    def to_check_result(self) -> CheckResult:
        """The verdict: pass when intact, fail otherwise (critical when it is evidence of corruption)."""
        from charter_guardrails.core.catalogue import CATALOGUE, CheckName
        from charter_guardrails.core.results import CheckResult, Severity, Verdict

        metrics: dict[str, float | int | None] = {
            "size_bytes": None if self.table else self.size_bytes,
            "rows": self.row_count,
        }
        if self.table:
            metrics["changed_ranges"] = len(self.facts.get("changed_ranges") or [])
        else:
            metrics["changed_chunks"] = int(self.facts.get("changed_chunk_count", 0) or 0)
        if self.seconds:
            metrics["seconds"] = round(self.seconds, 4)
        return CheckResult(
            check=CheckName.INTEGRITY,
            verdict=Verdict.PASS if self.intact else Verdict.FAIL,
            severity=Severity.INFO if self.intact else (Severity.CRITICAL if self.raises_incident else Severity.ERROR),
            engagements=CATALOGUE[CheckName.INTEGRITY].engagement_ids(),
            summary=self.summary,
            message=self.message(),
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
            nature=_TABLE_CHANGED
            if self.table and self.outcome is Outcome.DATA_CHANGED
            else _INCIDENT_NATURE[self.outcome],
            facts=self._evidence(),
            likely_consequences=(
                "un modèle entraîné ou une inférence produite sur des données altérées (empoisonnement possible, "
                "décisions erronées pour les usagers)"
            ),
            measures_taken=list(MEASURES_TAKEN),
            approx_records=self.row_count,
        )
