"""What every guardrail task shares: secrets from Airflow, the policy and the delivered file of a run,
and the four steps run check → persist → log → raise on failure.

A failing *verdict* raises ``AirflowFailException`` so that bad data is not retried.
Infrastructure errors (ledger unreachable, disk full) raise normally and Airflow retries them.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from charter_guardrails.core.policy import UseCasePolicy
    from charter_guardrails.core.policy_models import Dataset
    from charter_guardrails.core.results import CheckResult
    from charter_guardrails.incidents.incident import IncidentDraft

log = logging.getLogger(__name__)

#: Airflow Variables holding the project's keys, by environment variable: the current name first, then the name
#: read before (deprecated). A current name carries a word of Airflow's sensitive list (``secret``), so that
#: Airflow hides the value in the UI, the REST API and the task logs; the old names matched none.
SECRET_VARIABLES = {
    "CHARTER_SIGNING_KEY": ("charter_signing_key_secret", "charter_signing_key"),
    "CHARTER_PSEUDONYMISATION_KEY": ("charter_pseudonymisation_key_secret", "charter_pseudonymisation_key"),
}


def configure_from_airflow() -> None:
    """Fill the library's environment from Airflow when it is not set already, and mask every key it holds.

    The ledger URL comes from the connection ``charter_ledger`` and the keys from the Variables
    ``charter_signing_key_secret`` and ``charter_pseudonymisation_key_secret`` (a secrets backend serves both;
    the old names ``charter_signing_key`` and ``charter_pseudonymisation_key`` are still read, with a
    deprecation warning). Every key, read here or given by the environment, is passed to Airflow's
    ``mask_secret``: a task log that prints one shows ``***``. Values are never logged.
    """
    if not os.environ.get("CHARTER_LEDGER_URL"):
        try:
            from airflow.sdk import BaseHook

            conn = BaseHook.get_connection("charter_ledger")
            os.environ["CHARTER_LEDGER_URL"] = conn.get_uri()
        except Exception:  # noqa: BLE001, S110 - no connection configured: the embedded default applies
            pass
    for env_name, names in SECRET_VARIABLES.items():
        value = os.environ.get(env_name) or _secret_variable(*names)
        if value:
            os.environ[env_name] = value
            _mask(value)


def _secret_variable(name: str, old_name: str) -> str | None:
    """The Variable ``name``, else the deprecated ``old_name`` (with a warning that says how to move)."""
    value = _variable(name)
    if value:
        return value
    value = _variable(old_name)
    if value:
        message = (
            f"the Airflow Variable {old_name!r} is deprecated: Airflow does not mask it (its name has no sensitive "
            f"word). Rename it {name!r} (airflow variables set {name} ..., then delete {old_name})."
        )
        warnings.warn(message, DeprecationWarning, stacklevel=3)
        log.warning(message)
    return value


def _variable(name: str) -> str | None:
    try:
        from airflow.sdk import Variable

        value = Variable.get(name, default=None)
    except Exception:  # noqa: BLE001 - no variable: the key files apply
        return None
    return str(value) if value else None


def _mask(value: str) -> None:
    """Ask Airflow to mask ``value`` and, for a PEM key, each line of its body: a log line may hold one line alone."""
    from airflow.sdk.log import mask_secret

    lines = [line.strip() for line in value.splitlines() if line.strip() and not line.startswith("-----")]
    mask_secret([value, *lines])


def run_ids(context: Mapping[str, Any]) -> tuple[str, str]:
    """(dag_id, run_id) of the running task."""
    dag_run = context.get("dag_run")
    dag_id = getattr(dag_run, "dag_id", None) or context["dag"].dag_id
    run_id = getattr(dag_run, "run_id", None) or context["run_id"]
    return str(dag_id), str(run_id)


def policy_file_for(use_case: str) -> Path:
    """The policy file of ``use_case`` in the policies folder."""
    from charter_guardrails.core.settings import get_settings

    return get_settings().policies_dir / f"{use_case}.yaml"


def load_policy(source: Path | str) -> UseCasePolicy:
    """The validated policy a task runs under, by the library's one loader, once Airflow's secrets are in place.

    :param source: a policy file (a :class:`~pathlib.Path`), or a use-case id.
    """
    from charter_guardrails.core.policy import load_policy as load

    configure_from_airflow()
    return load(source)


def delivered_file(
    dataset: Dataset,
    context: Mapping[str, Any],
    *,
    file_param: str | None = None,
    path: str | None = None,
    use_case: str | None = None,
) -> Path:
    """The file a run checks: ``path``, else the run's ``params[file_param]``, else the batch the asset event
    that triggered the run names (:func:`batch_of_asset_events`), else the policy's file.

    A requested file is relative to the data folder (or absolute inside it); one that leaves it is refused.
    When the file is gone and this run of ``use_case`` quarantined it (:func:`quarantine_path`), a retried or
    cleared task reads it there: the same bytes, checked again with the same outcome.
    """
    source = Path(dataset.delivery(path or requested_delivery(context, file_param)))
    if use_case and not source.exists():
        moved = quarantine_path(use_case, run_ids(context)[1], source.name)
        if moved.is_file():
            return moved
    return source


def quarantine_path(use_case: str, run_id: str, name: str) -> Path:
    """Where a run's quarantined batch lies: ``<data>/<use_case>/quarantine/<run>__<name>``."""
    return _run_file("quarantine", use_case, run_id, name)


