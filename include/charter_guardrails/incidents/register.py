"""The register of personal data breaches (GDPR Art. 33(5)): every incident detected in a period, with its
facts, effects and remedial action, both GDPR decisions with who took them and when, and its dates.

One register, three forms: HTML (the template ``incident_register.html``), JSON and CSV. The CSV opens in a
spreadsheet without running anything: every cell is quoted and a cell that a spreadsheet would read as a
formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) starts with a single quote.
Free text goes through :func:`~charter_guardrails.reporting.scrubbing.mask_personal_values`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from charter_guardrails.core.errors import ConfigError, ReportWriteError
from charter_guardrails.incidents.decisions import ART33_LABELS, ART34_GROUND_LABELS, ART34_LABELS, decisions_dict
from charter_guardrails.ledger.models import Incident
from charter_guardrails.reporting.charter_report import last_day
from charter_guardrails.reporting.scrubbing import mask_personal_values, mask_tree

FORMATS = ("html", "json", "csv")

#: The columns of the CSV, in the order of the register: identity, facts, effects, remedial action,
#: decisions, dates.
CSV_COLUMNS = (
    "id",
    "title",
    "status",
    "breach_type",
    "severity",
    "use_case",
    "dataset",
    "nature",
    "facts",
    "data_subject_categories",
    "approx_data_subjects",
    "personal_data_categories",
    "approx_records",
    "likely_consequences",
    "measures_taken",
    "resolution",
    "art33_decision",
    "art33_decided_by",
    "art33_decided_at",
    "art33_notified_on",
    "art33_authority",
    "art33_reference",
    "art33_rationale",
    "art33_notified_late",
    "art34_decision",
    "art34_decided_by",
    "art34_decided_at",
    "art34_communicated_on",
    "art34_channel",
    "art34_ground",
    "detected_at",
    "notify_deadline",
    "acknowledged_by",
    "acknowledged_at",
    "resolved_by",
    "resolved_at",
)

#: What a spreadsheet reads as the start of a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def build_register(session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    """The register of the incidents detected in ``[start, end)``, oldest first, as a JSON-ready document."""
    rows = session.scalars(
        select(Incident)
        .where(Incident.detected_at >= start, Incident.detected_at < end)
        .order_by(Incident.detected_at, Incident.id)
    )
    incidents = [register_entry(row) for row in rows]
    return {
        "title": "Registre des violations de données personnelles (RGPD art. 33-5)",
        "period": {"start": _iso(start), "end": _iso(end), "last_day": last_day(end).isoformat()},
        "generated_at": _iso(datetime.now(UTC)),
        "count": len(incidents),
        "art33_open": sum(1 for i in incidents if i["decisions"]["art33"]["open"]),
        "incidents": incidents,
    }


def register_entry(row: Incident) -> dict[str, Any]:
    """One incident of the register: facts, effects, remedial action, decisions and dates, masked."""
    decisions = decisions_dict(row)
    art33 = decisions["art33"]
    for part in (art33, decisions["art34"]):
        for name in ("authority", "reference", "rationale", "channel"):
            if isinstance(part.get(name), str):
                part[name] = mask_personal_values(part[name])
    art33["notified_late"] = _notified_late(row)
    resolution = [c for c in (row.comments or []) if isinstance(c, dict) and c.get("status") == "resolved"]
    return {
        "id": row.id,
        "title": mask_personal_values(row.title),
        "status": row.status,
        "breach_type": row.breach_type,
        "severity": row.severity,
        "use_case": row.use_case,
        "dataset": row.dataset,
        "run_id": row.run_id,
        "facts": {
            "nature": mask_personal_values(row.nature),
            "details": mask_tree(row.facts or {}),
            "data_subject_categories": list(row.data_subject_categories or []),
            "approx_data_subjects": row.approx_data_subjects,
            "personal_data_categories": list(row.personal_data_categories or []),
            "approx_records": row.approx_records,
        },
        "effects": mask_personal_values(row.likely_consequences),
        "remedial_action": {
            "measures_taken": mask_tree(list(row.measures_taken or [])),
            "resolution": [mask_personal_values(str(c.get("comment") or "")) for c in resolution],
        },
        "decisions": decisions,
        "dates": {
            "detected_at": _iso(row.detected_at),
            "notify_deadline": _iso(row.notify_deadline),
            "acknowledged_by": row.acknowledged_by,
            "acknowledged_at": _iso(row.acknowledged_at),
            "resolved_by": row.resolved_by,
            "resolved_at": _iso(row.resolved_at),
        },
    }


def render_json(register: dict[str, Any]) -> str:
    return json.dumps(register, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def render_html(register: dict[str, Any]) -> str:
    from charter_guardrails.reporting.rendering import render

    return render(
        "incident_register.html",
        register=register,
        art33_labels=ART33_LABELS,
        art34_labels=ART34_LABELS,
        ground_labels=ART34_GROUND_LABELS,
    )


def render_csv(register: dict[str, Any]) -> str:
    """One row per incident, ``;``-separated, every cell quoted and none read as a formula."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in register["incidents"]:
        writer.writerow([neutralise_cell(_cell(value)) for value in _csv_values(entry)])
    return out.getvalue()


