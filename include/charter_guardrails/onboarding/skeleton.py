"""The policy skeleton of a drafted use case: ``<policies_dir>/<use_case>.yaml``, readable, with TODO markers.

What the data tells is drafted (datasets, columns, dialect, model kind); what only people can declare (purpose,
legal basis, owner, approvers, retention days...) is a ``TODO`` marker with a comment saying what to declare.
:func:`charter_guardrails.core.policy.load_policy` refuses the file until every marker is replaced. Sections whose
project defaults apply (privacy, quality, equity, drift, footprint, approval, incidents) are left out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.policy_models import ColumnRole, PersonalDataCategory
from charter_guardrails.onboarding.columns import ColumnDraft, is_classification
from charter_guardrails.onboarding.profile import FileProfile

#: Key (or key path) -> (TODO marker, comment lines saying what to declare).
TODOS: dict[str, tuple[str, list[str]]] = {
    "title": ("TODO: a short title", ["The title of the use case in the register and on the model card."]),
    "purpose": (
        "TODO: what the system is for, in plain words",
        ["The purpose (Proportionnalité 1): what the system is for and why, at least 20 characters."],
    ),
    "legal_basis": (
        "TODO: the GDPR Art. 6(1) lawful basis",
        [
            "One of consent, contract, legal_obligation, vital_interests, public_task, legitimate_interests;",
            "add legal_basis_detail: the text it rests on.",
        ],
    ),
    "owner": ("TODO: the service that owns the use case", ["The owning service: {name: ..., email: ...}."]),
    "approvers": (
        "TODO: who approves a refresh",
        [
            "Who approves a refresh, each answering the Airflow form under their user name; the user who",
            "triggers a refresh cannot approve it (four eyes). One entry per approver:",
            "  - {name: ..., email: ..., role: ..., username: ...}",
        ],
    ),
    "alert_recipients": (
        "TODO: the mailbox told of an incident",
        ["Mailboxes told of an incident, e.g. [rssi@..., dpo@...]."],
    ),
    "dpo": ("TODO: the data protection officer", ["The data protection officer: {name: ..., email: ...}."]),
    "decision_support": (
        "TODO: true or false",
        ["true when a person decides with the system's output (then human_recourse is required), else false."],
    ),
    "task_nature": (
        "TODO: routine or decision_support",
        [
            "routine (a repetitive task that engages no human responsibility) or decision_support;",
            "it must agree with decision_support (Maîtrise humaine 3).",
        ],
    ),
    "human_recourse": (
        "TODO: who a citizen contacts to contest a decision",
        ["Who a citizen contacts to contest a decision: {name: ..., email: ...}; null if decision_support is false."],
    ),
    "sourcing.origin": (
        "TODO: internal or external",
        [
            "Who builds the system (Transparence 1): internal, or external with",
            "provider: {name: ..., compliance_commitment: the clause by which it commits to the charter}.",
        ],
    ),
    "objective.statement": (
        "TODO: the precise objective and how its success is measured",
        ["The precise objective (Proportionnalité 2), at least 20 characters; success_metric is model.metric."],
    ),
}
DATA_SUBJECTS_TODO = "TODO: who the data is about, e.g. usagers"
RETENTION_DAYS_TODO = "TODO: days a row is kept (a human decision)"
DATE_COLUMN_TODO = "TODO: the date column that starts the retention period"
LABEL_TODO = "TODO: the label column"


@dataclass(frozen=True)
class DatasetPaths:
    """Where the datasets are, relative to the data folder."""

    training: str
    inference: str
    #: Comment lines on the training path (e.g. the command that copies the file there).
    notes: tuple[str, ...] = ()


def policy_yaml(
    use_case: str, profile: FileProfile, columns: list[ColumnDraft], label: str | None, paths: DatasetPaths
) -> str:
    """The policy file's text: the document of :func:`policy_document` with its comments, checked to read back."""
    data, comments = policy_document(use_case, profile, columns, label, paths)
    header = [
        f"Drafted by `charter init {use_case}` from {profile.path.name}: {profile.rows} rows, {len(columns)} columns.",
        "Replace every TODO marker, confirm each guessed column, then run `charter policy validate` on this file.",
    ]
    text = render(data, comments, header)
    if yaml.safe_load(text) != data:
        raise ConfigError(f"internal error: the drafted policy of {use_case!r} does not read back as drafted")
    return text


