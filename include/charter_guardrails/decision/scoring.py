"""An accepted inference batch scored by the production model of its use case (Maîtrise humaine 1).

The charter asks for "des mécanismes de surveillance et d'évaluation de l'impact, pour vérifier que le
système fonctionne comme prévu": each accepted batch is scored by the production version, unless the kill
switch is on, and the distribution of its predictions is recorded in the ledger with its drift from the
previous scored batch (:mod:`.prediction_stats`), so a change in what the model proposes is seen batch by batch.

The predictions are written beside the batch as ``<batch stem>.predictions.parquet``: per input row its number
(``row``, 1 for the first data row), the ``prediction``, the ``probability`` of the positive class when the
model gives one (the policy's ``equity.positive_label``, else the second class of a binary classifier), the
``model_version``, the ``ai_label_id`` (SHA-256 of the version's ``ai_label.json``) and the ``run_id``; never an
input column. The model is loaded only if its file has the SHA-256 the ledger recorded.

A batch that cannot be scored is an outcome, not an exception: no production model, the kill switch on, the
artifact or its AI label missing or changed, model inputs missing from the batch, a failing prediction. It is
recorded as ``not_scored`` with its reason (never a message that could quote an input value).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from charter_guardrails.core.errors import ArtifactIntegrityError
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.settings import get_settings
from charter_guardrails.core.stored_paths import from_stored, to_stored
from charter_guardrails.decision import prediction_stats
from charter_guardrails.decision.model_registry import artifact_file, card_file, production_version
from charter_guardrails.ledger.audit import append_event
from charter_guardrails.ledger.models import ModelVersion
from charter_guardrails.ledger.models_predictions import PredictionBatch

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

SCORED, NOT_SCORED = "scored", "not_scored"
PREDICTIONS_SUFFIX = ".predictions.parquet"
LABEL_FILE = "ai_label.json"
ACTOR = "charter-guardrails"


@dataclass(frozen=True)
class ScoringOutcome:
    """What scoring a batch gave: scored or not (and why), and the summary the ledger row holds."""

    scored: bool
    reason: str | None = None
    rows: int = 0
    model_version: int | None = None
    ai_label_id: str | None = None
    distribution: dict[str, Any] = field(default_factory=dict)
    drift: float | None = None
    predictions: Path | None = None
    record_id: int | None = None

    def summary(self) -> dict[str, Any]:
        """Rows, model version, distribution and drift (or the reason it was not scored): aggregates only."""
        if not self.scored:
            return {"scored": False, "reason": self.reason, "model_version": self.model_version}
        return {
            "scored": True,
            "rows": self.rows,
            "model_version": self.model_version,
            "distribution": self.distribution,
            "drift": self.drift,
        }

    @classmethod
    def of_row(cls, row: PredictionBatch) -> ScoringOutcome:
        return cls(
            scored=row.status == SCORED,
            reason=row.reason,
            rows=row.rows,
            model_version=row.model_version,
            ai_label_id=row.ai_label_id,
            distribution=dict(row.distribution or {}),
            drift=row.drift,
            predictions=from_stored(row.predictions, get_settings().data_dir),
            record_id=row.id,
        )


def predictions_path(batch: Path) -> Path:
    """Where the predictions of ``batch`` are written: beside it, ``<stem>.predictions.parquet``."""
    return batch.with_name(batch.stem + PREDICTIONS_SUFFIX)


def ai_label_id(version: ModelVersion) -> str | None:
    """The id of the version's AI label: the SHA-256 of the ``ai_label.json`` beside its model card."""
    from charter_guardrails.refresh.artifacts import file_sha256

    card = card_file(version)
    label = card.parent / LABEL_FILE if card is not None else None
    return file_sha256(label) if label is not None and label.is_file() else None


@dataclass(frozen=True)
class _Production:
    version: ModelVersion
    artifact: Path
    label: str


