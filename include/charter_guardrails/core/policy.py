"""Use-case policies: one YAML file per AI use case, loaded into frozen pydantic models.

Rules are data, not code: a use case declares its purpose, legal basis, datasets and the
thresholds of every guardrail here, and the DAG factory builds its pipelines from it.
Unknown keys are errors, and every error names the file, the key path and the reason.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from charter_guardrails.core.settings import ConfigError, get_settings

IDENTIFIER = r"^[a-z][a-z0-9_]{0,62}$"
Identifier = Annotated[str, Field(pattern=IDENTIFIER)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class _Frozen(BaseModel):
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


class Contact(_Frozen):
    name: str = Field(min_length=1)
    email: Email
    role: str | None = None


class CsvDialect(_Frozen):
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


class Column(_Frozen):
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


class Retention(_Frozen):
    days: int = Field(gt=0, le=36500)
    #: The column whose date starts the retention period.
    date_column: str


class Dataset(_Frozen):
    id: Identifier
    role: DatasetRole
    format: DatasetFormat
    #: File or directory, relative to the data folder (``CHARTER_DATA_DIR``). Never absolute, never ``..``.
    path: str | None = None
    #: SQL table name, for ``format: sql``.
    table: str | None = None
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
        if self.format is not DatasetFormat.SQL and not self.path:
            raise ValueError(f"a dataset with format: {self.format.value} needs a path")
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"columns declared twice: {duplicates}")
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

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def columns_with_role(self, *roles: ColumnRole) -> list[Column]:
        return [c for c in self.columns if c.role in roles]

    def delivery(self, path: str | Path | None = None, data_dir: Path | None = None) -> Path:
        """This dataset's file, or another delivery of it at ``path``: relative to the data folder, or
        absolute inside it. A path that leaves the data folder is refused, as in a policy file."""
        if path is None or str(path) == "":
            return self.resolve_path(data_dir)
        root = (data_dir or get_settings().data_dir).resolve()
        candidate = Path(path)
        if candidate.is_absolute():
            if not candidate.resolve().is_relative_to(root):
                raise ConfigError(f"dataset {self.id!r}: {candidate} is outside the data folder {root}")
            candidate = candidate.resolve().relative_to(root)
        try:
            other = Dataset.model_validate({**self.model_dump(mode="json"), "path": candidate.as_posix()})
        except ValidationError as exc:
            raise ConfigError(
                f"dataset {self.id!r}: invalid delivery path {str(path)!r}: {_reason(exc.errors()[0])}"
            ) from None
        return other.resolve_path(data_dir)

    def resolve_path(self, data_dir: Path | None = None) -> Path:
        """The dataset's file under the data folder; refuses to leave it (path traversal)."""
        if self.path is None:
            raise ConfigError(f"dataset {self.id!r} is a SQL table and has no path")
        root = (data_dir or get_settings().data_dir).resolve()
        target = (root / self.path).resolve()
        if not target.is_relative_to(root):
            raise ConfigError(f"dataset {self.id!r}: path {self.path!r} leaves the data folder {root}")
        return target


class PrivacyPolicy(_Frozen):
    #: ``sampling`` (with a stated detection guarantee) or ``exhaustive`` (every distinct value).
    scan_mode: Literal["sampling", "exhaustive"] = "sampling"
    #: Minimum Presidio score to count a finding.
    min_score: float = Field(default=0.5, ge=0, le=1)
    #: In sampling mode: detect a PII rate of at least ``min_detectable_rate`` with ``confidence``.
    min_detectable_rate: float = Field(default=0.01, gt=0, lt=1)
    confidence: float = Field(default=0.99, gt=0, lt=1)


class QualityPolicy(_Frozen):
    #: Minimum share of successful expectations (error severity) to pass.
    min_success_percent: float = Field(default=100.0, ge=0, le=100)


class GroupSpec(_Frozen):
    column: str
    #: Reference distribution file in ``include/reference/`` (CSV: group;share).
    reference: str | None = None
    min_group_size: int = Field(default=30, ge=1)
    #: Largest allowed |share - reference share|, in percentage points.
    max_share_gap_pp: float = Field(default=10.0, gt=0, le=100)


class EquityPolicy(_Frozen):
    groups: list[GroupSpec] = Field(default_factory=list)
    #: Four-fifths rule: min over groups of base rate / max base rate.
    min_disparate_impact: float = Field(default=0.8, ge=0, le=1)
    #: The label value whose rate is compared across groups (for classification).
    positive_label: str | None = None
    #: Largest allowed fairlearn difference (accuracy or selection rate) across groups.
    max_metric_difference: float = Field(default=0.2, ge=0, le=1)


class DriftPolicy(_Frozen):
    psi_max: float = Field(default=0.2, gt=0)
    ks_pvalue_min: float = Field(default=0.01, ge=0, le=1)
    chi2_pvalue_min: float = Field(default=0.01, ge=0, le=1)
    js_max: float = Field(default=0.1, gt=0, le=1)
    text_length_psi_max: float = Field(default=0.2, gt=0)
    #: Share of batch tokens unseen in the training vocabulary.
    vocabulary_oov_max: float = Field(default=0.3, gt=0, le=1)
    #: Fail when at least this many features drift.
    max_drifted_features: int = Field(default=1, ge=1)


class FootprintPolicy(_Frozen):
    #: Refuse a refresh whose metric gain per kWh is below this.
    min_gain_per_kwh: float = Field(default=0.0, ge=0)
    #: Refuse a training run above this energy budget.
    max_kwh_per_training: float = Field(default=1.0, gt=0)
    #: Refuse a refresh whose metric gain per gram of CO2e is below this (unset: not checked).
    min_gain_per_gco2e: float | None = Field(default=None, ge=0)


