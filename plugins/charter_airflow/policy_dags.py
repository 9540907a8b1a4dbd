"""The DAGs of every use case in the policies folder: adding a use case is adding its policy file and suites.

One DAG file calls :func:`build_all` (the package ships it as :mod:`charter_airflow.charter_dags`; copy it into
the DAGs folder, or write the two lines it holds). Each policy file of ``[charter] policies_dir`` is validated
with the library's one loader, then its three DAGs are built by :mod:`charter_airflow.dag_factory`.

A broken policy must not take the others down. Airflow records import errors per DAG *file*, and marks
every DAG of a file with an import error as stale, so that none of them can run: raising in the file that
builds the DAGs would stop every use case of the folder. So an invalid policy (bad key, open ``TODO``, a
file named apart from its ``id``) yields, for that use case only:

* an Airflow import error, raised by a second DAG file that builds no DAG (:func:`raise_policy_errors`,
  shipped as :mod:`charter_airflow.charter_policy_errors`): it names each invalid file, key path and reason;
* a DAG ``<file stem>_policy_invalid``, paused, whose description and documentation say the same, and
  whose one task fails with the same message if someone runs it, so the use case is seen in the DAG list;
* an error in the DAG processor's log, with the same lines.

``charter policy validate`` reports the same errors before a file is deployed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from charter_guardrails.core.errors import ConfigError

from charter_airflow.dag_factory import (
    DEFAULT_ARGS,
    build_inference_dag,
    build_model_refresh_dag,
    build_policy_review_dag,
)

__all__ = [
    "INVALID_SUFFIX",
    "InvalidPolicies",
    "PolicyProblem",
    "build_all",
    "invalid_dag_id",
    "policy_problems",
    "raise_policy_errors",
]

log = logging.getLogger(__name__)

#: The suffix of the DAG that stands for an invalid policy file.
INVALID_SUFFIX = "policy_invalid"


class PolicyProblem:
    """Why one policy file builds no DAG: its path and its ``(key path, reason)`` pairs."""

    def __init__(self, path: Path, errors: list[tuple[str, str]]) -> None:
        self.path = path
        self.errors = errors

    def lines(self) -> list[str]:
        return [f"{self.path}: {key or '<file>'}: {reason}" for key, reason in self.errors]


def invalid_dag_id(policy_file: Path) -> str:
    """``<stem>_policy_invalid``, with the characters a DAG id refuses replaced by ``_``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", policy_file.stem)[:200] or "policy"
    return f"{stem}_{INVALID_SUFFIX}"


def policy_problems(files: list[Path]) -> tuple[list[Path], list[PolicyProblem]]:
    """(the valid policy files, the problems of the others), each file validated by the library's loader."""
    from charter_guardrails.core.errors import PolicyError
    from charter_guardrails.core.policy import load_policy

    valid: list[Path] = []
    problems: list[PolicyProblem] = []
    for path in files:
        try:
            policy = load_policy(path)
        except PolicyError as exc:
            problems.append(PolicyProblem(path, list(exc.all_errors)))
            continue
        except ConfigError as exc:
            problems.append(PolicyProblem(path, [("", str(exc))]))
            continue
        if policy.id != path.stem:  # two files cannot declare one id: only one of them can be named <id>.yaml
            problems.append(PolicyProblem(path, [("id", f"declares {policy.id!r}: name the file {policy.id}.yaml")]))
        else:
            valid.append(path)
    return valid, problems


def build_all(namespace: MutableMapping[str, Any], policies_dir: Path | None = None) -> list[str]:
    """Put the DAGs of every valid policy, and one stand-in per invalid one, into ``namespace`` (a module's globals).

    :param policies_dir: the policies folder; the settings' (``[charter] policies_dir``) by default.
    :returns: the ids of the DAGs built.
    """
    from charter_guardrails.core.policy import policy_files

    valid, problems = policy_problems(policy_files(policies_dir))
    built: list[Any] = []
    for path in valid:
        built += [build_policy_review_dag(path), build_model_refresh_dag(path), build_inference_dag(path)]
    for problem in problems:
        log.error("policy file builds no DAG:\n%s", "\n".join(problem.lines()))
        built.append(_invalid_policy_dag(problem))
    for dag in built:
        namespace[dag.dag_id] = dag
    return [dag.dag_id for dag in built]


class InvalidPolicies(ConfigError):
    """The invalid policy files of the folder, each key path and reason on a line."""


def raise_policy_errors(policies_dir: Path | None = None) -> None:
    """Raise :class:`InvalidPolicies` naming every invalid policy file, key path and reason; nothing when all are valid.

    Called by a DAG file that builds no DAG, so that Airflow shows the error in its import errors while the
    DAGs of the valid policies, built by another file, still run.
    """
    from charter_guardrails.core.policy import policy_files

    _, problems = policy_problems(policy_files(policies_dir))
    if problems:
        lines = [line for problem in problems for line in problem.lines()]
        raise InvalidPolicies(
            f"{len(problems)} policy file(s) build no DAG; fix each key, then check with `charter policy validate`:\n"
            + "\n".join(lines)
        )


def _invalid_policy_dag(problem: PolicyProblem) -> Any:
    from airflow.sdk import DAG, task

    message = "\n".join(problem.lines())
    doc = "\n".join(
        [
            f"# The policy file `{problem.path.name}` is invalid",
            "",
            "Its use case has no DAG until the file is fixed. Each key path and its reason:",
            "",
            *(f"- `{key or '<file>'}`: {reason}" for key, reason in problem.errors),
            "",
            f"Check the file with `charter policy validate {problem.path}`.",
        ]
    )
    with DAG(
        dag_id=invalid_dag_id(problem.path),
        description=f"Invalid policy {problem.path.name}: {problem.lines()[0].split(': ', 1)[1]}"[:1000],
        schedule=None,
        catchup=False,
        is_paused_upon_creation=True,
        default_args={**DEFAULT_ARGS, "retries": 0},
        tags=["charter", "governance"],
        doc_md=doc,
    ) as dag:

        @task(task_id="policy_invalid", retries=0)
        def policy_invalid() -> None:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(message)

        policy_invalid()
    return dag
