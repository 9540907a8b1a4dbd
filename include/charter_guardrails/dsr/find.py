"""``find``: where a person's data lives, for an access request (GDPR Art. 15) or before an erasure (Art. 17).

Every use case (or the one asked for) is searched: its declared files, the other files of its data folder,
the accepted and quarantined batches, and the pseudonymised working copies (:mod:`.places`), each streamed
(:mod:`.scan`). The result names each place (use case, dataset, kind, path, rows, columns, how it was
matched) and the model versions trained on data that held the person (:mod:`.trained`).

What is recorded of the request (the audit event ``dsr.searched``, the report, the logs) is its id, the
identifier's type and keyed hash, paths and counts: never the value.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from charter_guardrails.core.errors import CharterError, ConfigError
from charter_guardrails.dsr.identifiers import Identifier, parse_identifier
from charter_guardrails.dsr.places import Place, load_policies, not_searched, places_of
from charter_guardrails.dsr.scan import FileHits, Matcher, scan
from charter_guardrails.dsr.trained import TrainedVersion, trained_on

log = logging.getLogger(__name__)

ACTOR = "charter-dsr"
#: A request id names a folder of the reports: letters, digits, ``.``, ``_`` and ``-``.
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: What cannot be found from the value alone, said in every report.
LIMITS = (
    "Pseudonymised copies are searched for the keyed pseudonyms and entity tokens of the value's usual written "
    "forms (as given, normalised, and the national and international formats). A token made from a form written "
    "otherwise in the source cannot be recomputed from the value alone; the clear value is still searched in "
    "every copy, and the raw file the copy was made from is found by value.",
    "A name is matched as a whole (case and accents ignored); a person named only by first or last name, or "
    "through another identifier, is found by searching that identifier too.",
    "SQL tables and objects in storage declared by a policy are not files of the data folder: they are listed as "
    "not searched (an object's staged copies are).",
)


@dataclass(frozen=True)
class FoundPlace:
    place: Place
    hits: FileHits

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "use_case": self.place.use_case,
            "dataset": self.place.dataset,
            "kind": self.place.kind,
            "path": self.place.shown_path(),
            "rows": len(self.hits.rows),
            "columns": sorted(self.hits.columns),
            "matched_by": sorted(self.hits.matched_by),
        }


@dataclass
class SearchResult:
    request_id: str
    identifier_type: str
    identifier_hash: str
    use_cases: list[str]
    found: list[FoundPlace] = field(default_factory=list)
    files_searched: int = 0
    rows_searched: int = 0
    not_searched: list[dict[str, str]] = field(default_factory=list)
    model_versions: list[TrainedVersion] = field(default_factory=list)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "identifier_type": self.identifier_type,
            "identifier_hash": self.identifier_hash,
            "searched_at": self.at,
            "use_cases": self.use_cases,
            "found": bool(self.found),
            "places": [f.to_json_dict() for f in self.found],
            "rows": sum(len(f.hits.rows) for f in self.found),
            "files_searched": self.files_searched,
            "rows_searched": self.rows_searched,
            "not_searched": self.not_searched,
            "model_versions": [v.to_json_dict() for v in self.model_versions],
            "limits": list(LIMITS),
        }


def check_request_id(request_id: str) -> str:
    """``request_id`` if it can name a folder; a :class:`ConfigError` otherwise."""
    if not REQUEST_ID.fullmatch(request_id):
        raise ConfigError(
            "the request id must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit "
            "(e.g. DPO-2026-0042); it names the report folder"
        )
    return request_id


def new_request_id() -> str:
    return "dsr-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def hash_key() -> bytes:
    """The pseudonymisation (master) key: the key of the request's keyed hash."""
    from charter_guardrails.core.keys import load_pseudonymisation_key

    return load_pseudonymisation_key()


def search(
    identifier: Identifier,
    request_id: str,
    use_case: str | None = None,
    *,
    on_place: Callable[[Place], None] | None = None,
) -> SearchResult:
    """Scan every place of the use cases for ``identifier``; the ledger is read for the model versions only.

    :param on_place: called with each place before it is scanned (the erasure notes each file's state then).
    """
    policies = load_policies(use_case)
    result = SearchResult(
        request_id, identifier.type.value, identifier.keyed_hash(hash_key()), [p.id for p in policies]
    )
    for policy in policies:
        result.not_searched += [{"place": ref, "reason": reason} for ref, reason in not_searched(policy)]
        for place in places_of(policy):
            try:
                if on_place is not None:
                    on_place(place)
                hits = scan(place, Matcher.for_place(identifier, place))
            except CharterError as exc:  # a broken file is reported, the others still searched
                result.not_searched.append({"place": place.shown_path(), "reason": _reason(exc)})
                continue
            result.files_searched += 1
            result.rows_searched += hits.rows_scanned
            if hits.rows:
                result.found.append(FoundPlace(place, hits))
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        result.model_versions = trained_on(session, [f.place for f in result.found])
    log.info(
        "dsr %s: %s searched in %d file(s), found in %d place(s)",
        request_id,
        identifier.type.value,
        result.files_searched,
        len(result.found),
    )
    return result


def _reason(exc: Exception) -> str:
    kind = getattr(exc, "kind", None)
    return f"unreadable ({kind})" if kind else f"unreadable ({type(exc).__name__})"


def find(
    value: str,
    kind: str,
    *,
    use_case: str | None = None,
    request_id: str | None = None,
    actor: str = ACTOR,
    write_report: bool = True,
) -> SearchResult:
    """Where the person identified by ``value`` (of type ``kind``) appears; recorded and reported for the DPO.

    :raises ConfigError: a malformed value, an unknown type or use case, a request id that cannot name a folder.
    """
    request_id = check_request_id(request_id or new_request_id())
    identifier = parse_identifier(value, kind)
    result = search(identifier, request_id, use_case)
    from charter_guardrails.ledger.audit import append_event
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        append_event(
            session,
            actor=actor,
            action="dsr.searched",
            use_case=use_case,
            payload={
                "request_id": request_id,
                "identifier_type": result.identifier_type,
                "identifier_hash": result.identifier_hash,
                "places": [{k: v for k, v in f.to_json_dict().items() if k != "columns"} for f in result.found],
                "model_versions": [v.to_json_dict() for v in result.model_versions],
            },
        )
    if write_report:
        from charter_guardrails.dsr.report import write_dsr_report

        write_dsr_report("access", result.to_json_dict())
    return result
