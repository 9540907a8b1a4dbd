"""Train a candidate model from a minimised frame, measure its energy, and save a verifiable artifact.

The steps of :func:`train_candidate`: keep the labelled rows, split them (seeded, stratified for
classifiers), fit the pipeline of :mod:`charter_guardrails.refresh.features` while
:mod:`charter_guardrails.refresh.energy` measures the fit, score on the held-out rows against the naive
baseline, and write the artifact and the holdout (:mod:`charter_guardrails.refresh.artifacts`).
With ``model.trainer``, the team's own function fits the model instead, in a child process
(:mod:`charter_guardrails.refresh.custom_trainer`); the rest is the same. The ``training`` check of
:mod:`charter_guardrails.refresh.training_check` turns its failures into verdicts.

pandas and scikit-learn are imported inside functions so that task modules import fast.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.proportionality import model_input_columns, sensitive_columns
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import ColumnRole, Dataset, ModelSpec
from charter_guardrails.refresh.artifacts import ARTIFACT_NAME, HOLDOUT_NAME, load_model, save_holdout, save_model
from charter_guardrails.refresh.energy import EnergyMeasurement, measure_energy
from charter_guardrails.refresh.training_check import PHASE_PREDICT, raised

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: The category of a missing value, in model inputs and in fairness groups.
MISSING_CATEGORY = "(non renseigné)"


@dataclass
class TrainedModel:
    """A trained candidate (or a reloaded version) and what is known about it.

    ``holdout`` is the held-out part of the minimised frame (model inputs, label, sensitive
    attributes, timestamps); it is also written to ``holdout_path`` for a later task.
    """

    use_case: str
    kind: str
    target: str
    metric: str
    pipeline: Any
    artifact_path: Path
    artifact_sha256: str
    feature_columns: list[str]
    sensitive_columns: list[str]
    metrics: dict[str, float]
    energy: EnergyMeasurement
    train_rows: int
    test_rows: int
    random_state: int
    #: The naive predictor's constant output (majority class or training mean): the reference without production.
    baseline_prediction: str | float | None = None
    classes: list[str] | None = None
    #: ``{"column", "start", "end"}`` of the training data, ISO 8601, for the model card.
    data_period: dict[str, str | None] = field(default_factory=dict)
    holdout: pd.DataFrame | None = None
    holdout_path: Path | None = None
    #: ``model.trainer`` when the team's own function trained it; ``None`` for the built-in pipeline.
    trainer: str | None = None
    #: The class of the fitted model (``Pipeline`` for the built-in one), for the ``training`` result.
    estimator: str = "Pipeline"

    def predict(self, frame: pd.DataFrame) -> Any:
        """Predictions for ``frame``; columns that are not model inputs are ignored."""
        return self.pipeline.predict(frame)

    def to_json_dict(self) -> dict[str, Any]:
        """Everything but the pipeline and the holdout frame: safe for XCom and the ledger."""
        return {
            "use_case": self.use_case,
            "kind": self.kind,
            "target": self.target,
            "metric": self.metric,
            "artifact_path": str(self.artifact_path),
            "artifact_sha256": self.artifact_sha256,
            "feature_columns": list(self.feature_columns),
            "sensitive_columns": list(self.sensitive_columns),
            "metrics": dict(self.metrics),
            "energy": self.energy.to_json_dict(),
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "random_state": self.random_state,
            "baseline_prediction": self.baseline_prediction,
            "classes": self.classes,
            "data_period": dict(self.data_period),
            "holdout_path": str(self.holdout_path) if self.holdout_path else None,
            "trainer": self.trainer,
            "estimator": self.estimator,
        }


def load_trained_model(data: dict[str, Any], *, with_holdout: bool = True) -> TrainedModel:
    """Rebuild a :class:`TrainedModel` from :meth:`TrainedModel.to_json_dict` (e.g. in the next task).

    :param data: the JSON dict.
    :param with_holdout: also read the holdout Parquet file, when one was written.
    :raises ArtifactIntegrityError: the artifact changed since training.
    """
    import pandas as pd

    path = Path(data["artifact_path"])
    pipeline = load_model(path, data["artifact_sha256"])
    holdout_path = Path(data["holdout_path"]) if data.get("holdout_path") else None
    holdout = pd.read_parquet(holdout_path) if with_holdout and holdout_path is not None else None
    return TrainedModel(
        use_case=data["use_case"],
        kind=data["kind"],
        target=data["target"],
        metric=data["metric"],
        pipeline=pipeline,
        artifact_path=path,
        artifact_sha256=data["artifact_sha256"],
        feature_columns=list(data["feature_columns"]),
        sensitive_columns=list(data.get("sensitive_columns", [])),
        metrics=dict(data.get("metrics", {})),
        energy=EnergyMeasurement.from_json_dict(data["energy"]),
        train_rows=int(data["train_rows"]),
        test_rows=int(data["test_rows"]),
        random_state=int(data.get("random_state", 0)),
        baseline_prediction=data.get("baseline_prediction"),
        classes=data.get("classes"),
        data_period=dict(data.get("data_period") or {}),
        holdout=holdout,
        holdout_path=holdout_path,
        trainer=data.get("trainer"),
        estimator=str(data.get("estimator") or "Pipeline"),
    )


def _score(metric: str, y_true: Any, y_pred: Any) -> float:
    from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score

    if metric == "accuracy":
        return float(accuracy_score(y_true, y_pred))
    if metric == "f1_macro":
        return float(f1_score(y_true, y_pred, average="macro", zero_division=0))
    if metric == "mae":
        return float(mean_absolute_error(y_true, y_pred))
    if metric == "r2":
        return float(r2_score(y_true, y_pred))
    raise ValueError(f"unknown metric {metric!r}")


def score(metric: str, y_true: Any, y_pred: Any) -> float:
    """The value of ``metric`` (accuracy, f1_macro, mae, r2) for these labels and predictions."""
    return _score(metric, y_true, y_pred)


def metrics_for(kind: str, y_true: Any, y_pred: Any) -> dict[str, float]:
    """Every metric of the model kind: accuracy and f1_macro, or mae and r2."""
    names = ("accuracy", "f1_macro") if kind == "text_classifier" else ("mae", "r2")
    return {name: _score(name, y_true, y_pred) for name in names}


def label_series(frame: pd.DataFrame, kind: str, target: str) -> pd.Series:
    """The label column with types scikit-learn's metrics accept (str for classes, float for values)."""
    if kind == "text_classifier":
        return frame[target].astype("string").astype(object)
    return frame[target].astype("Float64").astype(float)


