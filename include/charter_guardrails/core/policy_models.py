"""The sections of a use-case policy file: enums and frozen pydantic models.

:class:`~charter_guardrails.core.policy.UseCasePolicy` assembles them;
:func:`~charter_guardrails.core.policy.load_policy` reads the file. Unknown keys are errors
(``extra="forbid"``), so a misspelt threshold never silently keeps its default.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from charter_guardrails.core import dataset_paths
from charter_guardrails.core.settings import get_settings

IDENTIFIER = r"^[a-z][a-z0-9_]{0,62}$"
Identifier = Annotated[str, Field(pattern=IDENTIFIER)]
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
Email = Annotated[str, Field(pattern=EMAIL)]
TRAINER = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$"


class PolicySection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class LegalBasis(StrEnum):
    """GDPR Art. 6(1) lawful bases."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"


class ColumnRole(StrEnum):
    FEATURE = "feature"
    LABEL = "label"
    IDENTIFIER = "identifier"
    SENSITIVE_ATTRIBUTE = "sensitive_attribute"
    FREE_TEXT = "free_text"
    TIMESTAMP = "timestamp"


class PersonalDataCategory(StrEnum):
    NONE = "none"
    DIRECT_IDENTIFIER = "direct_identifier"
    INDIRECT_IDENTIFIER = "indirect_identifier"
    CONTACT = "contact"
    LOCATION = "location"
    DEMOGRAPHIC = "demographic"
    FREE_TEXT = "free_text"
    SPECIAL_CATEGORY = "special_category"  # GDPR Art. 9


class DatasetFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    SQL = "sql"


class DatasetRole(StrEnum):
    TRAINING = "training"
    INFERENCE = "inference"
    REFERENCE = "reference"


class ColumnType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    CATEGORY = "category"


class TaskNature(StrEnum):
    """What the system does for the people who use it (Maîtrise humaine 3)."""

    #: a repetitive, routine task that engages no human responsibility: where the charter prefers AI
    ROUTINE = "routine"
    #: it informs a decision that a person takes and remains responsible for
    DECISION_SUPPORT = "decision_support"


class SystemOrigin(StrEnum):
    """Who builds the system (Transparence 1)."""

    INTERNAL = "internal"
    #: a provider or a software vendor: it must commit to the charter from the design phase
    EXTERNAL = "external"


class Contact(PolicySection):
    name: str = Field(min_length=1)
    email: Email
    role: str | None = None


class Provider(PolicySection):
    """The provider or vendor of an external system, and where it commits to the charter."""

    name: str = Field(min_length=1)
    #: The reference of the clause (contract, tender, licence) by which the provider commits to meet
    #: the charter from the design phase, e.g. ``"CCAP art. 12.3, marché 2025-118"``.
    compliance_commitment: str = Field(min_length=10)
    contact: Email | None = None


class Sourcing(PolicySection):
    """Where the system comes from (Transparence 1)."""

    origin: SystemOrigin
    provider: Provider | None = None

    @model_validator(mode="after")
    def _provider_when_external(self) -> Sourcing:
        if self.origin is SystemOrigin.EXTERNAL and self.provider is None:
            raise ValueError(
                "origin is external: name the provider and its compliance commitment (Transparence 1) in provider"
            )
        return self


class Objective(PolicySection):
    """The precise objective the system serves and how its success is measured (Proportionnalité 2)."""

    statement: str = Field(min_length=20)
    #: The metric that says the objective is met; it must be the metric the model is evaluated on.
    success_metric: Literal["accuracy", "f1_macro", "mae", "r2"]


class CsvDialect(PolicySection):
    """How a CSV file is written. French public data is often ``;``, decimal comma, Latin-1."""

    separator: str = Field(default=";", min_length=1, max_length=1)
    decimal: Literal[".", ","] = ","
    encoding: str = "utf-8"
    quotechar: str = Field(default='"', min_length=1, max_length=1)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown text encoding {value!r}; use e.g. utf-8, utf-8-sig, latin-1 or cp1252") from exc
        return value

    @model_validator(mode="after")
    def _separator_differs_from_decimal(self) -> CsvDialect:
        if self.separator == self.decimal:
            raise ValueError(f"the separator and the decimal mark are both {self.separator!r}")
        return self


