"""The deployment's Airflow users under FAB, from the same ``user:role`` list and passwords file as before.

The compose deployment names its users as the simple auth manager did: ``AIRFLOW_USERS`` lists ``user:role``
pairs, and the ``airflow_users`` secret is a JSON object of their passwords (``{"admin": "…"}``). Under FAB
the roles are the project's (:mod:`charter_airflow.fab_roles`) and FAB's own ``Admin`` and ``Viewer``, each
named by a short key (:data:`ROLE_KEYS`). ``user:role@department`` gives one of the project's roles limited to a
department's use cases (the department declared to ``fab_roles`` with ``--department`` or
``CHARTER_DEPARTMENTS``). Run inside the deployment's environment (``airflow-init``), after
``airflow db migrate`` and ``python -m charter_airflow.fab_roles``::

    python -m charter_airflow.fab_users --users "admin:admin,karim.haddad:approbateur" \\
        --passwords-file /run/secrets/airflow_users

Each user is created with its role, or, when it exists, given its role if it lacks it (other roles given since,
a department's for instance, are kept) and its password from the file if it changed: the file is the source of
the passwords, as it was for the simple auth manager. Passwords travel from the file to FAB's security manager,
never through a command line, a log or an error message. Needs the ``fab`` extra.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from charter_airflow.fab_roles import (
    APPROVER,
    DATA_ENGINEER,
    GOVERNANCE,
    SECURITY_OFFICER,
    department_role,
    is_department_role,
)

#: The role keys of ``user:role``: the project's four roles and FAB's ``Admin`` and ``Viewer``.
ROLE_KEYS: dict[str, str] = {
    "admin": "Admin",
    "viewer": "Viewer",
    "ingenieur": DATA_ENGINEER,
    "rssi": SECURITY_OFFICER,
    "gouvernance": GOVERNANCE,
    "approbateur": APPROVER,
}


class UsersError(ValueError):
    """The users' list or their passwords' file is wrong; the message says what to fix."""


def parse_users(spec: str) -> dict[str, str]:
    """``user:role[@department][,user:role…]`` as {user name: FAB role name}."""
    users: dict[str, str] = {}
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        name, sep, role = (s.strip() for s in entry.partition(":"))
        key, at, department = (s.strip() for s in role.partition("@"))
        if not sep or not name or not key or (at and not department):
            raise UsersError(
                f"users list: {entry!r} is not user:role or user:role@department;"
                " write for instance karim.haddad:approbateur"
            )
        if key not in ROLE_KEYS:
            raise UsersError(
                f"users list: role {key!r} of {name!r} is not one of {sorted(ROLE_KEYS)} "
                "(the simple auth manager's op and user have no FAB equivalent: pick the project's role)"
            )
        if department and key in ("admin", "viewer"):
            raise UsersError(
                f"users list: {entry!r}: FAB's {ROLE_KEYS[key]} role cannot be limited to a department;"
                " give one of the project's roles (ingenieur, rssi, gouvernance, approbateur)"
            )
        if name.lower() in {known.lower() for known in users}:
            raise UsersError(f"users list: {name!r} is listed twice (FAB user names ignore case); list it once")
        users[name] = department_role(ROLE_KEYS[key], department) if department else ROLE_KEYS[key]
    if not users:
        raise UsersError("users list is empty: list the deployment's users as user:role (AIRFLOW_USERS)")
    return users


def read_passwords(path: Path, users: Sequence[str]) -> dict[str, str]:
    """The passwords of ``users`` from the JSON object in ``path``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsersError(f"cannot read the passwords file {path}: {exc.strerror}; create it (deploy/secrets)") from None
    except ValueError:
        raise UsersError(f'the passwords file {path} is not JSON: write {{"user": "password", …}}') from None
    if not isinstance(data, dict):
        raise UsersError(f'the passwords file {path} is not a JSON object: write {{"user": "password", …}}')
    missing = [name for name in users if not isinstance(data.get(name), str) or not data[name]]
    if missing:
        raise UsersError(f"the passwords file {path} has no password for {missing}: add one for each user")
    return {name: str(data[name]) for name in users}


def sync_users(security_manager: Any, users: Mapping[str, str], passwords: Mapping[str, str]) -> list[str]:
    """Create or update each user with FAB's security manager; one line per user (no password in it)."""
    lines: list[str] = []
    for name, role_name in users.items():
        role = security_manager.find_role(role_name)
        if role is None:
            fix = "run python -m charter_airflow.fab_roles"
            if is_department_role(role_name):
                fix = "declare the department in CHARTER_DEPARTMENTS (NAME=use_case[,use_case]), then " + fix
            raise UsersError(f"role {role_name!r} of {name!r} does not exist: {fix}")
        user = security_manager.find_user(username=name)
        if user is None:
            security_manager.add_user(name, name, "", f"{name}@localhost", role, passwords[name])
            lines.append(f"user {name}: created ({role_name})")
            continue
        changes = []
        if role not in user.roles:
            user.roles.append(role)
            security_manager.update_user(user)
            changes.append(f"role {role_name} added")
        if not security_manager.check_password(name, passwords[name]):
            security_manager.reset_password(user.id, passwords[name])
            changes.append("password from the file")
        lines.append(f"user {name}: {', '.join(changes) or 'unchanged'}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m charter_airflow.fab_users", description=__doc__.split("\n")[0])
    parser.add_argument("--users", required=True, help=f"user:role[@department][,…]; roles: {', '.join(ROLE_KEYS)}")
    parser.add_argument("--passwords-file", required=True, type=Path, help='JSON object {"user": "password", …}')
    args = parser.parse_args(argv)
    try:
        users = parse_users(args.users)
        passwords = read_passwords(args.passwords_file, list(users))
    except UsersError as exc:
        sys.stderr.write(f"charter_airflow.fab_users: {exc}\n")
        return 2
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        try:
            lines = sync_users(appbuilder.sm, users, passwords)
        except UsersError as exc:
            sys.stderr.write(f"charter_airflow.fab_users: {exc}\n")
            return 2
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