def policy_document(
    use_case: str, profile: FileProfile, columns: list[ColumnDraft], label: str | None, paths: DatasetPaths
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The policy as a mapping in the examples' key order, and the comment lines before keys (by key path)."""
    comments: dict[str, list[str]] = {key: lines for key, (_, lines) in TODOS.items()}
    todo = {key: marker for key, (marker, _) in TODOS.items()}
    model, model_notes = _model(profile, label)
    data: dict[str, Any] = {"id": use_case}
    for key in ("title", "purpose", "legal_basis", "owner"):
        data[key] = todo[key]
    data["approvers"] = [todo["approvers"]]
    data["alert_recipients"] = [todo["alert_recipients"]]
    for key in ("dpo", "decision_support", "task_nature", "human_recourse"):
        data[key] = todo[key]
    data["sourcing"] = {"origin": todo["sourcing.origin"]}
    data["objective"] = {"statement": todo["objective.statement"], "success_metric": model["metric"]}
    training = _dataset("training", use_case, profile, columns, paths.training, comments, 0)
    inference_columns = [c for c in columns if c.role is not ColumnRole.LABEL]
    inference = _dataset("inference", use_case, profile, inference_columns, paths.inference, comments, 1)
    training["max_rows"] = _max_rows(profile.rows)
    training["columns"] = training.pop("columns")  # columns last, after max_rows, as in the examples
    comments["datasets[0].max_rows"] = [
        f"Proportionality limit: drafted as about twice the {profile.rows} rows of the file; set the most the",
        "purpose needs.",
    ]
    comments["datasets[0].path"] = ["Relative to the data folder (CHARTER_DATA_DIR).", *paths.notes]
    comments["datasets[1].path"] = ["TODO confirm: where inference batches are delivered, relative to the data folder."]
    data["datasets"] = [training, inference]
    data["model"] = model
    comments["model"] = model_notes
    personal = any(c.personal_data is not PersonalDataCategory.NONE for c in columns)
    data["tags"] = ["charter", "personal-data" if personal else "non-personal"]
    comments["tags"] = [
        "privacy, quality, equity, drift, footprint, approval and incidents keep the project's defaults: declare",
        "them as in include/policies/citizen_requests.yaml to change a threshold (equity.groups names the",
        "sensitive_attribute columns whose shares and outcomes are compared).",
    ]
    return data, comments


def _max_rows(rows: int) -> int:
    from charter_guardrails.onboarding.columns import default_max_rows

    return default_max_rows(rows)


def _model(profile: FileProfile, label: str | None) -> tuple[dict[str, Any], list[str]]:
    if label is None:
        return (
            {"kind": "TODO: text_classifier or regressor", "target": LABEL_TODO, "metric": "TODO: f1_macro or mae"},
            [
                "No --label given: name the label column as target, set its role to label in the training",
                "dataset and remove it from the inference dataset; metric: accuracy or f1_macro (classes), mae or",
                "r2 (numbers).",
            ],
        )
    column = profile.column(label)
    if is_classification(column):
        return {"kind": "text_classifier", "target": label, "metric": "f1_macro"}, [
            f"Guessed from the label {label}: {column.distinct} classes, so a classifier scored by f1_macro",
            "(or accuracy).",
        ]
    return {"kind": "regressor", "target": label, "metric": "mae"}, [
        f"Guessed from the label {label}: a number, so a regressor scored by mae (or r2).",
    ]


def _dataset(
    role: str,
    use_case: str,
    profile: FileProfile,
    columns: list[ColumnDraft],
    path: str,
    comments: dict[str, list[str]],
    index: int,
) -> dict[str, Any]:
    """One dataset entry (training or inference) with its columns; comments go to ``comments``."""
    at = f"datasets[{index}]"
    personal = [c for c in columns if c.personal_data is not PersonalDataCategory.NONE]
    dataset: dict[str, Any] = {"id": role, "role": role, "format": profile.format.value, "path": path}
    if profile.dialect is not None:
        dialect = profile.csv_dialect
        dataset["csv"] = {"separator": dialect.separator, "decimal": dialect.decimal, "encoding": dialect.encoding}
        comments[f"{at}.csv"] = [
            "Detected from the file" + (f": {'; '.join(profile.dialect.notes)}." if profile.dialect.notes else ".")
        ]
    dataset["personal_data"] = bool(personal)
    scanned = columns[0].scanned_rows if columns else 0
    found = f"personal data in {', '.join(c.name for c in personal)}" if personal else "no personal data"
    comments[f"{at}.personal_data"] = [f"TODO confirm: the scan of {scanned} sampled rows found {found}."]
    if personal:
        dataset["data_subjects"] = [DATA_SUBJECTS_TODO]
        comments[f"{at}.data_subjects"] = ["The categories of people the data is about (GDPR Art. 33(3)(a))."]
        dates = [c.name for c in columns if c.role is ColumnRole.TIMESTAMP]
        dataset["retention"] = {"days": RETENTION_DAYS_TODO, "date_column": dates[0] if dates else DATE_COLUMN_TODO}
        comments[f"{at}.retention"] = [
            "How long a row is kept, counted from date_column (Proportionnalité 3): older rows are excluded."
        ]
    dataset["suite"] = f"{use_case}.{role}.json"
    comments[f"{at}.suite"] = ["Drafted by charter init in the expectations folder: review it."]
    dataset["columns"] = [_column(c) for c in columns]
    comments[f"{at}.columns"] = [
        "Roles guessed: label (--label), timestamp (dates), identifier (unique to each row: a short text, or named",
        "like an id), free_text (long text), feature otherwise; mark sensitive_attribute the columns equity",
        "compares groups on.",
    ]
    for i, column in enumerate(columns):
        notes = column_notes(column)
        if notes:
            comments[f"{at}.columns[{i}]"] = notes
    return dataset


def _column(column: ColumnDraft) -> dict[str, Any]:
    out: dict[str, Any] = {"name": column.name, "role": column.role.value, "type": column.type.value}
    if column.personal_data is not PersonalDataCategory.NONE:
        out["personal_data"] = column.personal_data.value
        out["pii_allowed"] = column.pii_allowed
    if column.pseudonymise:
        out["pseudonymise"] = True
    out["nullable"] = column.profile.nulls > 0
    return out


def column_notes(column: ColumnDraft) -> list[str]:
    """The comment lines above a column: what the scan found in it, to confirm (counts only, never a value)."""
    notes = [
        f"TODO confirm: found {entity} in {count} of {column.scanned_rows} sampled rows"
        for entity, count in column.entities
    ]
    notes += [
        f"TODO confirm: look-alikes of {entity} (below the score threshold) in {count} of {column.scanned_rows} "
        "sampled rows"
        for entity, count in column.suspects
    ]
    if column.entities and column.role is ColumnRole.FEATURE:
        notes.append("a feature holding personal data: drop it, or make it an identifier (pseudonymised)")
    return notes


# ---------------------------------------------------------------------------------------------
# rendering: block style like the example policies, short mappings and lists in flow style

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")
_YAML_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}
WIDTH = 120


