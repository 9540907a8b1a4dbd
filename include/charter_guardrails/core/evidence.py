"""The evidence each check writes, as frozen pydantic models: one model per check of the catalogue.

A model describes the JSON the check already puts in ``CheckResult.evidence``: the same keys, the same
shapes, so that XCom payloads and ledger rows do not change. ``CheckResult`` validates its evidence
against the model of its check (see :mod:`charter_guardrails.core.catalogue`), and readers (the governance
view, the approver's brief) read these models instead of guessing keys.

Shapes are closed (``extra="forbid"``). A key only some outcomes write is optional: an unreadable input
(``problems`` or ``read_error`` instead of measurements) and ``report_error``, which
:func:`charter_guardrails.core.results.with_report_error` adds to any result whose report was not written.
Like the rest of the evidence, nothing here may hold a raw personal value.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Evidence(BaseModel):
    """Base of every check's evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Why the check's report could not be written (the verdict is recorded all the same).
    report_error: str | None = None


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataProblem(_Part):
    """Why input data could not be read or does not match its declaration (names and counts, never values)."""

    kind: str
    message: str
    path: str | None = None
    column: str | None = None
    columns: list[str] | None = None
    count: int | None = None
    stored_as: str | None = None


# --- kill switch, declaration, proportionality -----------------------------------------------------


class KillSwitchEvidence(Evidence):
    suspended: bool


class DeclarationEvidence(Evidence):
    purpose: str
    legal_basis: str
    decision_support: bool
    human_recourse: str | None
    declared_features: list[str]
    warnings: list[str]
    task_nature: str | None = None
    origin: str | None = None
    provider: str | None = None
    compliance_commitment: str | None = None
    objective: str | None = None
    success_metric: str | None = None
    problems: list[str] = []


class RetentionEvidence(_Part):
    days: int
    date_column: str
    cutoff: str | None


class ProportionalityEvidence(Evidence):
    purpose: str
    legal_basis: str
    decision_support: bool
    human_recourse: str | None
    model_inputs: list[str]
    label: str | None
    fairness_only_columns: list[str]
    kept_columns: list[str]
    dropped_undeclared_columns: list[str]
    dropped_declared_columns: list[str]
    missing_declared_columns: list[str]
    retention: RetentionEvidence | None
    max_rows: int | None
    as_of: str
    problems: list[str]
    warnings: list[str]


# --- integrity ---------------------------------------------------------------------------------------


class ChangedRange(_Part):
    """A changed chunk: its bytes, and its lines and data rows when the manifest knows them."""

    chunk: int
    bytes: list[int]
    note: str | None = None
    lines: list[int] | None = None
    rows: list[int] | None = None
    file: str | None = None


class ChangedKeyRange(_Part):
    """A changed key range of a table: its bounds (key values with their type tags), its rows then and now."""

    index: int
    start: list[list[str]] | None
    end: list[list[str]] | None
    rows_registered: int
    rows_now: int
    change: str


class StoredObject(_Part):
    """An object in storage: where it is and the store's identity of its bytes (no credential, no content)."""

    uri: str
    size_bytes: int | None = None
    version_id: str | None = None
    etag: str | None = None


class IntegrityEvidence(Evidence):
    """The verification outcome, then the facts that outcome has (key ids, roots, changed chunks)."""

    outcome: Literal["intact", "data_changed", "manifest_edited", "unknown_key", "key_missing", "no_manifest"]
    file: str
    manifest_id: int | None
    key_id: str | None = None
    trusted_key_ids: list[str] | None = None
    merkle_root: str | None = None
    expected_root: str | None = None
    expected_size_bytes: int | None = None
    changed_chunks: list[int] | None = None
    changed_chunk_count: int | None = None
    first_changed_chunk: int | None = None
    ranges: list[ChangedRange] | None = None
    actual_root: str | None = None
    actual_size_bytes: int | None = None
    files: dict[str, list[str]] | None = None
    schema_changed: bool | None = None
    #: a SQL table: its key columns, its rows then and now, the schema changes and the changed key ranges
    table: str | None = None
    key_columns: list[str] | None = None
    rows_registered: int | None = None
    rows_now: int | None = None
    schema_changes: list[str] | None = None
    changed_ranges: list[ChangedKeyRange] | None = None
    #: an object in storage: the version staged now, and the one its manifest registered when they differ
    object: StoredObject | None = None
    registered_object: StoredObject | None = None


# --- personal data -----------------------------------------------------------------------------------


class ColumnJudgement(_Part):
    """A scanned column against its declaration (entity type names, never a value)."""

    column: str
    declared: bool
    allowed: list[str]
    found: list[str]
    forbidden: list[str]
    forbidden_rows: int
    ok: bool
    reason: str
    warning: str | None


class PersonalDataEvidence(Evidence):
    """A scan judged against the policy; only ``read_error`` when the dataset could not be read."""

    mode: str | None = None
    guarantee: str | None = None
    min_score: float | None = None
    dataset_personal_data: bool | None = None
    columns: list[ColumnJudgement] = []
    declared_columns_absent: list[str] = []
    read_error: DataProblem | None = None
    #: the JSON and HTML report paths, added once the reports are written
    reports: dict[str, str] | None = None


