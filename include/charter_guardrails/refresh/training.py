"""Train a candidate model from a minimised frame, measure its energy, and save a verifiable artifact.

The model reads only the columns :func:`charter_guardrails.checks.proportionality.model_input_columns`
declares. The first step of every pipeline, :class:`DeclaredInputs`, selects exactly those
columns by name, so a column that is not declared can reach neither the fit nor a prediction,
even if a caller passes a wider frame.

Energy is measured with codecarbon's ``OfflineEmissionsTracker`` for France: no network call,
no file written, and only errors logged. On a machine without RAPL counters codecarbon estimates
the CPU power from its TDP table and the process load; the method is recorded with the numbers.

The artifact is a joblib pickle. Unpickling runs code, so :func:`load_model` checks the file's
SHA-256 against the one recorded at training *before* it unpickles anything.

pandas and scikit-learn are imported inside functions so that task modules import fast.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.proportionality import model_input_columns, sensitive_columns
from charter_guardrails.core.policy import ColumnRole, ColumnType, Dataset, UseCasePolicy

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

ARTIFACT_NAME = "model.joblib"
HOLDOUT_NAME = "holdout.parquet"
MISSING_CATEGORY = "(non renseigné)"
#: Used only when codecarbon itself cannot run: a conservative average draw of one busy core and its RAM share, in watts.
FALLBACK_POWER_W = 15.0
#: Average carbon intensity of the French grid (gCO2e/kWh), used with the fallback only.
FALLBACK_FRA_G_PER_KWH = 56.0


class ArtifactIntegrityError(Exception):
    """A model artifact does not match the SHA-256 recorded when it was trained (Sûreté 2: an incident)."""

    def __init__(self, path: Path, expected: str, actual: str | None) -> None:
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
        found = "the file is missing" if actual is None else f"its SHA-256 is {actual}"
        super().__init__(f"{path}: model artifact refused, expected SHA-256 {expected} but {found}; it was not loaded")


@dataclass(frozen=True)
class EnergyMeasurement:
    """Energy of one training run.

    :param kwh: energy consumed (CPU, RAM, GPU), in kWh.
    :param gco2e: emissions, in grams of CO2 equivalent, for the French grid mix.
    :param duration_s: wall time of the measured block.
    :param method: how it was measured, e.g. ``codecarbon 3.3.2 offline FRA; cpu: cpu_load (TDP 8 W)``.
    """

    kwh: float
    gco2e: float
    duration_s: float
    method: str
    country_iso_code: str = "FRA"
    cpu_power_w: float | None = None
    ram_power_w: float | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> EnergyMeasurement:
        return cls(**data)


class _EnergyBox:
    measurement: EnergyMeasurement | None = None


@contextmanager
def measure_energy(*, country_iso_code: str = "FRA") -> Iterator[_EnergyBox]:
    """Measure the energy of the ``with`` block; read ``box.measurement`` after it.

    :param country_iso_code: grid whose carbon intensity converts kWh to gCO2e.
    """
    box = _EnergyBox()
    tracker = None
    started = time.perf_counter()
    cpu_started = time.process_time()
    try:
        import codecarbon
        from codecarbon import OfflineEmissionsTracker

        # codecarbon sets its own logger level at import and logs at INFO while it initialises
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        tracker = OfflineEmissionsTracker(
            # output_methods=[]: no CSV, API, logger or Prometheus output, whatever a config file or env var says
            country_iso_code=country_iso_code,
            output_methods=[],
            log_level="error",
            tracking_mode="process",
            allow_multiple_runs=True,  # several tasks may train at once; no lock file in /tmp
            measure_power_secs=15,
        )
        tracker.start()
    except Exception as exc:  # noqa: BLE001 - a broken meter must not block training; the method says so
        log.warning("codecarbon unavailable (%s); energy estimated from CPU time", type(exc).__name__)
        tracker = None
    try:
        yield box
    finally:
        duration = time.perf_counter() - started
        measurement: EnergyMeasurement | None = None
        if tracker is not None:
            try:
                emissions_kg = tracker.stop()
                data = tracker.final_emissions_data
                modes = []
                for hardware in getattr(tracker, "_hardware", []):
                    mode = getattr(hardware, "_mode", None)
                    if mode:
                        tdp = getattr(hardware, "_tdp", None)
                        modes.append(f"{type(hardware).__name__.lower()}: {mode}" + (f" (TDP {tdp} W)" if tdp else ""))
                measurement = EnergyMeasurement(
                    kwh=float(data.energy_consumed),
                    gco2e=float(emissions_kg or 0.0) * 1000.0,
                    duration_s=duration,
                    method=f"codecarbon {codecarbon.__version__} offline {country_iso_code}, process tracking"
                    + (f"; {', '.join(modes)}" if modes else ""),
                    country_iso_code=country_iso_code,
                    cpu_power_w=float(data.cpu_power),
                    ram_power_w=float(data.ram_power),
                )
            except Exception as exc:  # noqa: BLE001
                log.warning("codecarbon failed to stop (%s); energy estimated from CPU time", type(exc).__name__)
        if measurement is None:
            cpu_seconds = time.process_time() - cpu_started
            kwh = cpu_seconds * FALLBACK_POWER_W / 3.6e6
            measurement = EnergyMeasurement(
                kwh=kwh,
                gco2e=kwh * FALLBACK_FRA_G_PER_KWH,
                duration_s=duration,
                method=f"estimate: process CPU time x {FALLBACK_POWER_W} W, {FALLBACK_FRA_G_PER_KWH} gCO2e/kWh (codecarbon unavailable)",
                country_iso_code=country_iso_code,
            )
        box.measurement = measurement


# --------------------------------------------------------------------------------------------
# The first pipeline step: declared inputs only, with types scikit-learn accepts.


def _declared_inputs_class() -> type:
    from sklearn.base import BaseEstimator, TransformerMixin

    class DeclaredInputs(TransformerMixin, BaseEstimator):
        """Select the declared model inputs by name and coerce pandas' nullable types.

        Columns that are not declared are never read, at fit or at predict time.
        """

        def __init__(
            self,
            text_columns: list[str] | None = None,
            categorical_columns: list[str] | None = None,
            numeric_columns: list[str] | None = None,
        ) -> None:
            self.text_columns = text_columns
            self.categorical_columns = categorical_columns
            self.numeric_columns = numeric_columns

        def _columns(self) -> list[str]:
            return [*(self.text_columns or []), *(self.categorical_columns or []), *(self.numeric_columns or [])]

        def fit(self, X: Any, y: Any = None) -> Any:  # noqa: N803 - scikit-learn's convention
            missing = [c for c in self._columns() if c not in X.columns]
            if missing:
                raise ValueError(f"declared model inputs missing from the data: {missing}")
            import numpy as np

            self.feature_names_in_ = np.asarray(self._columns(), dtype=object)
            self.n_features_in_ = len(self.feature_names_in_)
            return self

        def transform(self, X: Any) -> Any:  # noqa: N803
            import numpy as np
            import pandas as pd

            missing = [c for c in self._columns() if c not in X.columns]
            if missing:
                raise ValueError(f"declared model inputs missing from the data: {missing}")
            out = pd.DataFrame(index=X.index)
            for column in self.text_columns or []:
                out[column] = X[column].astype("string").fillna("").astype(object)
            for column in self.categorical_columns or []:
                out[column] = X[column].astype("string").fillna(MISSING_CATEGORY).astype(object)
            for column in self.numeric_columns or []:
                values = X[column]
                if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(values):
                    values = (values - pd.Timestamp(0, tz=getattr(values.dt, "tz", None))).dt.days
                out[column] = (
                    pd.to_numeric(values, errors="coerce").astype("Float64").to_numpy(dtype=float, na_value=np.nan)
                )
            return out

        def get_feature_names_out(self, input_features: Any = None) -> Any:
            import numpy as np

            return np.asarray(self._columns(), dtype=object)

    DeclaredInputs.__module__ = __name__
    DeclaredInputs.__qualname__ = "DeclaredInputs"
    return DeclaredInputs


def __getattr__(name: str) -> Any:
    # ``DeclaredInputs`` is built on first use so that importing this module does not import
    # scikit-learn; pickles refer to ``charter_guardrails.refresh.training.DeclaredInputs`` and resolve here.
    if name == "DeclaredInputs":
        cls = _declared_inputs_class()
        globals()["DeclaredInputs"] = cls
        return cls
    raise AttributeError(name)


# --------------------------------------------------------------------------------------------


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
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(pipeline: Any, path: Path) -> str:
    """Write ``pipeline`` with joblib, atomically; return the file's SHA-256."""
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    joblib.dump(pipeline, tmp)
    os.replace(tmp, path)
    return file_sha256(path)