def accepted_path(use_case: str, run_id: str, name: str) -> Path:
    """Where a run's accepted batch lies, its predictions beside it: ``<data>/<use_case>/accepted/<run>__<name>``.
    Named by the run, so that a batch delivered again under the same name does not replace the copy (and the
    predictions) an earlier run passed on."""
    return _run_file("accepted", use_case, run_id, name)


def _run_file(folder: str, use_case: str, run_id: str, name: str) -> Path:
    from charter_guardrails.core.settings import get_settings

    return get_settings().data_dir / use_case / folder / f"{run_id.replace(':', '_')}__{name}"


def requested_delivery(context: Mapping[str, Any], file_param: str | None) -> str | None:
    """The delivery a run asks for: its ``params[file_param]``, else the batch its asset event names."""
    requested = (context.get("params") or {}).get(file_param) if file_param else None
    requested = requested or batch_of_asset_events(context)
    return str(requested) if requested else None


#: The key of an asset event's ``extra`` that names the batch to check (``POST /api/v2/assets/events``).
BATCH_EXTRA = "batch"


def batch_of_asset_events(context: Mapping[str, Any]) -> str | None:
    """The batch named by the asset events that triggered the run (``extra["batch"]``: a path relative to the
    data folder, or a ``file://`` URI inside it); ``None`` for a run no event with a batch triggered.

    Airflow gathers the events posted since the previous run into the next one. A run is about one batch: when
    its events name several, it refuses them all, naming them, rather than check one and let the others pass.
    """
    from urllib.parse import unquote, urlparse

    from charter_guardrails.core.errors import ConfigError

    events = context.get("triggering_asset_events") or {}
    named: list[str] = []
    for asset in events:
        for event in events[asset]:
            batch = (getattr(event, "extra", None) or {}).get(BATCH_EXTRA)
            if isinstance(batch, str) and batch.strip():
                named.append(unquote(urlparse(batch).path) if batch.startswith("file://") else batch.strip())
    batches = list(dict.fromkeys(named))
    if len(batches) > 1:
        raise ConfigError(
            f"this run was triggered by asset events naming {len(batches)} batches ({', '.join(batches)}): Airflow "
            "gathered events posted before the previous run ended. Each batch needs its own run: trigger the DAG "
            "once per batch with the batch_file parameter"
        )
    return batches[0] if batches else None


def safe_run_id(run_id: str) -> str:
    """A run id as a file or key name: letters, digits, ``-``, ``_`` and ``.`` (``manual__2026-…T10_00_00``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)


def work_dir(policy: UseCasePolicy, context: Mapping[str, Any]) -> Path:
    """The run's scratch folder for intermediate files (pseudonymised and minimised frames, the candidate)."""
    from charter_guardrails.core.settings import get_settings

    _, run_id = run_ids(context)
    path = get_settings().home / "work" / policy.id / safe_run_id(run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def persist_and_gate(
    result: CheckResult,
    *,
    policy: UseCasePolicy,
    context: Mapping[str, Any],
    incident: IncidentDraft | None = None,
    extra: Callable[[Any, Any, Any], None] | None = None,
    fail_on: tuple[str, ...] = ("fail",),
) -> dict[str, Any]:
    """Persist ``result`` (and an incident, in the same transaction), log it, raise on failure.

    A result whose report could not be written (``evidence["report_error"]``) is recorded all the
    same, then :class:`~charter_guardrails.core.results.ReportWriteError` is raised (retried by Airflow).

    :param extra: called as ``extra(session, check_run, result_row)`` inside the transaction, to
        write rows that belong with the result (PII findings, manifests...).
    :return: the JSON-safe result, for XCom. Only the CheckResult goes to XCom.
    """
    from airflow.sdk.exceptions import AirflowFailException
    from charter_guardrails.core.errors import ReportWriteError
    from charter_guardrails.core.results import REPORT_ERROR
    from charter_guardrails.incidents.incident import raise_incident
    from charter_guardrails.ledger.store import get_or_create_check_run, ledger_session, record_check_result

    configure_from_airflow()
    dag_id, run_id = run_ids(context)
    incident_id = None
    with ledger_session() as session:
        check_run = get_or_create_check_run(session, use_case=policy.id, dag_id=dag_id, run_id=run_id)
        row = record_check_result(session, check_run, result)
        if extra is not None:
            extra(session, check_run, row)
        if incident is not None:
            created_incident, _ = raise_incident(session, policy, incident)
            incident_id = created_incident.id
    log.info(
        "%s on %s: %s (%s)%s",
        result.check,
        result.dataset or policy.id,
        result.verdict.value.upper(),
        result.summary,
        f"; incident #{incident_id}" if incident_id else "",
    )
    report_error = result.evidence.get(REPORT_ERROR)
    if result.verdict.value in fail_on:
        raise AirflowFailException(
            f"guardrail {result.check} failed for {policy.id}/{result.dataset or '-'}: {result.summary}"
            + (f" (incident #{incident_id})" if incident_id else "")
            + (f"; also, {report_error}" if report_error else "")
        )
    if report_error:  # infrastructure: Airflow retries once the folder is fixed; the verdict is already in the ledger
        raise ReportWriteError(
            f"guardrail {result.check} on {policy.id}/{result.dataset or '-'}: {report_error}. The verdict "
            f"({result.verdict.value}) is recorded in the ledger; free space in the reports folder "
            "(CHARTER_REPORTS_DIR) or make it writable, then clear the task."
        )
    return result.to_json_dict()
