"""Keyed pseudonymisation: the training-ready dataset (Sûreté 1: collection that follows the rules on personal data).

- **Minimisation**: columns the policy does not declare are dropped.
- **Identifiers** (``role: identifier`` or ``pseudonymise: true``) become
  HMAC-SHA256(key, value) in hex. The same value gives the same pseudonym in every table of a use
  case, so joins still work; without the key the mapping cannot be recomputed (unlike a plain hash
  of a phone number, which a dictionary attack reverses in seconds).
- **One key per use case**: the key is derived from the master key for the use case
  (:func:`charter_guardrails.core.keys.pseudonymisation_key_for`, HKDF-SHA256), so a person's pseudonyms in
  two use cases cannot be joined. Each copy records the derivation that made it (Parquet schema metadata
  ``charter.pseudonymisation``, or ``<copy>.pseudonymisation.json`` beside a CSV); a copy without the record
  was made with the master key, and :func:`key_for_copy` still matches values against it.
- **Free text** (``role: free_text`` with ``pseudonymise: true``): every entity the scanner
  detects, suspects included (a NIR with a typo is still someone's NIR), is replaced through a
  presidio-anonymizer ``custom`` operator by ``<ENTITY_xxxxxxxxxx>``, a keyed short hash, so the
  same person is the same token across messages.

HMAC comes from the standard library (``hmac`` + ``hashlib``): it is the same primitive as
``cryptography``'s ``HMAC``, implemented in C by OpenSSL as well, and it is about ten times
faster per call on the millions of short values a column holds, because it does not build a
Python context object per value. The key is read by :func:`charter_guardrails.core.keys.pseudonymisation_key_for`
and never logged or written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.privacy.report import Hit
from charter_guardrails.checks.privacy.scanner import detect_values, distinct_values
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.keys import KEY_DERIVATION_HKDF, KEY_DERIVATION_MASTER, pseudonymisation_key_for

if TYPE_CHECKING:
    import pandas as pd

    from charter_guardrails.core.policy_models import CsvDialect, Dataset

log = logging.getLogger(__name__)

#: Hex characters of the keyed hash in a free-text token: 40 bits, collisions negligible per dataset.
TOKEN_HEX = 10
#: A CSV cell starting with one of these is run as a formula by spreadsheet software (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")
#: Where a Parquet copy records how it was made (schema metadata key), and the suffix of a CSV copy's record.
COPY_METADATA_KEY = b"charter.pseudonymisation"
COPY_RECORD_SUFFIX = ".pseudonymisation.json"


def pseudonym(key: bytes, value: str) -> str:
    """The keyed pseudonym of an identifier (64 hex characters)."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def entity_token(key: bytes, entity_type: str, text: str) -> str:
    """``<PERSON_3f2a9c01de>``: the entity type and a keyed short hash of its normalised text."""
    normalised = " ".join(text.split()).casefold()
    digest = hmac.new(key, f"{entity_type}\x1f{normalised}".encode(), hashlib.sha256).hexdigest()[:TOKEN_HEX]
    return f"<{entity_type}_{digest}>"


@dataclass
class PseudonymisationReport:
    rows: int
    kept_columns: list[str]
    dropped_columns: list[str]
    hashed_columns: list[str]
    masked_columns: list[str]
    missing_columns: list[str]
    masked_entities: dict[str, int] = field(default_factory=dict)
    #: The key that made the copy (:data:`~charter_guardrails.core.keys.KEY_DERIVATIONS`), when a file was written.
    key_derivation: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "kept_columns": self.kept_columns,
            "dropped_columns": self.dropped_columns,
            "hashed_columns": self.hashed_columns,
            "masked_columns": self.masked_columns,
            "missing_columns": self.missing_columns,
            "masked_entities": dict(sorted(self.masked_entities.items())),
            "key_derivation": self.key_derivation,
        }


def mask_free_text(
    values: list[str], key: bytes, *, column: str = "", counts: dict[str, int] | None = None
) -> list[str]:
    """Replace the detected entities of each text by keyed tokens, through presidio-anonymizer."""
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

    engine = AnonymizerEngine()  # type: ignore[no-untyped-call]  # presidio-anonymizer leaves it unannotated
    hits = propagate_names(values, detect_values(values, "free_text", column))
    out: list[str] = []
    operators: dict[str, OperatorConfig] = {}
    for text, text_hits in zip(values, hits, strict=True):
        if not text_hits:
            out.append(text)
            continue
        results = [RecognizerResult(h.entity_type, h.start, h.end, max(h.score, 0.01)) for h in text_hits]
        for h in text_hits:
            if h.entity_type not in operators:
                operators[h.entity_type] = OperatorConfig(
                    "custom", {"lambda": lambda s, _e=h.entity_type: entity_token(key, _e, s)}
                )
            if counts is not None:
                counts[h.entity_type] = counts.get(h.entity_type, 0) + 1
        out.append(engine.anonymize(text=text, analyzer_results=results, operators=operators).text)
    return out


