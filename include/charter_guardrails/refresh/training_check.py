"""The ``training`` check: did the candidate train, and did the team's own trainer keep its contract?

A refresh records one ``training`` result. With the built-in pipeline it passes once the candidate is
trained. With a team's ``model.trainer`` (:mod:`charter_guardrails.refresh.custom_trainer`) each way the
trainer can fail is a failing verdict with a summary that says what happened and what to do: it cannot
be imported, it raises, it reads a column outside the declared inputs, it returns something that does not
predict or does not pickle, it runs past ``model.training_timeout``, or its process dies.

The training check is not overridable: a candidate that did not train has nothing a human could publish.
Summaries and evidence hold exception types, column and method names and the first line of an exception's
message with its quoted values masked, never a data value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from charter_guardrails.core.catalogue import CATALOGUE, CheckName
from charter_guardrails.core.messages import Message, Template
from charter_guardrails.core.results import CheckResult, Severity, Verdict

if TYPE_CHECKING:
    import pandas as pd

    from charter_guardrails.core.policy import UseCasePolicy
    from charter_guardrails.refresh.training import TrainedModel

#: How the evidence names the built-in pipeline of :mod:`charter_guardrails.refresh.features`.
BUILT_IN = "built-in"
#: An exception's message is kept to its first line, cut at this many characters.
MAX_ERROR_CHARS = 200

TRAINED_BUILT_IN = Template(
    "the candidate was trained by the built-in %(kind)s pipeline on %(rows)d rows in %(seconds).1f s"
)
TRAINED_CUSTOM = Template(
    "the candidate was trained by %(trainer)s on %(rows)d rows in %(seconds).1f s: a %(estimator)s that "
    "predicts and pickles, evaluated like the built-in model"
)
NOT_INSTALLED = Template(
    "the trainer %(trainer)s cannot be imported: module %(module)s is not installed where the training task runs; "
    "check model.trainer in the policy, or install the team's package on the workers"
)
NO_FUNCTION = Template(
    "the trainer %(trainer)s cannot be imported: module %(module)s has no function %(function)s; "
    "check model.trainer in the policy"
)
RAISED = Template(
    "the trainer %(trainer)s raised %(error)s while %(phase)s: %(first_line)s (first line of the message, cut at "
    "200 characters, quoted values masked); fix the training function, then run the refresh again"
)
UNDECLARED_COLUMN = Template(
    "the trainer %(trainer)s asked for the column %(column)s, which is not in the frame it receives (only the "
    "declared model inputs %(inputs)s and the label %(label)s): declare the column as a model input "
    "(role feature or free_text) in the policy, or stop reading it"
)
NO_METHODS = Template(
    "the trainer %(trainer)s returned a %(estimator)s without %(methods)s: return a fitted estimator or "
    "scikit-learn Pipeline with predict (and predict_proba for a classifier)"
)
NOT_PICKLABLE = Template(
    "the model the trainer %(trainer)s returned (a %(estimator)s) does not pickle with joblib (%(error)s): use "
    "classes defined at module level in an installed package, and no lambdas, locks or open files"
)
TIMED_OUT = Template(
    "the trainer %(trainer)s was stopped after its time limit of %(limit).0f s (model.training_timeout): "
    "make it faster, or raise the limit in the policy"
)
CRASHED = Template(
    "the trainer %(trainer)s's process ended without a result (exit code %(code)s: out of memory, or a crash in "
    "native code); run it on a sample outside Airflow to find out, then run the refresh again"
)
#: What the trainer was doing when it raised (the ``phase`` of :data:`RAISED`).
PHASE_IMPORT = Template("its module was imported")
PHASE_FIT = Template("training")
PHASE_PREDICT = Template("its model predicted")

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, quoted values masked, cut at :data:`MAX_ERROR_CHARS` characters.

    A team's exception message may quote a value of the data it trained on (``could not convert string to
    float: '…'``): quoted literals become ``'…'``, e-mails, phones, NIR and IBAN left unquoted are masked
    (:func:`~charter_guardrails.reporting.scrubbing.mask_personal_values`), and the rest of the message is dropped.
    """
    from charter_guardrails.reporting.scrubbing import mask_personal_values

    lines = str(exc).strip().splitlines()
    line = mask_personal_values(_QUOTED.sub("'…'", lines[0] if lines else ""))
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


