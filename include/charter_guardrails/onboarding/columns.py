"""Each column of a drafted use case: its guessed role, type and personal data, from the profile and the scan.

Every guess is to be confirmed by a person; the policy draft says so next to each column that holds personal data.
A column that holds personal data, or a look-alike of it, or whose role is identifier or free text, is *sensitive*:
no value of it (value set, minimum, maximum) is ever written in a drafted file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from charter_guardrails.core.policy_models import ColumnRole, ColumnType, PersonalDataCategory
from charter_guardrails.onboarding.profile import FREE_TEXT_MIN_WORDS, LOW_CARDINALITY_MAX, ColumnProfile

if TYPE_CHECKING:
    from charter_guardrails.checks.privacy.report import ColumnScan, ScanReport
    from charter_guardrails.onboarding.profile import FileProfile

#: Words of a column name that say it identifies a row.
ID_WORDS = frozenset(
    {"id", "ids", "uuid", "guid", "identifiant", "identifier", "ident", "ref", "reference", "key", "num", "numero"}
)
#: The personal-data category each entity type suggests; others are indirect identifiers.
ENTITY_CATEGORIES = {
    "PERSON": PersonalDataCategory.DIRECT_IDENTIFIER,
    "FR_NIR": PersonalDataCategory.DIRECT_IDENTIFIER,
    "FR_ID_CARD": PersonalDataCategory.DIRECT_IDENTIFIER,
    "FR_PASSPORT": PersonalDataCategory.DIRECT_IDENTIFIER,
    "FR_IBAN": PersonalDataCategory.DIRECT_IDENTIFIER,
    "FR_RIB": PersonalDataCategory.DIRECT_IDENTIFIER,
    "IBAN_CODE": PersonalDataCategory.DIRECT_IDENTIFIER,
    "CREDIT_CARD": PersonalDataCategory.DIRECT_IDENTIFIER,
    "BE_NATIONAL_NUMBER": PersonalDataCategory.DIRECT_IDENTIFIER,
    "DE_TAX_ID": PersonalDataCategory.DIRECT_IDENTIFIER,
    "ES_NIF": PersonalDataCategory.DIRECT_IDENTIFIER,
    "ES_NIE": PersonalDataCategory.DIRECT_IDENTIFIER,
    "IT_FISCAL_CODE": PersonalDataCategory.DIRECT_IDENTIFIER,
    "EMAIL_ADDRESS": PersonalDataCategory.CONTACT,
    "PHONE_NUMBER": PersonalDataCategory.CONTACT,
    "FR_PHONE": PersonalDataCategory.CONTACT,
    "LOCATION": PersonalDataCategory.LOCATION,
    "DATE_OF_BIRTH": PersonalDataCategory.DEMOGRAPHIC,
}
#: When a column holds several entity types, the category of the most identifying one is proposed.
_RANK = [
    PersonalDataCategory.DIRECT_IDENTIFIER,
    PersonalDataCategory.CONTACT,
    PersonalDataCategory.LOCATION,
    PersonalDataCategory.DEMOGRAPHIC,
    PersonalDataCategory.INDIRECT_IDENTIFIER,
]
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True)
class ColumnDraft:
    """One column as the drafts declare it."""

    profile: ColumnProfile
    role: ColumnRole
    personal_data: PersonalDataCategory
    #: (entity type, scanned rows holding it) found at or above the scan's score threshold.
    entities: list[tuple[str, int]] = field(default_factory=list)
    #: (entity type, scanned rows) of look-alikes below the threshold (a failed checksum, a weak format).
    suspects: list[tuple[str, int]] = field(default_factory=list)
    scanned_rows: int = 0

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def type(self) -> ColumnType:
        return self.profile.type

    @property
    def pseudonymise(self) -> bool:
        """Identifiers are replaced by a keyed hash; free text with personal data has its entities masked."""
        return self.role is ColumnRole.IDENTIFIER or (
            self.role is ColumnRole.FREE_TEXT and self.personal_data is not PersonalDataCategory.NONE
        )

    @property
    def sensitive(self) -> bool:
        """No value of this column may be written: personal data (or a look-alike), an identifier or free text."""
        return bool(
            self.entities
            or self.suspects
            or self.personal_data is not PersonalDataCategory.NONE
            or self.role in (ColumnRole.IDENTIFIER, ColumnRole.FREE_TEXT)
        )

    @property
    def pii_allowed(self) -> list[str]:
        return sorted(entity for entity, _ in self.entities)


def draft_columns(profile: FileProfile, scan: ScanReport | None, label: str | None) -> list[ColumnDraft]:
    """The columns of ``profile`` with their guessed role and the personal data the scan found in them."""
    drafts = []
    for column in profile.columns:
        role = guess_role(column, label)
        found = _scan_of(scan, column.name)
        entities = [(f.entity_type, f.count) for f in found.findings] if found else []
        suspects = [(f.entity_type, f.count) for f in found.suspects] if found else []
        drafts.append(
            ColumnDraft(
                profile=column,
                role=role,
                personal_data=personal_category(role, [e for e, _ in entities]),
                entities=entities,
                suspects=suspects,
                scanned_rows=scan.scanned_rows if scan else 0,
            )
        )
    return drafts


def _scan_of(scan: ScanReport | None, name: str) -> ColumnScan | None:
    if scan is None:
        return None
    try:
        return scan.column(name)
    except KeyError:
        return None


def guess_role(column: ColumnProfile, label: str | None) -> ColumnRole:
    """label (``--label``), timestamp (dates), identifier (unique, named like an id), free text (long text), feature."""
    if column.name == label:
        return ColumnRole.LABEL
    if column.type in (ColumnType.DATE, ColumnType.DATETIME):
        return ColumnRole.TIMESTAMP
    short_text = column.type is ColumnType.STRING and column.median_words < FREE_TEXT_MIN_WORDS
    if column.unique and (
        # a short text unique to each row is a key, whatever its name: as a feature, a model would learn it by heart
        short_text
        or (column.type in (ColumnType.STRING, ColumnType.INTEGER, ColumnType.CATEGORY) and named_like_id(column.name))
    ):
        return ColumnRole.IDENTIFIER
    if column.type is ColumnType.STRING and column.median_words >= FREE_TEXT_MIN_WORDS:
        return ColumnRole.FREE_TEXT
    return ColumnRole.FEATURE


def named_like_id(name: str) -> bool:
    """``request_id``, ``IdDemande``, ``uuid``, ``ref-dossier``: a word of the name says it identifies a row."""
    words = re.split(r"[^0-9a-zA-Z]+", _CAMEL.sub("_", name))
    return any(w.lower() in ID_WORDS for w in words if w)


def personal_category(role: ColumnRole, entities: list[str]) -> PersonalDataCategory:
    """The category the entity types found suggest: free text for a free-text column, else the most identifying."""
    if not entities:
        return PersonalDataCategory.NONE
    if role is ColumnRole.FREE_TEXT:
        return PersonalDataCategory.FREE_TEXT
    found = {ENTITY_CATEGORIES.get(e, PersonalDataCategory.INDIRECT_IDENTIFIER) for e in entities}
    return next(c for c in _RANK if c in found)


def is_classification(label: ColumnProfile) -> bool:
    """A label of categories (text, booleans, a few integers) is classified; a number is regressed."""
    if label.type in (ColumnType.INTEGER,):
        return label.distinct <= LOW_CARDINALITY_MAX
    return label.type not in (ColumnType.FLOAT, ColumnType.DATE, ColumnType.DATETIME)


def default_max_rows(rows: int) -> int:
    """A round proportionality limit of about twice the rows delivered (at least 1,000): 1, 2 or 5 times a power
    of ten."""
    target = max(1_000, 2 * rows)
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= target:
                return step * magnitude
        magnitude *= 10