class ModelSpec(_Frozen):
    kind: Literal["text_classifier", "regressor"]
    target: str
    metric: Literal["accuracy", "f1_macro", "mae", "r2"]
    #: Minimum improvement over production before a refresh is proposed.
    min_gain: float = 0.0
    #: Held-out share for evaluation.
    test_size: float = Field(default=0.25, gt=0, lt=1)


class UseCasePolicy(_Frozen):
    """One AI use case of the Métropole, as declared to the governance team."""

    id: Identifier
    title: str = Field(min_length=1)
    #: The finalité: what the system is for, in plain words (Proportionnalité 1).
    purpose: str = Field(min_length=20)
    legal_basis: LegalBasis
    legal_basis_detail: str | None = None
    owner: Contact
    approvers: list[Contact] = Field(min_length=1)
    alert_recipients: list[Email] = Field(min_length=1)
    dpo: Contact
    decision_support: bool
    #: Who a citizen contacts to contest a decision (Maîtrise humaine 6). Required for decision support.
    human_recourse: Contact | None = None
    datasets: list[Dataset] = Field(min_length=1)
    model: ModelSpec
    privacy: PrivacyPolicy = Field(default_factory=PrivacyPolicy)
    quality: QualityPolicy = Field(default_factory=QualityPolicy)
    equity: EquityPolicy = Field(default_factory=EquityPolicy)
    drift: DriftPolicy = Field(default_factory=DriftPolicy)
    footprint: FootprintPolicy = Field(default_factory=FootprintPolicy)
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> UseCasePolicy:
        if self.decision_support and self.human_recourse is None:
            raise ValueError("human_recourse is required when decision_support is true (Maîtrise humaine 6)")
        ids = [d.id for d in self.datasets]
        if len(set(ids)) != len(ids):
            raise ValueError(f"dataset ids must be unique, got {ids}")
        training = [d for d in self.datasets if d.role is DatasetRole.TRAINING]
        if not training:
            raise ValueError("at least one dataset must have role: training")
        for dataset in training:
            if self.model.target not in {c.name for c in dataset.columns}:
                raise ValueError(
                    f"model.target {self.model.target!r} is not a column of training dataset {dataset.id!r}"
                )
        for group in self.equity.groups:
            for dataset in training:
                if group.column not in {c.name for c in dataset.columns}:
                    raise ValueError(f"equity group column {group.column!r} is not a column of dataset {dataset.id!r}")
        return self

    def dataset(self, dataset_id: str) -> Dataset:
        for dataset in self.datasets:
            if dataset.id == dataset_id:
                return dataset
        raise ConfigError(
            f"use case {self.id!r} has no dataset {dataset_id!r}; declared: {[d.id for d in self.datasets]}"
        )

    def datasets_with_role(self, role: DatasetRole) -> list[Dataset]:
        return [d for d in self.datasets if d.role is role]

    @property
    def training_dataset(self) -> Dataset:
        return self.datasets_with_role(DatasetRole.TRAINING)[0]

    @classmethod
    def from_file(cls, path: str | Path) -> UseCasePolicy:
        """Load and validate a policy file; raise :class:`PolicyError` naming file, key and reason."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise PolicyError(path, "", "file not found") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(path, "", f"cannot read the file as UTF-8 text: {exc}") from exc
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise PolicyError(path, "", f"invalid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
        except RecursionError:  # PyYAML's parser recurses once per nesting level
            raise PolicyError(path, "", "invalid YAML: nested too deeply to be a policy") from None
        if not isinstance(raw, dict):
            raise PolicyError(path, "", f"the top level must be a mapping, got {type(raw).__name__}")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            errors = [(_key_path(e["loc"]), _reason(e)) for e in exc.errors()]
            raise PolicyError(path, errors[0][0], errors[0][1], all_errors=errors) from None


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _reason(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key (not part of the policy schema; check the spelling)"
    if error["type"] == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


class PolicyError(ConfigError):
    """A policy file is invalid. ``str()`` names the file, the key path and the reason."""

    def __init__(self, path: Path, key: str, reason: str, *, all_errors: list[tuple[str, str]] | None = None) -> None:
        self.path = Path(path)
        self.key = key
        self.reason = reason
        self.all_errors = all_errors or [(key, reason)]
        lines = [f"{self.path}: {k or '<file>'}: {r}" for k, r in self.all_errors]
        super().__init__("\n".join(lines))

    def to_json_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "errors": [{"key": k, "reason": r} for k, r in self.all_errors]}


def load_policy(use_case: str) -> UseCasePolicy:
    """Load ``<policies_dir>/<use_case>.yaml``."""
    if not re.fullmatch(IDENTIFIER, use_case):
        raise ConfigError(f"invalid use case id {use_case!r}")
    path = get_settings().policies_dir / f"{use_case}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in get_settings().policies_dir.glob("*.yaml"))
        raise ConfigError(f"no policy for use case {use_case!r} at {path}; known use cases: {known}")
    return UseCasePolicy.from_file(path)


def policy_files(policies_dir: Path | None = None) -> list[Path]:
    return sorted((policies_dir or get_settings().policies_dir).glob("*.yaml"))


def json_schema() -> str:
    """The JSON schema of a policy file, as checked into ``include/policies/schema.json``."""
    return json.dumps(UseCasePolicy.model_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