def neutralise_cell(text: str) -> str:
    """``text`` as a spreadsheet shows it without running it: a leading ``=``, ``+``, ``-``, ``@``, tab or
    carriage return gets a single quote before it."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def write_register(register: dict[str, Any], folder: Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write the register in each of ``formats`` into ``folder``; the paths written.

    :raises ConfigError: an unknown format.
    :raises ReportWriteError: the folder cannot be written.
    """
    chosen = parse_formats(formats)
    name = register_file_name(register)
    renderers = {"html": render_html, "json": render_json, "csv": render_csv}
    written = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for fmt in chosen:
            path = folder / f"{name}.{fmt}"
            # utf-8-sig for the CSV: spreadsheets then read the accents right.
            path.write_bytes(renderers[fmt](register).encode("utf-8-sig" if fmt == "csv" else "utf-8"))
            written.append(path)
    except OSError as exc:
        raise ReportWriteError(
            f"cannot write the register of breaches in {folder}: {exc.strerror or exc}; "
            f"free some space or choose another folder (`--out`)"
        ) from exc
    return written


def parse_formats(formats: Iterable[str] | str) -> list[str]:
    """``html,json`` or a list of names → the formats, in their order, each once."""
    names = formats.split(",") if isinstance(formats, str) else list(formats)
    chosen = [n.strip().lower() for n in names if n.strip()]
    unknown = sorted(set(chosen) - set(FORMATS))
    if unknown or not chosen:
        raise ConfigError(
            f"unknown register format {', '.join(unknown) or '(none)'}; choose among {', '.join(FORMATS)}"
        )
    return list(dict.fromkeys(chosen))


def register_file_name(register: dict[str, Any]) -> str:
    """``registre-violations-<first day>-<last day>`` (the end of the period is excluded)."""
    period = register["period"]
    return f"registre-violations-{period['start'][:10]}-{period['last_day']}"


def _csv_values(entry: dict[str, Any]) -> Sequence[Any]:
    facts, remedial, dates = entry["facts"], entry["remedial_action"], entry["dates"]
    art33, art34 = entry["decisions"]["art33"], entry["decisions"]["art34"]
    return (
        entry["id"],
        entry["title"],
        entry["status"],
        entry["breach_type"],
        entry["severity"],
        entry["use_case"],
        entry["dataset"],
        facts["nature"],
        facts["details"],
        facts["data_subject_categories"],
        facts["approx_data_subjects"],
        facts["personal_data_categories"],
        facts["approx_records"],
        entry["effects"],
        remedial["measures_taken"],
        remedial["resolution"],
        art33["decision"],
        art33["decided_by"],
        art33["decided_at"],
        art33["notified_on"],
        art33["authority"],
        art33["reference"],
        art33["rationale"],
        art33["notified_late"],
        art34["decision"],
        art34["decided_by"],
        art34["decided_at"],
        art34["communicated_on"],
        art34["channel"],
        art34["ground"],
        dates["detected_at"],
        dates["notify_deadline"],
        dates["acknowledged_by"],
        dates["acknowledged_at"],
        dates["resolved_by"],
        dates["resolved_at"],
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " | ".join(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _notified_late(row: Incident) -> bool | None:
    """Whether the authority was told after the 72-hour deadline (the register then says why, Art. 33(1));
    None while nothing was notified."""
    if row.art33_notified_on is None:
        return None
    return row.art33_notified_on > row.notify_deadline.astimezone(UTC).date()


def _iso(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value.isoformat()