class Column(PolicySection):
    name: str = Field(min_length=1, max_length=128)
    role: ColumnRole
    type: ColumnType = ColumnType.STRING
    personal_data: PersonalDataCategory = PersonalDataCategory.NONE
    #: Presidio entity types allowed in this column (e.g. ``PERSON``, ``FR_PHONE``).
    pii_allowed: list[str] = Field(default_factory=list)
    #: Replace values by a keyed hash (identifiers) or mask detected entities (free text) before training.
    pseudonymise: bool = False
    nullable: bool = True
    description: str | None = None

    @model_validator(mode="after")
    def _free_text_is_pseudonymised(self) -> Column:
        if (
            self.role is ColumnRole.FREE_TEXT
            and self.personal_data is not PersonalDataCategory.NONE
            and not self.pseudonymise
        ):
            raise ValueError("a free-text column that may hold personal data must set pseudonymise: true")
        return self


class Retention(PolicySection):
    days: int = Field(gt=0, le=36500)
    #: The column whose date starts the retention period.
    date_column: str


class Dataset(PolicySection):
    id: Identifier
    role: DatasetRole
    format: DatasetFormat
    #: File or directory, relative to the data folder (``CHARTER_DATA_DIR``). Never absolute, never ``..``.
    path: str | None = None
    #: An object in storage instead of a file of the data folder: ``s3://bucket/key`` (or ``file:///path``).
    #: It is staged under the data folder before the guardrails read it (``charter_guardrails.readers.objects``).
    uri: str | None = None
    #: The Airflow connection holding the credentials of ``uri`` (S3: access key, secret, ``endpoint_url``).
    conn_id: str | None = None
    #: SQL table name, for ``format: sql``.
    table: str | None = None
    #: The unique, non-null columns that order the table's rows for its integrity manifest (``format: sql``),
    #: when the table has no primary key or the key is personal data.
    order_by: list[str] | None = Field(default=None, min_length=1)
    csv: CsvDialect = Field(default_factory=CsvDialect)
    personal_data: bool
    #: Categories of data subjects (GDPR Art. 33(3)(a)), e.g. ``usagers``.
    data_subjects: list[str] = Field(default_factory=list)
    retention: Retention | None = None
    #: Great Expectations suite file name in ``expectations/``.
    suite: str | None = None
    #: Proportionality: refuse more rows than this.
    max_rows: int | None = Field(default=None, gt=0)
    columns: list[Column] = Field(min_length=1)

    @field_validator("path")
    @classmethod
    def _relative_inside_data_dir(cls, value: str | None) -> str | None:
        if value is None:
            return value
        pure = PurePosixPath(value.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", value):
            raise ValueError(f"path {value!r} must be relative to the data folder and must not contain '..'")
        return value

    @field_validator("suite")
    @classmethod
    def _suite_file_name(cls, value: str | None) -> str | None:
        if value is not None and (
            value != PurePosixPath(value.replace("\\", "/")).name or value in (".", "..") or ":" in value
        ):
            raise ValueError(f"suite {value!r} must be a file name in the expectations folder, without a directory")
        return value

    @field_validator("uri")
    @classmethod
    def _object_uri(cls, value: str | None) -> str | None:
        return dataset_paths.checked_uri(value)

    @field_validator("table")
    @classmethod
    def _plain_table_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?", value):
            raise ValueError(f"table {value!r} must be a plain [schema.]name")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Dataset:
        if self.format is DatasetFormat.SQL and not self.table:
            raise ValueError("a dataset with format: sql needs a table")
        dataset_paths.check_one_source(self)
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"columns declared twice: {duplicates}")
        if self.order_by is not None and self.format is not DatasetFormat.SQL:
            raise ValueError("order_by orders the rows of a table: only a dataset with format: sql has it; remove it")
        if self.order_by and (set(self.order_by) - set(names) or len(set(self.order_by)) != len(self.order_by)):
            raise ValueError(f"order_by {self.order_by} must name declared columns of the dataset, each once")
        if self.retention and self.retention.date_column not in names:
            raise ValueError(f"retention.date_column {self.retention.date_column!r} is not a declared column")
        if not self.personal_data:
            personal = [
                c.name for c in self.columns if c.personal_data is not PersonalDataCategory.NONE or c.pii_allowed
            ]
            if personal:
                raise ValueError(f"dataset is declared non-personal but columns {personal} declare personal data")
        elif not self.data_subjects:
            raise ValueError("a personal dataset must name its categories of data_subjects (GDPR Art. 33(3)(a))")
        return self

    @property
    def is_object(self) -> bool:
        """The dataset lives in object storage (``uri``) and is staged before it is read."""
        return self.uri is not None

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def columns_with_role(self, *roles: ColumnRole) -> list[Column]:
        return [c for c in self.columns if c.role in roles]

    def personal_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.personal_data is not PersonalDataCategory.NONE]

    def delivery(self, path: str | Path | None = None, data_dir: Path | None = None) -> Path:
        """This dataset's file, or another delivery of it at ``path``: relative to the data folder, or
        absolute inside it; for an object, its staged copy. A path that leaves the data folder is refused."""
        return dataset_paths.delivery_path(self, path, data_dir or get_settings().data_dir)

    def object_uri(self, delivery: str | None = None) -> str:
        """The object a run reads: ``delivery`` (an inference batch named by an asset event or the run's
        parameters, which must be in the bucket of the dataset's ``uri``), else the dataset's ``uri``."""
        return dataset_paths.object_uri(self, delivery)

    def resolve_path(self, data_dir: Path | None = None) -> Path:
        """The dataset's file under the data folder (an object's staged copy); refuses to leave it."""
        return dataset_paths.resolved_path(self, data_dir or get_settings().data_dir)


