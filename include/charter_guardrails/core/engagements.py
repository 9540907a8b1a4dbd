"""The charter's engagements, read from ``engagements.yaml``: what each engagement asks (a paraphrase of
the charter, numbered as the charter numbers it), what kind of evidence can show it is kept, the checks
(controls) whose results are that evidence, and the other evidence the ledger keeps (sources).

This file is the one place that maps checks to engagements: a check's results carry the engagements
that name it as a control (:func:`engagements_of`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.results import PRINCIPLES

ENGAGEMENTS_FILE = Path(__file__).with_name("engagements.yaml")

#: Evidence the ledger keeps besides check results.
SOURCES = frozenset(
    {"approvals", "overrides", "kill_switch", "incidents", "audit", "model_cards", "ai_labels", "predictions"}
)


class EngagementKind(StrEnum):
    """How an engagement can be shown to be kept."""

    #: by the results of checks and the ledger's other records
    AUTOMATED = "automated"
    #: only by an attestation of the governance team: nothing a pipeline runs can show it
    ORGANISATIONAL = "organisational"
    #: automated evidence for one part, an attestation for the other
    MIXED = "mixed"


@dataclass(frozen=True)
class Engagement:
    """One engagement of the charter and the evidence that shows it is kept."""

    id: str
    principle: str
    principle_label: str
    principle_aim: str
    number: int
    text: str
    kind: EngagementKind
    evidence: str
    controls: tuple[str, ...]
    sources: tuple[str, ...]
    #: breach types of the incidents that count as evidence (all when empty)
    incident_types: tuple[str, ...] = ()

    @property
    def needs_attestation(self) -> bool:
        return self.kind is not EngagementKind.AUTOMATED

    @property
    def label(self) -> str:
        """``Maîtrise humaine 6``."""
        return f"{self.principle_label} {self.number}"

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "principle": self.principle,
            "principle_label": self.principle_label,
            "number": self.number,
            "text": self.text,
            "kind": self.kind.value,
            "evidence_kind": self.evidence,
            "controls": list(self.controls),
            "sources": list(self.sources),
            "incident_types": list(self.incident_types),
        }


def _engagement(path: Path, principle: str, body: dict[str, Any], i: int, item: dict[str, Any]) -> Engagement:
    from charter_guardrails.core.catalogue import CheckName

    where = f"{path}: principles.{principle}.engagements[{i}]"
    try:
        number = int(item["number"])
        kind = EngagementKind(item.get("kind", "automated"))
        eng = Engagement(
            id=f"{principle}.{number}",
            principle=principle,
            principle_label=str(body.get("label", principle)),
            principle_aim=str(body.get("aim", "")).strip(),
            number=number,
            text=str(item["text"]).strip(),
            kind=kind,
            evidence=str(item.get("evidence", "")).strip(),
            controls=tuple(item.get("controls") or ()),
            sources=tuple(item.get("sources") or ()),
            incident_types=tuple(item.get("incident_types") or ()),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc!r}") from exc
    unknown = sorted(set(eng.controls) - set(CheckName))
    if unknown:
        raise ConfigError(
            f"{where}.controls: {unknown} are not checks; controls name checks of the catalogue "
            f"({', '.join(CheckName)}), other evidence goes in sources"
        )
    if bad := sorted(set(eng.sources) - SOURCES):
        raise ConfigError(f"{where}.sources: {bad} are not evidence the ledger keeps; use {sorted(SOURCES)}")
    if eng.kind is EngagementKind.ORGANISATIONAL and (eng.controls or eng.sources):
        raise ConfigError(f"{where}: an organisational engagement is shown by an attestation only; remove its controls")
    if eng.kind is not EngagementKind.ORGANISATIONAL and not (eng.controls or eng.sources):
        raise ConfigError(f"{where}: no controls or sources; name its evidence or mark it kind: organisational")
    return eng


@functools.lru_cache(maxsize=1)
def load_engagements(path: Path = ENGAGEMENTS_FILE) -> tuple[Engagement, ...]:
    """The charter's engagements, in principle order; a malformed file is a config error naming the key."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    principles = raw.get("principles") if isinstance(raw, dict) else None
    if not isinstance(principles, dict):
        raise ConfigError(f"{path}: principles: required mapping is missing")
    out: list[Engagement] = []
    for principle, body in principles.items():
        if principle not in PRINCIPLES:
            raise ConfigError(f"{path}: principles.{principle}: unknown principle; expected one of {PRINCIPLES}")
        items = body.get("engagements", [])
        for i, item in enumerate(items):
            out.append(_engagement(path, principle, body, i, item))
        numbers = [e.number for e in out if e.principle == principle]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ConfigError(f"{path}: principles.{principle}: engagements must be numbered 1..n as in the charter")
    return tuple(out)


def engagements_of(check: str) -> list[str]:
    """The ids of the engagements that name ``check`` as a control, in charter order."""
    return [e.id for e in load_engagements() if check in e.controls]


def engagement_by_id(engagement_id: str) -> Engagement:
    """One engagement; ``KeyError`` for an id the charter does not have."""
    for eng in load_engagements():
        if eng.id == engagement_id:
            return eng
    raise KeyError(f"{engagement_id!r} is not an engagement of the charter")


def principle_labels() -> dict[str, str]:
    return {e.principle: e.principle_label for e in load_engagements()}


def principle_of(engagement_id: str) -> str:
    """``"surete.2"`` → ``"surete"``."""
    return engagement_id.partition(".")[0]
