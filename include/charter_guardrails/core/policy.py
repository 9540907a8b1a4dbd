"""Use-case policies: one YAML file per AI use case, loaded into frozen pydantic models.

Rules are data, not code: a use case declares its purpose, legal basis, datasets and the
thresholds of every guardrail here, and the DAG factory builds its pipelines from it.
Unknown keys are errors, and every error names the file, the key path and the reason. A value still
marked ``TODO`` (a drafted policy, see ``charter init``) is refused, with the key path of each open TODO.

:func:`load_policy` is the only loader: by use-case id from the policies folder, or from a file.
The sections of the file (datasets, columns, thresholds) are in :mod:`charter_guardrails.core.policy_models`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from charter_guardrails.core.errors import ConfigError, PolicyError, key_path
from charter_guardrails.core.policy_approval import ApprovalPolicy, Approver
from charter_guardrails.core.policy_incidents import IncidentPolicy
from charter_guardrails.core.policy_models import (
    IDENTIFIER,
    Contact,
    Dataset,
    DatasetRole,
    DriftPolicy,
    Email,
    EquityPolicy,
    FootprintPolicy,
    Identifier,
    LegalBasis,
    ModelSpec,
    Objective,
    PolicySection,
    QualityPolicy,
    Sourcing,
    TaskNature,
    validation_reason,
)
from charter_guardrails.core.policy_privacy import PrivacyPolicy
from charter_guardrails.core.policy_register import RegisterPolicy
from charter_guardrails.core.policy_storage import StoragePolicy
from charter_guardrails.core.settings import get_settings


class UseCasePolicy(PolicySection):
    """One AI use case of the Métropole, as declared to the governance team."""

    id: Identifier
    title: str = Field(min_length=1)
    #: The finalité: what the system is for, in plain words (Proportionnalité 1).
    purpose: str = Field(min_length=20)
    legal_basis: LegalBasis
    legal_basis_detail: str | None = None
    owner: Contact
    #: Who may approve a refresh; each answers the HITL form under their Airflow ``username``.
    approvers: list[Approver] = Field(min_length=1)
    #: Who may override, how long the form waits (see :mod:`charter_guardrails.core.policy_approval`).
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    alert_recipients: list[Email] = Field(min_length=1)
    dpo: Contact
    decision_support: bool
    #: Who a citizen contacts to contest a decision (Maîtrise humaine 6). Required for decision support.
    human_recourse: Contact | None = None
    #: Routine task or decision support (Maîtrise humaine 3); must agree with ``decision_support``.
    #: Optional in the schema so that older policies load; the declaration check warns when it is missing.
    task_nature: TaskNature | None = None
    #: In-house or from a provider (Transparence 1); the declaration check warns when it is missing.
    sourcing: Sourcing | None = None
    #: The precise objective and its success metric (Proportionnalité 2); the declaration check warns when missing.
    objective: Objective | None = None
    datasets: list[Dataset] = Field(min_length=1)
    model: ModelSpec
    privacy: PrivacyPolicy = Field(default_factory=PrivacyPolicy)
    quality: QualityPolicy = Field(default_factory=QualityPolicy)
    equity: EquityPolicy = Field(default_factory=EquityPolicy)
    drift: DriftPolicy = Field(default_factory=DriftPolicy)
    footprint: FootprintPolicy = Field(default_factory=FootprintPolicy)
    incidents: IncidentPolicy = Field(default_factory=IncidentPolicy)
    processing: RegisterPolicy = Field(default_factory=RegisterPolicy)
    storage: StoragePolicy = Field(default_factory=StoragePolicy)
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> UseCasePolicy:
        if self.decision_support and self.human_recourse is None:
            raise ValueError("human_recourse is required when decision_support is true (Maîtrise humaine 6)")
        if self.objective is not None and self.objective.success_metric != self.model.metric:
            raise ValueError(
                f"objective.success_metric {self.objective.success_metric!r} differs from model.metric "
                f"{self.model.metric!r}: the performance gate evaluates the model on its success metric"
            )
        self._check_approvers()
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

    def _check_approvers(self) -> None:
        usernames = [a.username for a in self.approvers if a.username]
        if len(set(usernames)) != len(usernames):
            raise ValueError(f"an approver username is listed twice: {sorted(usernames)}")
        unknown = sorted(set(self.approval.override_approvers) - set(usernames))
        if unknown:
            raise ValueError(
                f"approval.override_approvers {unknown} are not the username of an approver: list them in approvers"
            )

    @property
    def approver_usernames(self) -> list[str]:
        """The Airflow user names of the approvers, in the policy's order."""
        return [a.username for a in self.approvers if a.username]

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
        return load_policy(Path(path))