#: Entities the NER finds: it may miss in one sentence a name it finds in others.
_PROPAGATED = frozenset({"PERSON", "LOCATION"})
_WORD = re.compile(r"[\w'’-]+")


def propagate_names(values: Sequence[str], hits: list[list[Hit]]) -> list[list[Hit]]:
    """Mask a name or place of two words or more wherever it appears in the column, once it was detected anywhere in it.

    spaCy finds "Barnabé Kervadec" after "Je suis" but may miss it after "Signé"; the same person
    must not stay in clear in the sentences where the model missed them.
    """
    known: dict[str, str] = {}
    for text, text_hits in zip(values, hits, strict=True):
        for h in text_hits:
            span = text[h.start : h.end]
            if h.entity_type in _PROPAGATED and not h.suspect and len(_WORD.findall(span)) >= 2:
                known.setdefault(span, h.entity_type)
    by_first_word: dict[str, list[str]] = {}
    for span in sorted(known, key=len, reverse=True):
        first = _WORD.search(span)
        if first is not None and first.start() == 0:
            by_first_word.setdefault(first.group(0), []).append(span)
    if not by_first_word:
        return hits
    out: list[list[Hit]] = []
    for text, text_hits in zip(values, hits, strict=True):
        taken = [(h.start, h.end) for h in text_hits]
        extra = []
        for word in _WORD.finditer(text):
            for span in by_first_word.get(word.group(0), ()):
                start, end = word.start(), word.start() + len(span)
                if (
                    text.startswith(span, start)
                    and (end == len(text) or not (text[end].isalnum() or text[end] == "_"))
                    and not any(s < end and start < e for s, e in taken)
                ):
                    extra.append(Hit(known[span], start, end, 0.85))
                    taken.append((start, end))
                    break
        out.append(sorted([*text_hits, *extra], key=lambda h: h.start) if extra else text_hits)
    return out


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or (not isinstance(value, (str, bytes)) and bool(pd.isna(value)))


def pseudonymise_frame(
    frame: pd.DataFrame, dataset: Dataset, key: bytes
) -> tuple[pd.DataFrame, PseudonymisationReport]:
    """The training-ready copy of ``frame``: declared columns only, identifiers hashed, free text masked."""
    from charter_guardrails.core.policy_models import ColumnRole

    declared = [c for c in dataset.columns if c.name in frame.columns]
    report = PseudonymisationReport(
        rows=len(frame),
        kept_columns=[c.name for c in declared],
        dropped_columns=[str(c) for c in frame.columns if str(c) not in {d.name for d in dataset.columns}],
        hashed_columns=[],
        masked_columns=[],
        missing_columns=[c.name for c in dataset.columns if c.name not in frame.columns],
    )
    out = frame[[c.name for c in declared]].copy()
    for spec in declared:
        series = out[spec.name]
        if spec.role is ColumnRole.FREE_TEXT and spec.pseudonymise:
            values, _, _ = distinct_values(series)
            masked = dict(
                zip(values, mask_free_text(values, key, column=spec.name, counts=report.masked_entities), strict=True)
            )
            out[spec.name] = series.map(lambda v, m=masked: v if _missing(v) else m.get(str(v), v))
            report.masked_columns.append(spec.name)
            log.info("pseudonymise: free-text column %s, %d distinct values masked", spec.name, len(values))
        elif spec.pseudonymise or spec.role is ColumnRole.IDENTIFIER:
            values, _, _ = distinct_values(series)
            hashed = {v: pseudonym(key, v) for v in values}
            out[spec.name] = series.map(lambda v, m=hashed: v if _missing(v) else m.get(str(v)))
            report.hashed_columns.append(spec.name)
            log.info("pseudonymise: identifier column %s, %d distinct values hashed", spec.name, len(values))
    if report.dropped_columns:
        log.info(
            "pseudonymise: dropped %d undeclared column(s): %s",
            len(report.dropped_columns),
            ", ".join(report.dropped_columns),
        )
    return out, report


