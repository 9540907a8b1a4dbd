"""The model a use case trains: its first step reads the declared inputs only, then features and estimator.

The model reads only the columns :func:`charter_guardrails.checks.proportionality.model_input_columns`
declares. The first step of every pipeline, :class:`DeclaredInputs`, selects exactly those
columns by name, so a column that is not declared can reach neither the fit nor a prediction,
even if a caller passes a wider frame.

This module imports scikit-learn; :mod:`charter_guardrails.refresh.training` imports it on first use,
so that task modules import fast. Pickled pipelines refer to ``DeclaredInputs`` here.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin

from charter_guardrails.checks.proportionality import model_input_columns
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import ColumnRole, ColumnType, Dataset
from charter_guardrails.refresh.training import MISSING_CATEGORY


class DeclaredInputs(TransformerMixin, BaseEstimator):  # type: ignore[misc]  # scikit-learn ships no type stubs
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

    def fit(self, X: Any, y: Any = None) -> Any:  # X: scikit-learn's convention
        missing = [c for c in self._columns() if c not in X.columns]
        if missing:
            raise ValueError(f"declared model inputs missing from the data: {missing}")
        import numpy as np

        self.feature_names_in_ = np.asarray(self._columns(), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: Any) -> Any:
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
    from sklearn.pipeline import Pipeline

    dataset = dataset or policy.training_dataset
    inputs = model_input_columns(policy, dataset)
    if not inputs:
        raise ValueError(f"use case {policy.id!r}: no column is declared with role feature or free_text")
    text, categorical, numeric = _input_kinds(dataset, inputs)
    declared = DeclaredInputs(text_columns=text, categorical_columns=categorical, numeric_columns=numeric)
    if policy.model.kind == "text_classifier":
        features, model = _text_classifier(text, categorical, numeric, random_state)
    else:
        if text:
            raise ValueError(f"use case {policy.id!r}: free-text inputs {text} need model.kind: text_classifier")
        features, model = _regressor(categorical, numeric, random_state)
    return Pipeline([("declared_inputs", declared), ("features", features), ("model", model)])


def _text_classifier(text: list[str], categorical: list[str], numeric: list[str], random_state: int) -> tuple[Any, Any]:
    """TF-IDF per free-text column, one-hot categories, scaled numbers; a logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

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
    return features, LogisticRegression(max_iter=2000, C=10.0, random_state=random_state)


def _regressor(categorical: list[str], numeric: list[str], random_state: int) -> tuple[Any, Any]:
    """One-hot categories and raw numbers; histogram gradient boosting."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.preprocessing import OneHotEncoder

    parts: list[tuple[str, Any, Any]] = []
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
    return features, model
