"""The project's users as roles of Airflow's FAB auth manager, in FAB's own permission model.

Four roles, each FAB's read-only ``Viewer`` permissions (``VIEWER_PERMISSIONS`` of the provider's security
manager) plus what the job needs:

* ``Charte ingénieur de données``: runs DAGs (edits DAGs, creates runs, clears task instances);
* ``Charte responsable sécurité``: acknowledges and resolves incidents in the governance view, which asks to
  edit DAG runs and the use case's DAGs (:mod:`charter_airflow.ui.security`, :mod:`charter_airflow.ui.scope`);
* ``Charte gouvernance``: reads everything and records the charter's attestations, the right to edit the
  configuration (``require_governance``) after the one to edit DAG runs; it edits no DAG, so it acts on no
  incident;
* ``Charte approbateur``: answers the human-in-the-loop approvals (edits ``HITL Detail`` on the DAGs).

A department sharing the Airflow of others gets the same roles limited to its use cases
(:func:`department_role`): FAB's DAG-wide resource ``DAGs`` is replaced by the per-DAG resources
``DAG:<dag_id>`` of the use cases' DAGs, so ``get_authorized_dag_ids`` and the view's scope hold only those.

Run inside the deployment's environment (``airflow-init``), after ``airflow db migrate``::

    python -m charter_airflow.fab_roles                      # the four roles
    python -m charter_airflow.fab_roles --department citizen_requests
                                                              # plus the four, limited to citizen_requests

Needs the ``fab`` extra (``apache-airflow-providers-fab``); the simple auth manager of ``make run`` needs none.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DATA_ENGINEER = "Charte ingénieur de données"
SECURITY_OFFICER = "Charte responsable sécurité"
GOVERNANCE = "Charte gouvernance"
APPROVER = "Charte approbateur"
ROLES = (DATA_ENGINEER, SECURITY_OFFICER, GOVERNANCE, APPROVER)

Permission = tuple[str, str]


def _fab() -> tuple[Any, Any]:
    from airflow.providers.fab.auth_manager.security_manager.override import FabAirflowSecurityManagerOverride
    from airflow.providers.fab.www.security import permissions

    return FabAirflowSecurityManagerOverride, permissions


def role_permissions() -> dict[str, list[Permission]]:
    """Each role's (action, resource) pairs, on every DAG."""
    override, p = _fab()
    viewer: list[Permission] = list(override.VIEWER_PERMISSIONS)
    edit_dags = [(p.ACTION_CAN_EDIT, p.RESOURCE_DAG)]
    extra: dict[str, list[Permission]] = {
        DATA_ENGINEER: [
            *edit_dags,
            (p.ACTION_CAN_CREATE, p.RESOURCE_DAG_RUN),
            (p.ACTION_CAN_CREATE, p.RESOURCE_TASK_INSTANCE),
            (p.ACTION_CAN_EDIT, p.RESOURCE_TASK_INSTANCE),
        ],
        SECURITY_OFFICER: [*edit_dags, (p.ACTION_CAN_EDIT, p.RESOURCE_DAG_RUN)],
        GOVERNANCE: [
            (p.ACTION_CAN_EDIT, p.RESOURCE_DAG_RUN),
            (p.ACTION_CAN_READ, p.RESOURCE_CONFIG),
            (p.ACTION_CAN_EDIT, p.RESOURCE_CONFIG),
            (p.ACTION_CAN_READ, p.RESOURCE_AUDIT_LOG),
        ],
        APPROVER: [*edit_dags, (p.ACTION_CAN_EDIT, p.RESOURCE_HITL_DETAIL)],
    }
    return {role: viewer + extra[role] for role in ROLES}


def department_role(role: str, department: str) -> str:
    return f"{role} ({department})"


def is_department_role(name: str) -> bool:
    """True for a role :func:`department_role` names: one of the four, limited to a department."""
    return any(name.startswith(f"{role} (") and name.endswith(")") for role in ROLES)


def limited_to(permissions: Iterable[Permission], use_cases: Sequence[str]) -> list[Permission]:
    """``permissions`` with every DAG-wide one (``DAGs``) replaced by the same action on each DAG of
    ``use_cases`` (``DAG:<dag_id>``)."""
    from charter_airflow.ui.scope import dag_ids_of

    _, p = _fab()
    limited: list[Permission] = []
    for action, resource in permissions:
        if resource != p.RESOURCE_DAG or action == p.ACTION_CAN_ACCESS_MENU:
            limited.append((action, resource))
            continue
        limited += [
            (action, p.resource_name(dag_id, p.RESOURCE_DAG))
            for use_case in use_cases
            for dag_id in sorted(dag_ids_of(use_case))
        ]
    return limited


def role_configs(departments: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """The roles as FAB's ``bulk_sync_roles`` takes them: the four, then each department's four."""
    base = role_permissions()
    configs = [{"role": role, "perms": perms} for role, perms in base.items()]
    for department, use_cases in departments.items():
        configs += [
            {"role": department_role(role, department), "perms": limited_to(perms, use_cases)}
            for role, perms in base.items()
        ]
    return configs


def sync_roles(security_manager: Any, departments: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """Create the roles (or add their missing permissions) with FAB's security manager; the roles' names."""
    configs = role_configs(departments or {})
    security_manager.bulk_sync_roles(configs)
    return [str(config["role"]) for config in configs]


def _departments(values: Sequence[str]) -> dict[str, list[str]]:
    """``NAME=use_case[,use_case…]`` or a bare use case (the department is named after it)."""
    departments: dict[str, list[str]] = {}
    for value in values:
        name, _, cases = value.partition("=")
        use_cases = [c.strip() for c in (cases or name).split(",") if c.strip()]
        if not name.strip() or not use_cases:
            raise SystemExit(
                f"department {value!r} (--department or CHARTER_DEPARTMENTS): write NAME=use_case[,use_case]"
                " or a use case id"
            )
        departments[name.strip()] = use_cases
    return departments


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m charter_airflow.fab_roles", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--department",
        action="append",
        default=[],
        help="NAME=use_case[,use_case]: the four roles limited to these use cases (repeatable; also read from"
        " CHARTER_DEPARTMENTS, the same values separated by ';')",
    )
    args = parser.parse_args(argv)
    # CHARTER_DEPARTMENTS: the same NAME=use_case[,use_case] values, separated by ";" (airflow-init passes it on)
    declared = [v for v in os.environ.get("CHARTER_DEPARTMENTS", "").split(";") if v.strip()]
    departments = _departments([*declared, *args.department])
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        names = sync_roles(appbuilder.sm, departments)
    sys.stdout.write("".join(f"role {name}: ok\n" for name in names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
