"""``erase``: a person's rows out of every file the project owns (GDPR Art. 17), with its record.

1. :func:`.find.search` finds the places (each file is stat-ed before it is searched).
2. Each file is rewritten without those rows, atomically (:mod:`.rewrite`): the raw deliveries, the other
   files of the data folder, the accepted and quarantined batches, the pseudonymised working copies.
3. A file whose manifest is registered (the active manifest of its dataset names it) gets a new signed
   manifest, registered with :func:`~charter_guardrails.checks.integrity.manifest_registry.store_manifest`
   (the old one is superseded), and an audit event ``dsr.manifest_resigned`` links the old and the new
   Merkle roots: ``charter verify`` and the integrity monitor then see an intact file, and the chain says why
   its root changed.
4. One audit event ``dsr.erased`` per use case records the request id, the keyed hash of the identifier, the
   rows removed per file, the datasets affected and the model versions trained on data that held the person
   (:mod:`.trained`), for the DPO's decision on retraining. No ledger table is added: the chain is the record.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.core.errors import CharterError
from charter_guardrails.dsr.find import ACTOR, SearchResult, check_request_id, search
from charter_guardrails.dsr.identifiers import parse_identifier
from charter_guardrails.dsr.predictions import erase_predictions
from charter_guardrails.dsr.rewrite import erase_rows
from charter_guardrails.dsr.scan import Matcher
from charter_guardrails.dsr.trained import covers

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from charter_guardrails.dsr.find import FoundPlace

log = logging.getLogger(__name__)


@dataclass
class ErasedFile:
    use_case: str
    dataset: str
    kind: str
    path: str
    rows_removed: int
    #: The columns that held the person.
    columns: list[str] = field(default_factory=list)
    error: str | None = None
    #: (old root, new root) of each manifest re-signed for this file.
    resigned: list[dict[str, Any]] = field(default_factory=list)
    #: The open legal holds that keep this file as it is (GDPR Art. 17(3)(e)): nothing is removed from it.
    held_by: list[str] = field(default_factory=list)
    #: The predictions removed from beside an accepted batch, with its rows (:mod:`.predictions`).
    predictions_removed: int = 0

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "use_case": self.use_case,
            "dataset": self.dataset,
            "kind": self.kind,
            "path": self.path,
            "rows_removed": self.rows_removed,
            "columns": self.columns,
            "error": self.error,
            "manifests": self.resigned,
            "held_by": self.held_by,
            "predictions_removed": self.predictions_removed,
        }


@dataclass
class ErasureResult:
    search: SearchResult
    files: list[ErasedFile] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(f.error is None for f in self.files)

    def to_json_dict(self) -> dict[str, Any]:
        found = self.search.to_json_dict()
        return {
            "request_id": found["request_id"],
            "identifier_type": found["identifier_type"],
            "identifier_hash": found["identifier_hash"],
            "erased_at": found["searched_at"],
            "use_cases": found["use_cases"],
            "complete": self.complete,
            "rows_removed": sum(f.rows_removed for f in self.files),
            "files": [f.to_json_dict() for f in self.files],
            "kept_under_legal_hold": [f.path for f in self.files if f.held_by],
            "datasets": sorted({f"{f.use_case}.{f.dataset}" for f in self.files if f.dataset and f.rows_removed}),
            "model_versions": found["model_versions"],
            "not_searched": found["not_searched"],
            "limits": found["limits"],
        }


def _erase_place(found: FoundPlace, identifier: Any, before: os.stat_result) -> ErasedFile:
    place = found.place
    out = ErasedFile(place.use_case, place.dataset, place.kind, place.shown_path(), 0, sorted(found.hits.columns))
    try:
        out.rows_removed = erase_rows(
            place, Matcher.for_place(identifier, place), found.hits.rows, found.hits.rows_scanned, before
        )
        if out.rows_removed:  # an accepted batch's predictions about the person go with the person's rows
            out.predictions_removed = erase_predictions(place.path, set(found.hits.rows))
    except CharterError as exc:  # the message names the file and the reason, never a value
        out.error = str(exc)
    return out


def _resign(session: Session, erased: ErasedFile, path: Path, request_id: str, actor: str) -> None:
    """A new signed manifest for each active manifest that covers ``path``, linked to the old one in the chain."""
    from sqlalchemy import select

    from charter_guardrails.checks.integrity.manifest import build_manifest, sign_manifest
    from charter_guardrails.checks.integrity.manifest_registry import store_manifest
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.ledger.audit import append_event
    from charter_guardrails.ledger.models import DatasetRecord, Manifest

    rows = session.execute(
        select(Manifest, DatasetRecord)
        .join(DatasetRecord, DatasetRecord.id == Manifest.dataset_id)
        .where(DatasetRecord.use_case == erased.use_case, Manifest.status == "active")
    ).all()
    for old, record in rows:
        location = Path(str((old.document or {}).get("location", "")))
        if not covers(location, path):
            continue
        location = location if location.resolve() == path.resolve() or location.is_dir() else path
        document = build_manifest(
            location, use_case=record.use_case, dataset=record.name, run_id=f"dsr:{request_id}", algorithm=old.algorithm
        )
        new = store_manifest(
            session, sign_manifest(document), policy=load_policy(record.use_case), dataset=record.name, actor=actor
        )
        link = {
            "dataset": record.name,
            "old_manifest_id": old.id,
            "old_root": old.merkle_root,
            "new_root": new.merkle_root,
        }
        append_event(
            session,
            actor=actor,
            action="dsr.manifest_resigned",
            subject=new,
            use_case=record.use_case,
            run_id=f"dsr:{request_id}",
            payload={"request_id": request_id, **link},
        )
        erased.resigned.append({**link, "new_manifest_id": new.id})


def erase(value: str, kind: str, request_id: str, *, use_case: str | None = None, actor: str = ACTOR) -> ErasureResult:
    """Remove the person's rows from every file of the project that holds them; record and report it.

    :raises ConfigError: a malformed value, an unknown type or use case, a request id that cannot name a folder.
    """
    from charter_guardrails.ledger.store import ledger_session

    request_id = check_request_id(request_id)
    identifier = parse_identifier(value, kind)
    stats: dict[Path, os.stat_result] = {}
    result = ErasureResult(search(identifier, request_id, use_case, on_place=lambda p: _remember(stats, p.path)))
    held = _legal_holds(result.search.found)
    for found in result.search.found:
        if held[found.place.path]:
            place = found.place
            kept = ErasedFile(
                place.use_case, place.dataset, place.kind, place.shown_path(), 0, sorted(found.hits.columns)
            )
            kept.held_by = held[found.place.path]
            result.files.append(kept)
            continue
        result.files.append(_erase_place(found, identifier, stats[found.place.path]))
    with ledger_session() as session:
        for found, erased in zip(result.search.found, result.files, strict=True):
            if erased.rows_removed:
                _resign(session, erased, found.place.path, request_id, actor)
        _record(session, result, actor)
    from charter_guardrails.dsr.report import write_dsr_report

    write_dsr_report("erasure", result.to_json_dict())
    log.info(
        "dsr %s: %d row(s) erased from %d file(s), %d manifest(s) re-signed%s",
        request_id,
        sum(f.rows_removed for f in result.files),
        sum(1 for f in result.files if f.rows_removed),
        sum(len(f.resigned) for f in result.files),
        "" if result.complete else ", some files could not be changed",
    )
    return result


def _legal_holds(found: list[FoundPlace]) -> dict[Path, list[str]]:
    """The open legal holds that cover each file found (retention's holds: a dataset, a run, a model version's run,
    or the whole use case). Erasure does not apply to data kept for legal claims (GDPR Art. 17(3)(e))."""
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.retention.holds import Keepers

    work = get_settings().home / "work"
    with ledger_session() as session:
        keepers = {uc: Keepers.load(session, uc) for uc in sorted({f.place.use_case for f in found})}
    held: dict[Path, list[str]] = {}
    for item in found:
        place = item.place
        run = None
        if place.kind == "working_copy" and place.path.resolve().is_relative_to((work / place.use_case).resolve()):
            run = place.path.resolve().relative_to((work / place.use_case).resolve()).parts[0]
        held[place.path] = keepers[place.use_case].legal_holds_on(
            dataset=place.dataset or None, run_id=run, name=place.path.name
        )
    return held


def _remember(stats: dict[Path, os.stat_result], path: Path) -> None:
    stats[path] = path.stat()


def _record(session: Session, result: ErasureResult, actor: str) -> None:
    """One ``dsr.erased`` event per use case searched: what was removed where, and the models to decide on."""
    from charter_guardrails.ledger.audit import append_event

    data = result.to_json_dict()
    for use_case in data["use_cases"]:
        files = [f for f in data["files"] if f["use_case"] == use_case]
        append_event(
            session,
            actor=actor,
            action="dsr.erased",
            use_case=use_case,
            run_id=f"dsr:{data['request_id']}",
            payload={
                "request_id": data["request_id"],
                "identifier_type": data["identifier_type"],
                "identifier_hash": data["identifier_hash"],
                "files": [{k: f[k] for k in ("path", "kind", "dataset", "rows_removed", "error")} for f in files],
                "datasets": [d for d in data["datasets"] if d.startswith(f"{use_case}.")],
                "model_versions": [m for m in data["model_versions"] if m["use_case"] == use_case],
                "retraining": "to be decided by the DPO"
                if any(m["use_case"] == use_case for m in data["model_versions"])
                else "no model version trained on this person's data",
            },
        )
