"""The charter's engagements, read from ``engagements.yaml``: the text of each engagement, the checks
(controls) whose results are evidence for it, and the other evidence the ledger keeps (sources).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from charter_guardrails.core.catalogue import CheckName
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.results import PRINCIPLES

ENGAGEMENTS_FILE = Path(__file__).with_name("engagements.yaml")


@dataclass(frozen=True)
class Engagement:
    """One engagement of the charter and the controls (check names) that enforce it."""

    id: str
    principle: str
    principle_label: str
    number: int
    text: str
    controls: tuple[str, ...]
    sources: tuple[str, ...]
    #: breach types of the incidents that count as evidence (all when empty)
    incident_types: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "principle": self.principle,
            "principle_label": self.principle_label,
            "number": self.number,
            "text": self.text,
            "controls": list(self.controls),
            "sources": list(self.sources),
            "incident_types": list(self.incident_types),
        }


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
        for i, item in enumerate(body.get("engagements", [])):
            try:
                number = int(item["number"])
                out.append(
                    Engagement(
                        id=f"{principle}.{number}",
                        principle=principle,
                        principle_label=str(body.get("label", principle)),
                        number=number,
                        text=str(item["text"]),
                        controls=tuple(item.get("controls") or ()),
                        sources=tuple(item.get("sources") or ()),
                        incident_types=tuple(item.get("incident_types") or ()),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"{path}: principles.{principle}.engagements[{i}]: {exc!r}") from exc
            unknown = sorted(set(out[-1].controls) - set(CheckName))
            if unknown:
                raise ConfigError(
                    f"{path}: principles.{principle}.engagements[{i}].controls: {unknown} are not checks; "
                    f"controls name checks of the catalogue ({', '.join(CheckName)}), other evidence goes in sources"
                )
    ids = [e.id for e in out]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: engagement ids must be unique, got {ids}")
    return tuple(out)


def principle_labels() -> dict[str, str]:
    return {e.principle: e.principle_label for e in load_engagements()}


def principle_of(engagement_id: str) -> str:
    """``"surete.2"`` → ``"surete"``."""
    return engagement_id.partition(".")[0]