def neutralise_formula(value: Any) -> Any:
    """``'=HYPERLINK(…)`` for ``=HYPERLINK(…)``: a leading quote makes a spreadsheet show the text instead of
    running it (OWASP's advice for CSV injection). Plain numbers such as ``-3,5`` are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def copy_metadata(use_case: str, dataset: str, derivation: str = KEY_DERIVATION_HKDF) -> dict[str, str]:
    """What a pseudonymised copy records about itself: whose data, and which key made its pseudonyms (never the key)."""
    return {"use_case": use_case, "dataset": dataset, "key_derivation": derivation, "hash": "hmac-sha256"}


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + COPY_RECORD_SUFFIX)


def write_frame(
    frame: pd.DataFrame, path: Path, dialect: CsvDialect | None = None, *, metadata: dict[str, str] | None = None
) -> None:
    """Write CSV in the declared dialect (or Parquet by suffix), atomically, with the copy's ``metadata``.

    CSV output is for people too, who open it in a spreadsheet: text cells that would run as formulas are
    neutralised, and rows end with CRLF (RFC 4180), so that a cell holding a carriage return is quoted
    instead of splitting its row. A CSV has no room for metadata: it goes to ``<file>.pseudonymisation.json``,
    written first, so that a copy never sits beside another copy's record.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if metadata:
            extra = {COPY_METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()}
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
        pq.write_table(table, tmp)
    else:
        _write_record(_record_path(path), metadata)
        sep, decimal, encoding = (
            (dialect.separator, dialect.decimal, dialect.encoding) if dialect else (";", ",", "utf-8")
        )
        from pandas.api.types import is_string_dtype

        safe = frame.copy()
        for column in safe.columns:
            if is_string_dtype(safe[column]):
                safe[column] = safe[column].map(neutralise_formula)
        safe.to_csv(
            tmp, sep=sep, decimal=decimal, encoding=encoding, index=False, errors="replace", lineterminator="\r\n"
        )
    tmp.replace(path)


def _write_record(record: Path, metadata: dict[str, str] | None) -> None:
    if metadata is None:
        record.unlink(missing_ok=True)  # a copy written without a record must not inherit an older one
        return
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(record)


def read_copy_metadata(path: Path) -> dict[str, str] | None:
    """The record of a pseudonymised copy (:func:`copy_metadata`), or ``None`` for a copy written without one."""
    raw: bytes | str | None
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        raw = (pq.read_schema(path).metadata or {}).get(COPY_METADATA_KEY)
    else:
        record = _record_path(path)
        raw = record.read_text(encoding="utf-8") if record.is_file() else None
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(
            f"{path.name}: its pseudonymisation record is not JSON; restore it or make the copy again"
        ) from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"{path.name}: its pseudonymisation record is not an object of strings; make the copy again")
    return {str(k): str(v) for k, v in data.items()}


def key_for_copy(copy: Path, use_case: str) -> bytes:
    """The key that made the pseudonyms of ``copy``, to pseudonymise a value as that copy did.

    A copy records its derivation; a copy without a record was made before keys were derived per use case, with
    the master key. A copy of another use case is refused: its pseudonyms are not ``use_case``'s.

    :raises ConfigError: the copy belongs to another use case or its record is unreadable.
    """
    metadata = read_copy_metadata(copy)
    if metadata is None:
        return pseudonymisation_key_for(use_case, KEY_DERIVATION_MASTER)
    if metadata.get("use_case") != use_case:
        raise ConfigError(
            f"{copy.name} is a pseudonymised copy of {metadata.get('use_case')!r}, not of {use_case!r}: "
            "use the use case that made it"
        )
    return pseudonymisation_key_for(use_case, metadata.get("key_derivation", KEY_DERIVATION_MASTER))


def pseudonymise_file(
    policy: Any, dataset_id: str, source: Path, target: Path, *, derivation: str = KEY_DERIVATION_HKDF
) -> PseudonymisationReport:
    """Read ``source`` as the policy declares the dataset, pseudonymise it with the use case's key, write ``target``.

    :param derivation: the key to use; the default, the use case's own key, is right for every new copy. The master
        key (``master``) only extends a copy made before keys were derived per use case.
    """
    from charter_guardrails.readers.files import read_dataset

    dataset = policy.dataset(dataset_id)
    frame = read_dataset(dataset, source)
    out, report = pseudonymise_frame(frame, dataset, pseudonymisation_key_for(policy.id, derivation))
    report.key_derivation = derivation
    write_frame(out, target, dataset.csv, metadata=copy_metadata(policy.id, dataset.id, derivation))
    return report