def train_candidate(
    policy: UseCasePolicy,
    frame: pd.DataFrame,
    *,
    random_state: int = 0,
    artifact_dir: Path,
    dataset: Dataset | None = None,
    write_holdout: bool = True,
) -> TrainedModel:
    """Split, train, measure the energy, score on the held-out rows, and save the artifact.

    The split is deterministic (``random_state``) and stratified on the label for classifiers.
    Rows without a label are not used. Only the energy of the fit is measured: that is the
    footprint a refresh adds.

    :param policy: the use case.
    :param frame: the minimised frame from :func:`charter_guardrails.checks.proportionality.check_proportionality`.
    :param random_state: seed of the split and the model.
    :param artifact_dir: folder for ``model.joblib`` and ``holdout.parquet`` (created if needed).
    :param dataset: the training dataset declaration; the policy's training dataset by default.
    :param write_holdout: also write the holdout to Parquet, for an evaluation in another task.
    :raises ValueError: when the frame cannot train the declared model (missing inputs, a single class, too few rows).
    :raises TrainerFailure: the team's ``model.trainer`` failed (a verdict: see
        :func:`charter_guardrails.refresh.training_check.check_training`).
    """
    dataset = dataset or policy.training_dataset
    spec = policy.model
    inputs = model_input_columns(policy, dataset)
    labelled = _labelled_rows(policy, frame, inputs)
    train, holdout, y_train = _split(policy, labelled, random_state)
    artifact_dir = Path(artifact_dir)
    artifact_path = artifact_dir / ARTIFACT_NAME
    if spec.trainer:
        pipeline, energy, sha, estimator = _fit_custom(policy, train, y_train, inputs, random_state, artifact_path)
        metrics, baseline, classes = _custom_holdout_metrics(spec, pipeline, holdout, y_train)
    else:
        from charter_guardrails.refresh.features import build_pipeline

        pipeline, estimator = build_pipeline(policy, random_state=random_state, dataset=dataset), "Pipeline"
        energy = _fit(pipeline, train[inputs], y_train)
        metrics, baseline, classes = _holdout_metrics(spec.kind, spec.target, pipeline, holdout, y_train)
        sha = save_model(pipeline, artifact_path)
    holdout_path = save_holdout(holdout, artifact_dir / HOLDOUT_NAME) if write_holdout else None
    return TrainedModel(
        use_case=policy.id,
        kind=spec.kind,
        target=spec.target,
        metric=spec.metric,
        pipeline=pipeline,
        artifact_path=artifact_path,
        artifact_sha256=sha,
        feature_columns=inputs,
        sensitive_columns=[c for c in sensitive_columns(policy, dataset) if c in frame.columns],
        metrics=metrics,
        energy=energy,
        train_rows=len(train),
        test_rows=len(holdout),
        random_state=random_state,
        baseline_prediction=baseline,
        classes=classes,
        data_period=data_period(frame, dataset),
        holdout=holdout,
        holdout_path=holdout_path,
        trainer=spec.trainer,
        estimator=estimator,
    )


def _fit_custom(
    policy: UseCasePolicy, train: pd.DataFrame, y_train: pd.Series, inputs: list[str], random_state: int, path: Path
) -> tuple[Any, EnergyMeasurement, str, str]:
    """(model, energy, SHA-256, estimator class) from the team's trainer, given the declared inputs and label only."""
    from charter_guardrails.refresh.custom_trainer import train_custom

    target = policy.model.target
    frame = train[inputs].reset_index(drop=True)
    frame[target] = y_train.to_numpy()  # str for a classifier, float for a regressor: what the metrics compare
    model, fit = train_custom(policy.model, frame, features=inputs, random_state=random_state, artifact_path=path)
    return model, fit.energy, fit.sha256, fit.estimator