class QualityPolicy(PolicySection):
    #: Minimum share of successful expectations (error severity) to pass.
    min_success_percent: float = Field(default=100.0, ge=0, le=100)


class GroupSpec(PolicySection):
    column: str
    #: Reference distribution file in ``include/reference/`` (CSV: group;share).
    reference: str | None = None
    min_group_size: int = Field(default=30, ge=1)
    #: Largest allowed |share - reference share|, in percentage points.
    max_share_gap_pp: float = Field(default=10.0, gt=0, le=100)


class EquityPolicy(PolicySection):
    groups: list[GroupSpec] = Field(default_factory=list)
    #: Four-fifths rule: min over groups of base rate / max base rate.
    min_disparate_impact: float = Field(default=0.8, ge=0, le=1)
    #: The label value whose rate is compared across groups (for classification).
    positive_label: str | None = None
    #: Largest allowed fairlearn difference (accuracy or selection rate) across groups.
    max_metric_difference: float = Field(default=0.2, ge=0, le=1)


class DriftPolicy(PolicySection):
    psi_max: float = Field(default=0.2, gt=0)
    ks_pvalue_min: float = Field(default=0.01, ge=0, le=1)
    chi2_pvalue_min: float = Field(default=0.01, ge=0, le=1)
    js_max: float = Field(default=0.1, gt=0, le=1)
    text_length_psi_max: float = Field(default=0.2, gt=0)
    #: Share of batch tokens unseen in the training vocabulary.
    vocabulary_oov_max: float = Field(default=0.3, gt=0, le=1)
    #: Fail when at least this many features drift.
    max_drifted_features: int = Field(default=1, ge=1)


class FootprintPolicy(PolicySection):
    #: Refuse a refresh whose metric gain per kWh is below this.
    min_gain_per_kwh: float = Field(default=0.0, ge=0)
    #: Refuse a training run above this energy budget.
    max_kwh_per_training: float = Field(default=1.0, gt=0)
    #: Refuse a refresh whose metric gain per gram of CO2e is below this (unset: not checked).
    min_gain_per_gco2e: float | None = Field(default=None, ge=0)


class ModelSpec(PolicySection):
    kind: Literal["text_classifier", "regressor"]
    target: str
    metric: Literal["accuracy", "f1_macro", "mae", "r2"]
    #: Minimum improvement over production before a refresh is proposed.
    min_gain: float = 0.0
    #: Held-out share for evaluation.
    test_size: float = Field(default=0.25, gt=0, lt=1)
    #: The team's own ``package.module:function`` (docs/model_refresh.md), run in a child process, time-limited.
    trainer: str | None = Field(default=None, pattern=TRAINER)
    training_timeout: timedelta = Field(default=timedelta(hours=1), gt=timedelta(0))


_PATTERN_REASONS = {  # an address is personal data: a malformed one is not repeated in the error
    IDENTIFIER: "{input!r} must be lower-case letters, digits and '_', starting with a letter (at most 63)",
    EMAIL: "must be an e-mail address",
    TRAINER: "{input!r} must name a function as package.module:function",
}


def validation_reason(error: Any) -> str:
    """The reason of one pydantic error, in the words of the policy file."""
    if error["type"] == "extra_forbidden":
        return "unknown key (not part of the policy schema; check the spelling)"
    if error["type"] == "missing":
        return "required key is missing"
    pattern = str((error.get("ctx") or {}).get("pattern", ""))
    if error["type"] == "string_pattern_mismatch" and pattern in _PATTERN_REASONS:
        return _PATTERN_REASONS[pattern].format(input=error.get("input"))
    return str(error["msg"]).removeprefix("Value error, ")


def __getattr__(name: str) -> object:
    """``PrivacyPolicy`` lives in :mod:`.policy_privacy` (which imports this module); still importable from here."""
    if name == "PrivacyPolicy":
        from charter_guardrails.core.policy_privacy import PrivacyPolicy

        return PrivacyPolicy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
