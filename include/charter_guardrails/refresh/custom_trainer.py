"""A team's own training function (``model.trainer``), run in a child process with a time limit.

The contract (docs/model_refresh.md, "Your own model")::

    def train(frame: pandas.DataFrame, *, features: list[str], label: str, random_state: int) -> estimator

``frame`` is the training split, minimised: the declared model inputs and the label only (str for a
classifier, float for a regressor); the held-out rows are never passed. The function returns a fitted object
with ``predict(DataFrame)`` (and ``predict_proba`` for a classifier) that joblib pickles, e.g. a scikit-learn
Pipeline.

:func:`train_custom` forks a child (the ``fork`` start method where the platform has it, else ``spawn``):
the parent keeps the frame; the child imports the trainer, fits it while
:func:`~charter_guardrails.refresh.energy.measure_energy` measures *its* work (codecarbon tracks the child's
process; the fallback counts the child's CPU time), checks what came back, puts it behind
:class:`DeclaredInputsModel` (a prediction never reads another column either), dumps it with joblib to the
artifact path and reports. The parent waits at most ``model.training_timeout`` and kills the child past it,
then loads the artifact by the SHA-256 the child reported. Every way this fails is a
:class:`~charter_guardrails.refresh.training_check.TrainerFailure`, a verdict of the ``training`` check,
never a traceback.

pandas, scikit-learn and joblib are imported inside functions.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import re
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.core.errors import ArtifactIntegrityError, InfrastructureError
from charter_guardrails.core.messages import Message, Template
from charter_guardrails.refresh.artifacts import load_model, save_model
from charter_guardrails.refresh.energy import EnergyMeasurement, measure_energy
from charter_guardrails.refresh.training_check import (
    CRASHED,
    NO_FUNCTION,
    NO_METHODS,
    NOT_INSTALLED,
    NOT_PICKLABLE,
    PHASE_FIT,
    PHASE_IMPORT,
    PHASE_PREDICT,
    TIMED_OUT,
    UNDECLARED_COLUMN,
    TrainerFailure,
    first_line,
    raised,
)

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    import pandas as pd

    from charter_guardrails.core.policy_models import ModelSpec

log = logging.getLogger(__name__)

#: Seconds a stopped child gets to exit after SIGTERM before it is killed.
KILL_GRACE_S = 5.0
#: Rows of the training frame the returned model must predict in the child, to prove it is fitted.
SMOKE_ROWS = 5


class DeclaredInputsModel:
    """A team's fitted model behind its declared inputs: a prediction passes it those columns only.

    The built-in pipeline starts with :class:`~charter_guardrails.refresh.features.DeclaredInputs` for the same
    reason: the evaluation, the comparison with production and the inference batches pass wider frames (groups,
    label, timestamps), and a column that is not declared must reach no model. Pickled artifacts refer to this
    class here.
    """

    def __init__(self, model: Any, features: list[str]) -> None:
        self.model = model
        self.features = list(features)

    @property
    def classes_(self) -> Any:
        """The classes of a classifier (scikit-learn's attribute), as the team's model has them."""
        return self.model.classes_

    def predict(self, frame: pd.DataFrame) -> Any:
        return self.model.predict(frame[self.features])

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        return self.model.predict_proba(frame[self.features])


@dataclass(frozen=True)
class CustomFit:
    """What the child reported: the artifact's SHA-256, the energy of the fit, the estimator's class and classes."""

    sha256: str
    energy: EnergyMeasurement
    estimator: str
    classes: list[str] | None


def train_custom(
    spec: ModelSpec, frame: pd.DataFrame, *, features: list[str], random_state: int, artifact_path: Path
) -> tuple[Any, CustomFit]:
    """Run ``spec.trainer`` on ``frame`` in a child process; the saved model (reloaded by its hash) and its facts.

    :param spec: the policy's model section (``trainer``, ``training_timeout``, ``kind``, ``target``).
    :param frame: the training rows: ``features`` and the label ``spec.target`` only.
    :param artifact_path: where the child writes the model (joblib).
    :raises TrainerFailure: the trainer failed; its message says how and what to do.
    """
    if spec.trainer is None:
        raise ValueError("train_custom needs a policy whose model names a trainer")
    context: Any = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    reader, writer = context.Pipe(duplex=False)
    job = (spec.trainer, spec.kind == "text_classifier", features, spec.target, random_state, str(artifact_path))
    child = context.Process(target=_child_main, args=(writer, frame, job), name="charter-trainer")
    limit = spec.training_timeout.total_seconds()
    started = time.monotonic()
    _start(child)
    writer.close()  # the parent only reads: EOF then means the child is gone
    report: Any = None
    try:
        report = reader.recv() if reader.poll(limit) else None
    except EOFError:
        report = ("crashed",)
    finally:
        reader.close()
        _stop(child, KILL_GRACE_S if report is not None else 0.0)
    if report is None:
        message = TIMED_OUT(trainer=spec.trainer, limit=limit)
        raise TrainerFailure("timed_out", message, duration_s=time.monotonic() - started)
    if report[0] == "crashed":
        raise TrainerFailure("crashed", CRASHED(trainer=spec.trainer, code=child.exitcode), exit_code=child.exitcode)
    if report[0] == "infrastructure":
        raise InfrastructureError(
            f"the candidate of {spec.trainer} could not be written to {artifact_path} ({report[1]}): free space or "
            "fix the permissions of the work folder, then clear the task"
        )
    if report[0] == "failed":
        _, outcome, message, evidence = report
        raise TrainerFailure(outcome, message, **evidence)
    fit = CustomFit(**report[1])
    return _reload(spec.trainer, artifact_path, fit), fit


def _start(child: Any) -> None:
    """Start ``child``, also from a daemonic process.

    A Celery worker runs tasks in its pool's processes, which multiprocessing marks daemonic, and a daemonic
    process may not start children: the rule exists so that no child outlives its parent. This child never
    does: :func:`train_custom` always joins it, or kills it past the time limit. So the flag is lifted for
    the start, and put back.
    """
    from charter_guardrails.core.forking import inherited_objects_frozen

    current = multiprocessing.current_process()
    daemonic = bool(current.daemon)
    if daemonic:
        current._config["daemon"] = False  # type: ignore[attr-defined]
    try:
        with inherited_objects_frozen():  # the task's ledger connection is never finalised in the child
            child.start()
    finally:
        if daemonic:
            current._config["daemon"] = True  # type: ignore[attr-defined]


def _stop(child: Any, grace: float) -> None:
    """Wait ``grace`` seconds for ``child`` to exit, then stop it (SIGTERM, then SIGKILL)."""
    child.join(grace)
    if child.is_alive():
        child.terminate()
        child.join(KILL_GRACE_S)
    if child.is_alive():
        child.kill()
        child.join()


def _reload(trainer: str, path: Path, fit: CustomFit) -> Any:
    """The model the child wrote, loaded only if its SHA-256 is the one the child reported."""
    try:
        return load_model(path, fit.sha256)
    except ArtifactIntegrityError:
        raise  # the file changed between the child and here: an integrity matter, not the trainer's
    except Exception as exc:  # noqa: BLE001 - a model that does not unpickle is the trainer's verdict
        message = NOT_PICKLABLE(trainer=trainer, estimator=fit.estimator, error=type(exc).__name__)
        raise TrainerFailure("not_picklable", message, estimator=fit.estimator, error_type=type(exc).__name__) from None


# --- in the child -------------------------------------------------------------------------------------------


def _child_main(conn: Connection, frame: pd.DataFrame, job: tuple[Any, ...]) -> None:
    """The child's body: train, report one tuple on ``conn``, exit. Nothing of the data is printed."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the task's own handlers are not the child's business
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    report: tuple[Any, ...]
    try:
        report = ("trained", _train_in_child(frame, *job))
    except TrainerFailure as failure:
        report = ("failed", failure.outcome, failure.message, failure.evidence)
    except OSError as exc:  # the team's code is past (its errors are TrainerFailures): writing the artifact failed
        report = ("infrastructure", f"{type(exc).__name__}: {exc}"[:300])
    except BaseException as exc:  # noqa: BLE001 - whatever happens, the parent gets a verdict
        frames = traceback.extract_tb(exc.__traceback__)
        log.error("trainer child failed: %s at %s", type(exc).__name__, frames[-1][:3] if frames else "?")
        report = ("failed", *_as_failure(str(job[0]), PHASE_FIT, exc))
    try:
        conn.send(report)
    finally:
        conn.close()


def _as_failure(trainer: str, phase: Template, exc: BaseException) -> tuple[str, Message, dict[str, Any]]:
    failure = raised(trainer, phase, exc)
    return failure.outcome, failure.message, failure.evidence


def _train_in_child(
    frame: pd.DataFrame,
    trainer: str,
    classifier: bool,
    features: list[str],
    label: str,
    random_state: int,
    artifact_path: str,
) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    train = _import_trainer(trainer)
    # One thread, as the built-in fit: the energy figure should not depend on the neighbours' load.
    with threadpool_limits(limits=1), measure_energy(country_iso_code="FRA") as box:
        try:
            estimator = train(frame, features=list(features), label=label, random_state=random_state)
        except Exception as exc:  # noqa: BLE001 - whatever the team's code raises is its verdict
            raise _fit_failure(trainer, exc, features, label) from None
    assert box.measurement is not None  # noqa: S101 - set when the block exits; narrows the type for mypy
    name = type(estimator).__name__
    missing = [m for m in ("predict", "predict_proba" if classifier else "") if m and not _has(estimator, m)]
    if missing:
        raise TrainerFailure(
            "bad_result",
            NO_METHODS(trainer=trainer, estimator=name, methods=missing),
            estimator=name,
            missing_methods=missing,
        )
    model = DeclaredInputsModel(estimator, features)
    _smoke_test(trainer, model, frame.head(SMOKE_ROWS), classifier=classifier, features=features, label=label)
    sha = _save(trainer, model, name, Path(artifact_path))
    classes = [str(c) for c in getattr(model, "classes_", [])] if classifier else None
    return {"sha256": sha, "energy": box.measurement, "estimator": name, "classes": classes or None}


def _import_trainer(trainer: str) -> Any:
    """The trainer function; a failure that says which module or function is missing."""
    module_name, _, function = trainer.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        raise TrainerFailure(
            "import_error", NOT_INSTALLED(trainer=trainer, module=missing), error_type=type(exc).__name__
        ) from None
    except Exception as exc:  # noqa: BLE001 - the team's module raised while imported: its verdict
        raise raised(trainer, PHASE_IMPORT, exc) from None
    train = getattr(module, function, None)
    if not callable(train):
        message = NO_FUNCTION(trainer=trainer, module=module_name, function=function)
        raise TrainerFailure("import_error", message, error_type="AttributeError")
    return train


def _fit_failure(trainer: str, exc: Exception, features: list[str], label: str) -> TrainerFailure:
    """Why the fit failed: a column looked up by pandas outside the frame, or the exception itself."""
    column = _missing_column(exc)
    if column is not None:
        message = UNDECLARED_COLUMN(trainer=trainer, column=column, inputs=list(features), label=label)
        return TrainerFailure("undeclared_column", message, column=column, error_type=type(exc).__name__)
    return raised(trainer, PHASE_FIT, exc)


def _missing_column(exc: BaseException) -> str | None:
    """The column name of a ``KeyError`` that pandas raised, in ``exc`` or the exceptions it chains.

    Only a key that pandas itself failed to find is a column name (``frame["x"]``, ``frame[["a", "x"]]``,
    scikit-learn's column selection); a ``KeyError`` of the team's own dictionaries may hold a data value and
    is reported as an exception, its quoted key masked.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, KeyError) and current.args and _raised_by_pandas(current):
            key = current.args[0]
            if not isinstance(key, str):
                return None
            # frame[["a", "x"]]: "['x'] not in index"
            return ", ".join(re.findall(r"'([^']*)'", key)) if key.endswith("not in index") else key
        current = current.__cause__ or current.__context__
    return None


def _raised_by_pandas(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and f"{os.sep}pandas{os.sep}" in frames[-1].filename


def _has(estimator: Any, method: str) -> bool:
    try:
        return callable(getattr(estimator, method, None))
    except Exception:  # noqa: BLE001 - a property that raises means the method is not there
        return False


def _smoke_test(
    trainer: str, model: Any, sample: pd.DataFrame, *, classifier: bool, features: list[str], label: str
) -> None:
    """The model predicts a few training rows: it is fitted, and reads no column but the declared inputs."""
    try:
        model.predict(sample)
        if classifier:
            model.predict_proba(sample)
    except Exception as exc:  # noqa: BLE001 - a model that cannot predict is the trainer's verdict
        failure = _fit_failure(trainer, exc, features, label)
        if failure.outcome == "raised":
            failure = raised(trainer, PHASE_PREDICT, exc)
        raise failure from None


def _save(trainer: str, model: Any, name: str, path: Path) -> str:
    """Dump ``model`` with joblib (atomically); its SHA-256, or the failure of a model that does not pickle."""
    try:
        return save_model(model, path)
    except OSError:
        path.with_name(path.name + ".tmp").unlink(missing_ok=True)
        raise
    except Exception as exc:  # noqa: BLE001 - pickling errors have many types (PicklingError, TypeError...)
        path.with_name(path.name + ".tmp").unlink(missing_ok=True)
        message = NOT_PICKLABLE(trainer=trainer, estimator=name, error=type(exc).__name__)
        raise TrainerFailure(
            "not_picklable", message, estimator=name, error_type=type(exc).__name__, error_first_line=first_line(exc)
        ) from None