# --- quality, representativeness, drift --------------------------------------------------------------


class ExpectationOutcome(_Part):
    """One expectation of the suite; ``result`` is Great Expectations' result, already redacted."""

    expectation: str
    index: int
    columns: list[str]
    severity: str
    success: bool
    result: dict[str, Any]
    error: str | None = None
    evaluated_by: str | None = None


class QualityEvidence(Evidence):
    suite: str
    source: str
    problems: list[DataProblem]
    expectations: list[ExpectationOutcome]
    suite_file: str | None = None
    redacted_columns: list[str] = []
    data_docs: str | None = None


class GroupShare(_Part):
    """One group of a column: its size and share, against the reference and as a base rate."""

    count: int
    share: float
    reference_share: float | None = None
    gap_pp: float | None = None
    data_gap: bool | None = None
    not_in_reference: bool | None = None
    base_rate: float | None = None
    base_rate_ci95: list[float] | None = None


class DisparateImpact(_Part):
    positive_label: str
    point: float
    favourable_bound: float
    lowest_group: str
    highest_group: str
    threshold: float


class GroupColumnReport(_Part):
    column: str
    rows_with_group: int
    rows_without_group: int
    reference: str | None
    reference_source: str | None
    groups: dict[str, GroupShare]
    reasons: list[str]
    disparate_impact: DisparateImpact | None = None


class RepresentativenessEvidence(Evidence):
    """Per group column; ``problems`` alone when the data could not be read."""

    group_columns: list[GroupColumnReport] = []
    data_gaps: list[str] = []
    absent_columns: list[str] = []
    reasons: list[str] = []
    problems: list[DataProblem] = []


class DriftFeature(_Part):
    """One feature's statistics. Fields are in the order the drift check writes them."""

    psi: float | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    js_distance: float | None = None
    chi2_pvalue: float | None = None
    length_psi: float | None = None
    oov_share: float | None = None
    reference_oov_share: float | None = None
    batch_n: int
    unseen_categories: int | None = None
    kind: Literal["numeric", "categorical", "text"]
    drifted: bool
    reasons: list[str]


class DriftThresholds(_Part):
    """The policy's ``drift`` section as the check applied it."""

    psi_max: float
    ks_pvalue_min: float
    chi2_pvalue_min: float
    js_max: float
    text_length_psi_max: float
    vocabulary_oov_max: float
    max_drifted_features: int


class DriftReference(_Part):
    profile: str | None
    rows: int | None
    created_at: str | None
    source: str | None


class DriftEvidence(Evidence):
    """Per feature; ``problems`` alone when the batch or the reference could not be read."""

    features: dict[str, DriftFeature] = {}
    drifted: list[str] = []
    missing_features: list[str] = []
    thresholds: DriftThresholds | None = None
    reference: DriftReference | None = None
    problems: list[DataProblem] = []


# --- refresh: training, performance, fairness, footprint ---------------------------------------------


class TrainingEvidence(Evidence):
    """How the candidate was trained (the built-in pipeline or the team's ``model.trainer``) and, when it
    failed, what went wrong: exception types, a column name, a method name, never a data value."""

    trainer: str
    outcome: Literal[
        "trained", "import_error", "raised", "undeclared_column", "bad_result", "not_picklable", "timed_out", "crashed"
    ]
    model_inputs: list[str]
    label: str
    timeout_s: float | None = None
    duration_s: float | None = None
    train_rows: int | None = None
    #: the class of the object the trainer returned (a code name, e.g. ``Pipeline``)
    estimator: str | None = None
    artifact_sha256: str | None = None
    error_type: str | None = None
    #: the first line of the exception's message, cut at 200 characters, quoted values masked
    error_first_line: str | None = None
    #: the column the trainer asked for that is not in the frame it receives (a name, never a value)
    column: str | None = None
    missing_methods: list[str] = []
    exit_code: int | None = None


class PerformanceEvidence(Evidence):
    metric: str
    higher_is_better: bool
    reference: str
    baseline: str
    candidate_metrics: dict[str, float | None]
    production_metrics: dict[str, float | None] | None


class FairnessBreach(_Part):
    column: str
    metric: str
    difference: float
    lowest_group: str
    highest_group: str


class FairnessRow(_Part):
    """One (column, group) of the fairness table; metrics only for the compared groups."""

    column: str
    group: str
    accuracy: float | None = None
    selection_rate: float | None = None
    mae: float | None = None
    count: int
    compared: bool


class FairnessEvidence(Evidence):
    positive_label: str | None
    max_metric_difference: float
    breaches: list[FairnessBreach]
    small_groups_left_out: dict[str, dict[str, int]]
    not_measurable: list[str]
    table: list[FairnessRow]
    holdout_rows: int


class FootprintEvidence(Evidence):
    """How the training energy was measured; the numbers themselves are the result's metrics."""

    metric: str
    gain_unit: str
    energy_method: str
    country_iso_code: str | None
    problems: list[str]