def _production(policy: UseCasePolicy, version: ModelVersion | None) -> _Production | str:
    """The production version, its artifact and AI label; else the reason the batch cannot be scored."""
    if version is None:
        return f"{policy.id} has no production model: publish a version with the model refresh DAG first"
    number = version.version
    if version.suspended:
        return f"the kill switch is on: production model v{number} is suspended (`charter model resume` lifts it)"
    artifact = artifact_file(version)
    if artifact is None or not version.artifact_sha256:
        return f"production model v{number} has no artifact recorded: publish the version again"
    label = ai_label_id(version)
    if label is None:
        return f"production model v{number} has no AI label ({LABEL_FILE} beside its model card): publish it again"
    return _Production(version, artifact, label)


def _inputs(policy: UseCasePolicy, batch: Path) -> pd.DataFrame | str:
    """The batch's model inputs, read and typed as the policy declares; else the reason they cannot be."""
    from charter_guardrails.checks.proportionality import model_input_columns
    from charter_guardrails.core.policy_models import DatasetRole
    from charter_guardrails.readers.files import apply_types, read_dataset

    dataset = policy.datasets_with_role(DatasetRole.INFERENCE)[0]
    frame = read_dataset(dataset, batch)
    if not policy.model.trainer:  # the built-in pipeline types its inputs itself (``DeclaredInputs``)
        frame, _ = apply_types(frame, dataset)
    # A team's model gets the batch as its trainer got the training rows: the cells of the pseudonymised copy,
    # as read; typed columns there would meet encoders fitted on text (a TypeError, and no predictions).
    features = model_input_columns(policy)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        return f"the batch lacks the model inputs {', '.join(missing)}: deliver them as the policy declares"
    return frame[features]


def _predict(
    policy: UseCasePolicy, model: Any, inputs: pd.DataFrame
) -> tuple[list[Any], list[float] | None, str | None]:
    """Predictions, the positive class's probabilities (when the model gives them) and that class."""
    raw = model.predict(inputs)
    if policy.model.kind != "text_classifier":
        return [float(v) for v in raw], None, None
    predictions = [str(v) for v in raw]
    classes = [str(c) for c in getattr(model, "classes_", [])]
    if not classes or not hasattr(model, "predict_proba"):
        return predictions, None, None
    declared = policy.equity.positive_label
    positive = declared if declared in classes else classes[1] if len(classes) == 2 else None
    if positive is None:
        return predictions, None, None
    proba = model.predict_proba(inputs)[:, classes.index(positive)]
    return predictions, [float(p) for p in proba], positive


def _write(path: Path, predictions: list[Any], probabilities: list[float] | None, meta: dict[str, Any]) -> None:
    """The predictions file, written atomically: row number, prediction, probability, version, label, run."""
    import pandas as pd

    columns: dict[str, Any] = {"row": pd.Series(range(1, len(predictions) + 1), dtype="int64")}
    columns["prediction"] = pd.Series(predictions, dtype="string" if meta["kind"] == "classes" else "float64")
    if probabilities is not None:
        columns["probability"] = pd.Series(probabilities, dtype="float64")
    columns["model_version"] = pd.Series([meta["model_version"]] * len(predictions), dtype="int64")
    columns["ai_label_id"] = pd.Series([meta["ai_label_id"]] * len(predictions), dtype="string")
    columns["run_id"] = pd.Series([meta["run_id"]] * len(predictions), dtype="string")
    tmp = path.with_name(path.name + ".tmp")
    pd.DataFrame(columns).to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _previous(session: Session, use_case: str) -> PredictionBatch | None:
    return session.scalars(
        select(PredictionBatch)
        .where(PredictionBatch.use_case == use_case, PredictionBatch.status == SCORED)
        .order_by(PredictionBatch.id.desc())
    ).first()