def load_policy(source: str | Path) -> UseCasePolicy:
    """The policy of a use case: the one loader of policy files.

    ``source`` is a :class:`~pathlib.Path` to a policy file, or a use-case id whose file is
    ``<policies_dir>/<id>.yaml``. An id is checked before it becomes a file name (no path traversal),
    and the file it names must declare that same id: the ledger records verdicts under the declared id.

    :raises ConfigError: an invalid id, or no policy file for it.
    :raises PolicyError: the file is unreadable or invalid; names the file, the key path and the reason.
    """
    if isinstance(source, Path):
        return _parse_policy_file(source)
    check_use_case_id(source)
    policies_dir = get_settings().policies_dir
    path = policies_dir / f"{source}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in policies_dir.glob("*.yaml"))
        raise ConfigError(f"no policy for use case {source!r} at {path}; known use cases: {known}")
    policy = _parse_policy_file(path)
    if policy.id != source:
        raise PolicyError(path, "id", f"declares use case {policy.id!r} but the file is named {path.name!r}")
    return policy


def check_use_case_id(use_case: str) -> None:
    """Refuse an id that is not a policy id: it names files, so no path may be smuggled in through it."""
    if not re.fullmatch(IDENTIFIER, use_case):
        raise ConfigError(
            f"invalid use case id {use_case!r}: lower-case letters, digits and '_', starting with a letter"
        )


#: A value still to be declared: a string that starts with this marker (``charter init`` writes them).
TODO_MARKER = "TODO"


class OpenTodos(PolicyError):
    """A policy file still holds TODO markers; ``todos`` lists each one's key path and text."""

    def __init__(self, path: Path, todos: list[tuple[str, str]]) -> None:
        self.todos = todos
        super().__init__(
            path,
            todos[0][0],
            f"open TODO: {todos[0][1]}",
            all_errors=[(key, f"open TODO: {text}") for key, text in todos],
        )

    def to_json_dict(self) -> dict[str, Any]:
        return {**super().to_json_dict(), "todos": [{"key": key, "text": text} for key, text in self.todos]}


def open_todos(document: object) -> list[tuple[str, str]]:
    """(key path, text) of every string value starting with ``TODO`` in a parsed YAML document, in file order.

    A drafted policy (``charter init``) marks what only a person can declare this way; it is refused until
    each marker is replaced, before type validation, so that the TODO is what gets reported. The walk is
    iterative and visits a mapping or list shared through YAML aliases once (under its first key path): a
    "billion laughs" file of a few lines is not expanded."""
    found: list[tuple[str, str]] = []
    seen: set[int] = set()
    stack: list[tuple[tuple[Any, ...], object]] = [((), document)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            text = value.strip()
            if text.startswith(TODO_MARKER):
                found.append((key_path(loc), text if len(text) <= 160 else text[:157] + "..."))
            continue
        if not isinstance(value, (dict, list)) or id(value) in seen:
            continue
        seen.add(id(value))
        items = value.items() if isinstance(value, dict) else enumerate(value)
        stack.extend(reversed([((*loc, key), item) for key, item in items]))
    return found


def _parse_policy_file(path: Path) -> UseCasePolicy:
    raw = _read_yaml_mapping(path)
    todos = open_todos(raw)
    if todos:
        raise OpenTodos(path, todos)
    try:
        return UseCasePolicy.model_validate(raw)
    except ValidationError as exc:
        errors = [(key_path(e["loc"]), validation_reason(e)) for e in exc.errors()]
        raise PolicyError(path, errors[0][0], errors[0][1], all_errors=errors) from None


def _read_yaml_mapping(path: Path) -> dict[str, object]:
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
    return raw


def policy_files(policies_dir: Path | None = None) -> list[Path]:
    return sorted((policies_dir or get_settings().policies_dir).glob("*.yaml"))


def json_schema() -> str:
    """The JSON schema of a policy file, as checked into ``include/policies/schema.json``."""
    return json.dumps(UseCasePolicy.model_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