def _custom_holdout_metrics(
    spec: ModelSpec, model: Any, holdout: pd.DataFrame, y_train: pd.Series
) -> tuple[dict[str, float], str | float, list[str] | None]:
    """:func:`_holdout_metrics` of a team's model; its prediction failing is the trainer's verdict."""
    try:
        return _holdout_metrics(spec.kind, spec.target, model, holdout, y_train)
    except Exception as exc:  # noqa: BLE001 - a team's model that cannot predict the holdout is its verdict
        raise raised(str(spec.trainer), PHASE_PREDICT, exc) from None


def _labelled_rows(policy: UseCasePolicy, frame: pd.DataFrame, inputs: list[str]) -> pd.DataFrame:
    """The rows with a label; refuses a frame without the declared inputs or with too few labels."""
    target = policy.model.target
    missing = [c for c in [*inputs, target] if c not in frame.columns]
    if missing:
        raise ValueError(f"use case {policy.id!r}: columns missing from the training frame: {missing}")
    labelled = frame.loc[frame[target].notna().to_numpy()].reset_index(drop=True)
    if len(labelled) < 10:
        raise ValueError(f"use case {policy.id!r}: {len(labelled)} labelled rows, too few to train and evaluate")
    return labelled


def _split(
    policy: UseCasePolicy, labelled: pd.DataFrame, random_state: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """(training rows, held-out rows, training labels): seeded, stratified on the label for classifiers."""
    from sklearn.model_selection import train_test_split

    spec = policy.model
    y = label_series(labelled, spec.kind, spec.target)
    stratify = None
    if spec.kind == "text_classifier":
        counts = y.value_counts()
        if len(counts) < 2:
            raise ValueError(f"use case {policy.id!r}: the label has a single class; nothing to learn")
        # stratify only when every class can be on both sides of the split
        stratify = y if int(counts.min()) >= 2 else None
    train_index, test_index = train_test_split(
        list(range(len(labelled))), test_size=spec.test_size, random_state=random_state, stratify=stratify
    )
    train, holdout = labelled.iloc[sorted(train_index)], labelled.iloc[sorted(test_index)].reset_index(drop=True)
    return train, holdout, y.iloc[sorted(train_index)]


def _fit(pipeline: Any, inputs: pd.DataFrame, labels: pd.Series) -> EnergyMeasurement:
    """Fit ``pipeline`` in place; the energy of the fit alone."""
    from threadpoolctl import threadpool_limits

    # One thread: on a shared worker, OpenMP threads fighting for cores made the fit 5x slower
    # (and the energy figure depend on the neighbours' load).
    with threadpool_limits(limits=1), measure_energy(country_iso_code="FRA") as box:
        pipeline.fit(inputs, labels)
    assert box.measurement is not None  # noqa: S101 - set when the block exits; narrows the type for mypy
    return box.measurement


def _holdout_metrics(
    kind: str, target: str, pipeline: Any, holdout: pd.DataFrame, y_train: pd.Series
) -> tuple[dict[str, float], str | float, list[str] | None]:
    """(metrics on the held-out rows, with ``baseline_*`` for the naive predictor; that predictor; the classes)."""
    from threadpoolctl import threadpool_limits

    y_test = label_series(holdout, kind, target)
    with threadpool_limits(limits=1):
        predicted = pipeline.predict(holdout)
    metrics = metrics_for(kind, y_test, predicted)
    baseline: str | float
    if kind == "text_classifier":
        baseline = str(y_train.value_counts().sort_index().idxmax())
        # a team's classifier without ``classes_``: the classes it was trained on
        known = getattr(pipeline, "classes_", None)
        classes = [str(c) for c in (known if known is not None else sorted(y_train.unique()))]
    else:
        baseline = float(y_train.mean())
        classes = None
    for name, value in metrics_for(kind, y_test, [baseline] * len(y_test)).items():
        metrics[f"baseline_{name}"] = value
    return metrics, baseline, classes


def data_period(frame: pd.DataFrame, dataset: Dataset) -> dict[str, str | None]:
    """First and last date of the data (the retention column, else the first timestamp column)."""
    import pandas as pd

    column = dataset.retention.date_column if dataset.retention else None
    if column is None:
        stamps = dataset.columns_with_role(ColumnRole.TIMESTAMP)
        column = stamps[0].name if stamps else None
    if column is None or column not in frame.columns or frame.empty:
        return {"column": column, "start": None, "end": None}
    dates = pd.to_datetime(frame[column], errors="coerce", utc=True).dropna()
    if dates.empty:
        return {"column": column, "start": None, "end": None}
    return {"column": column, "start": dates.min().isoformat(), "end": dates.max().isoformat()}