def score_batch(
    session: Session, policy: UseCasePolicy, batch: Path, *, dag_id: str | None, run_id: str, actor: str = ACTOR
) -> ScoringOutcome:
    """Score ``batch`` with the production model of ``policy``, write its predictions beside it and record them.

    Runs in the caller's transaction (the row and its audit event commit together). A run that already
    recorded this batch gets that record back (a retried task scores once).

    :param batch: the accepted copy, inside the data folder.
    :returns: the outcome; a batch that cannot be scored is a ``not_scored`` outcome with its reason.
    """
    stored = to_stored(batch, get_settings().data_dir) or str(batch)
    existing = session.scalars(
        select(PredictionBatch).where(
            PredictionBatch.use_case == policy.id, PredictionBatch.run_id == run_id, PredictionBatch.batch == stored
        )
    ).first()
    if existing is not None:
        return ScoringOutcome.of_row(existing)
    row = PredictionBatch(use_case=policy.id, dag_id=dag_id, run_id=run_id, batch=stored, rows=0, distribution={})
    version = production_version(session, policy.id)
    row.model_version = version.version if version is not None else None
    production = _production(policy, version)
    if isinstance(production, str):
        return _record(session, row, actor, reason=production)
    row.ai_label_id = production.label
    previous = _previous(session, policy.id)
    scored = _score(policy, production, batch, run_id, previous.distribution if previous is not None else None)
    if isinstance(scored, str):
        return _record(session, row, actor, reason=scored)
    rows, distribution, path = scored
    row.rows, row.distribution, row.predictions = rows, distribution, to_stored(path, get_settings().data_dir)
    if previous is not None:
        row.previous_id, row.drift = previous.id, prediction_stats.drift(previous.distribution, distribution)
    return _record(session, row, actor, reason=None)


def _score(
    policy: UseCasePolicy, production: _Production, batch: Path, run_id: str, previous: dict[str, Any] | None
) -> tuple[int, dict[str, Any], Path] | str:
    """Load, read, predict and write; the rows, the distribution (a regressor's on the edges of ``previous``)
    and the file, or why not."""
    from charter_guardrails.refresh.artifacts import load_model

    number = production.version.version
    try:
        model = load_model(production.artifact, str(production.version.artifact_sha256))
    except ArtifactIntegrityError:
        return f"the artifact of production model v{number} is missing or differs from its recorded SHA-256"
    try:
        inputs = _inputs(policy, batch)
        if isinstance(inputs, str):
            return inputs
        predictions, probabilities, positive = _predict(policy, model, inputs)
    except Exception as exc:  # noqa: BLE001 - any failure of the team's data or model is an outcome, not a crash
        log.warning("%s: batch not scored by v%s (%s)", policy.id, number, type(exc).__name__)
        return f"scoring by v{number} failed ({type(exc).__name__}; its message may quote input values: not kept)"
    if policy.model.kind == "text_classifier":
        distribution = prediction_stats.class_distribution(predictions, probabilities, positive)
    else:
        distribution = prediction_stats.value_distribution(predictions, previous)
    path = predictions_path(batch)
    meta = {"kind": distribution["kind"], "model_version": number, "ai_label_id": production.label, "run_id": run_id}
    _write(path, predictions, probabilities, meta)
    return len(predictions), distribution, path


def _record(session: Session, row: PredictionBatch, actor: str, *, reason: str | None) -> ScoringOutcome:
    row.status, row.reason = (NOT_SCORED, reason) if reason else (SCORED, None)
    session.add(row)
    append_event(
        session,
        actor=actor,
        action=f"predictions.{row.status}",
        subject=row,
        use_case=row.use_case,
        run_id=row.run_id,
        payload={"model_version": row.model_version, "rows": row.rows, "drift": row.drift},
    )
    if reason:
        log.info("%s: batch not scored: %s", row.use_case, reason)
    return ScoringOutcome.of_row(row)


__all__ = [
    "NOT_SCORED",
    "PREDICTIONS_SUFFIX",
    "SCORED",
    "ScoringOutcome",
    "ai_label_id",
    "predictions_path",
    "score_batch",
]