def render(data: dict[str, Any], comments: dict[str, list[str]], header: list[str]) -> str:
    """YAML text of ``data`` with each key's comment lines before it."""
    lines = [f"# {line}" for line in header]
    _mapping(data, 0, "", comments, lines)
    return "\n".join(lines) + "\n"


def _mapping(data: dict[str, Any], indent: int, path: str, comments: dict[str, list[str]], lines: list[str]) -> None:
    pad = " " * indent
    for key, value in data.items():
        at = f"{path}.{key}" if path else key
        lines.extend(f"{pad}# {c}" for c in comments.get(at, []))
        flow = _flow(value)
        if flow is not None and (indent > 0 or not isinstance(value, dict)) and len(pad) + len(key) + len(flow) < WIDTH:
            lines.append(f"{pad}{_scalar(key)}: {flow}")
        elif isinstance(value, dict):
            lines.append(f"{pad}{_scalar(key)}:")
            _mapping(value, indent + 2, at, comments, lines)
        else:
            lines.append(f"{pad}{_scalar(key)}:")
            _sequence(value, indent + 2, at, comments, lines)


def _sequence(items: list[Any], indent: int, path: str, comments: dict[str, list[str]], lines: list[str]) -> None:
    pad = " " * indent
    for i, item in enumerate(items):
        at = f"{path}[{i}]"
        lines.extend(f"{pad}# {c}" for c in comments.get(at, []))
        flow = _flow(item)
        if flow is not None and not path.endswith("datasets") and len(pad) + 2 + len(flow) < WIDTH:
            lines.append(f"{pad}- {flow}")
            continue
        start = len(lines)
        _mapping(item, indent + 2, at, comments, lines)
        first = next(k for k in range(start, len(lines)) if not lines[k].lstrip().startswith("#"))
        lines[first] = f"{pad}- {lines[first].lstrip()}"


def _flow(value: Any) -> str | None:
    """``value`` in flow style, when it holds scalars (or lists of scalars) only."""
    if isinstance(value, dict):
        parts = [f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()]
        return (
            "{" + ", ".join(parts) + "}"
            if all(_flow(v) is not None and not isinstance(v, dict) for v in value.values())
            else None
        )
    if isinstance(value, list):
        if any(isinstance(v, (dict, list)) for v in value):
            return None
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text.replace("e", ".0e", 1) if "e" in text and "." not in text else text
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)