class TrainerFailure(Exception):
    """The team's trainer failed: the message and evidence of the failing ``training`` result.

    Raised by :func:`charter_guardrails.refresh.training.train_candidate` and turned into a verdict by
    :func:`check_training`; it never reaches a task as a traceback.
    """

    def __init__(self, outcome: str, message: Message, **evidence: Any) -> None:
        super().__init__(message.english)
        self.outcome = outcome
        self.message = message
        self.evidence = {key: value for key, value in evidence.items() if value is not None}


def raised(trainer: str, phase: Template, exc: BaseException) -> TrainerFailure:
    """The failure of a trainer that raised ``exc`` while in ``phase`` (its type and masked first line only)."""
    line = first_line(exc)
    error = type(exc).__name__
    message = RAISED(trainer=trainer, error=error, phase=phase(), first_line=line)
    return TrainerFailure("raised", message, error_type=error, error_first_line=line)


@dataclass(frozen=True)
class TrainingOutcome:
    """The candidate (``None`` when training failed) and the ``training`` result to record."""

    model: TrainedModel | None
    result: CheckResult
    #: the candidate's JSON dict, when there is one (for XCom and the ledger)
    candidate: dict[str, Any] = field(default_factory=dict)


def check_training(
    train: Callable[..., TrainedModel], policy: UseCasePolicy, frame: pd.DataFrame, **kwargs: Any
) -> TrainingOutcome:
    """Train with ``train`` (:func:`~charter_guardrails.refresh.training.train_candidate`) and judge it.

    :param kwargs: passed to ``train`` (``artifact_dir``, ``random_state``...).
    :return: the trained candidate and a passing result, or no candidate and the failing result that says why.
    """
    from charter_guardrails.checks.proportionality import model_input_columns

    try:
        model = train(policy, frame, **kwargs)
    except TrainerFailure as failure:
        inputs = model_input_columns(policy, kwargs.get("dataset") or policy.training_dataset)
        return TrainingOutcome(model=None, result=training_failed(policy, failure, inputs))
    return TrainingOutcome(model=model, result=training_passed(policy, model), candidate=model.to_json_dict())


def _result(policy: UseCasePolicy, verdict: Verdict, message: Message, evidence: dict[str, Any]) -> CheckResult:
    return CheckResult(
        check=CheckName.TRAINING,
        verdict=verdict,
        severity=Severity.INFO if verdict is Verdict.PASS else Severity.ERROR,
        engagements=CATALOGUE[CheckName.TRAINING].engagement_ids(),
        dataset=policy.training_dataset.id,
        message=message,
        evidence=evidence,
    )


def training_passed(policy: UseCasePolicy, model: TrainedModel) -> CheckResult:
    """The passing ``training`` result of a trained candidate."""
    spec = policy.model
    seconds, rows = model.energy.duration_s, model.train_rows
    message = (
        TRAINED_CUSTOM(trainer=spec.trainer, rows=rows, seconds=seconds, estimator=model.estimator)
        if spec.trainer
        else TRAINED_BUILT_IN(kind=spec.kind, rows=rows, seconds=seconds)
    )
    evidence = {
        "trainer": spec.trainer or BUILT_IN,
        "outcome": "trained",
        "model_inputs": list(model.feature_columns),
        "label": spec.target,
        "timeout_s": spec.training_timeout.total_seconds() if spec.trainer else None,
        "duration_s": seconds,
        "train_rows": rows,
        "estimator": model.estimator,
        "artifact_sha256": model.artifact_sha256,
    }
    return _result(policy, Verdict.PASS, message, evidence)


def training_failed(policy: UseCasePolicy, failure: TrainerFailure, inputs: list[str]) -> CheckResult:
    """The failing ``training`` result of ``failure``."""
    spec = policy.model
    evidence = {
        "trainer": spec.trainer or BUILT_IN,
        "outcome": failure.outcome,
        "model_inputs": list(inputs),
        "label": spec.target,
        "timeout_s": spec.training_timeout.total_seconds(),
        **failure.evidence,
    }
    return _result(policy, Verdict.FAIL, failure.message, evidence)