def load_model(path: Path | str, expected_sha256: str) -> Any:
    """Load a model artifact only if its SHA-256 is the one recorded at training.

    :param path: the joblib file.
    :param expected_sha256: the hex digest recorded in the ledger (``ModelVersion.artifact_sha256``).
    :raises ArtifactIntegrityError: the file is missing or differs; nothing was unpickled.
    """
    import joblib

    path = Path(path)
    if not path.is_file():
        raise ArtifactIntegrityError(path, expected_sha256, None)
    actual = file_sha256(path)
    if not hmac.compare_digest(actual, expected_sha256.lower()):
        raise ArtifactIntegrityError(path, expected_sha256, actual)
    return joblib.load(path)


def _input_kinds(dataset: Dataset, inputs: list[str]) -> tuple[list[str], list[str], list[str]]:
    text, categorical, numeric = [], [], []
    for name in inputs:
        column = dataset.column(name)
        if column.role is ColumnRole.FREE_TEXT:
            text.append(name)
        elif column.type in (ColumnType.INTEGER, ColumnType.FLOAT, ColumnType.DATE, ColumnType.DATETIME):
            numeric.append(name)
        else:
            categorical.append(name)
    return text, categorical, numeric


def build_pipeline(policy: UseCasePolicy, *, random_state: int = 0, dataset: Dataset | None = None) -> Any:
    """The unfitted scikit-learn pipeline for the policy's model kind.

    ``text_classifier``: TF-IDF per free-text column and one-hot categories, then a logistic
    regression. ``regressor``: one-hot categories and numbers, then histogram gradient boosting.

    :param policy: the use case.
    :param random_state: seed of every random step.
    :param dataset: whose column declarations to use; the training dataset by default.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    dataset = dataset or policy.training_dataset
    inputs = model_input_columns(policy, dataset)
    if not inputs:
        raise ValueError(f"use case {policy.id!r}: no column is declared with role feature or free_text")
    text, categorical, numeric = _input_kinds(dataset, inputs)
    declared = __getattr__("DeclaredInputs")(
        text_columns=text, categorical_columns=categorical, numeric_columns=numeric
    )
    if policy.model.kind == "text_classifier":
        parts: list[tuple[str, Any, Any]] = [
            (
                f"text_{name}",
                TfidfVectorizer(
                    strip_accents="unicode",
                    lowercase=True,
                    ngram_range=(1, 2),
                    min_df=2,
                    sublinear_tf=True,
                    max_features=50_000,
                ),
                name,
            )
            for name in text
        ]
        if categorical:
            parts.append(("categories", OneHotEncoder(handle_unknown="ignore"), categorical))
        if numeric:
            from sklearn.impute import SimpleImputer

            parts.append(("numbers", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), numeric))
        features = ColumnTransformer(parts, remainder="drop", sparse_threshold=1.0)
        model: Any = LogisticRegression(max_iter=2000, C=10.0, random_state=random_state)
    else:
        if text:
            raise ValueError(f"use case {policy.id!r}: free-text inputs {text} need model.kind: text_classifier")
        parts = []
        if categorical:
            parts.append(("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical))
        if numeric:
            parts.append(("numbers", "passthrough", numeric))  # gradient boosting handles NaN itself
        features = ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)
        # early stopping on a seeded validation split: deterministic, and it stops when more trees stop paying
        model = HistGradientBoostingRegressor(
            max_iter=300,
            learning_rate=0.1,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=10,
            random_state=random_state,
        )
    return Pipeline([("declared_inputs", declared), ("features", features), ("model", model)])


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
    """
    from sklearn.model_selection import train_test_split

    dataset = dataset or policy.training_dataset
    spec = policy.model
    inputs = model_input_columns(policy, dataset)
    missing = [c for c in [*inputs, spec.target] if c not in frame.columns]
    if missing:
        raise ValueError(f"use case {policy.id!r}: columns missing from the training frame: {missing}")
    labelled = frame.loc[frame[spec.target].notna().to_numpy()].reset_index(drop=True)
    if len(labelled) < 10:
        raise ValueError(f"use case {policy.id!r}: {len(labelled)} labelled rows, too few to train and evaluate")
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
    y_train = y.iloc[sorted(train_index)]

    pipeline = build_pipeline(policy, random_state=random_state, dataset=dataset)
    from threadpoolctl import threadpool_limits

    # One thread: on a shared worker, OpenMP threads fighting for cores made the fit 5x slower
    # (and the energy figure depend on the neighbours' load).
    with threadpool_limits(limits=1), measure_energy(country_iso_code="FRA") as box:
        pipeline.fit(train[inputs], y_train)
    assert box.measurement is not None

    y_test = label_series(holdout, spec.kind, spec.target)
    with threadpool_limits(limits=1):
        predicted = pipeline.predict(holdout)
    metrics = metrics_for(spec.kind, y_test, predicted)
    baseline: str | float
    if spec.kind == "text_classifier":
        baseline = str(y_train.value_counts().sort_index().idxmax())
        classes = [str(c) for c in pipeline.classes_]
    else:
        baseline = float(y_train.mean())
        classes = None
    for name, value in metrics_for(spec.kind, y_test, [baseline] * len(y_test)).items():
        metrics[f"baseline_{name}"] = value

    artifact_dir = Path(artifact_dir)
    artifact_path = artifact_dir / ARTIFACT_NAME
    sha = save_model(pipeline, artifact_path)
    holdout_path = None
    if write_holdout:
        holdout_path = artifact_dir / HOLDOUT_NAME
        tmp = holdout_path.with_name(holdout_path.name + ".tmp")
        holdout.to_parquet(tmp, index=False)
        os.replace(tmp, holdout_path)
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
        energy=box.measurement,
        train_rows=len(train),
        test_rows=len(holdout),
        random_state=random_state,
        baseline_prediction=baseline,
        classes=classes,
        data_period=data_period(frame, dataset),
        holdout=holdout,
        holdout_path=holdout_path,
    )


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
