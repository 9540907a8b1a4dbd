"""The deployment's FAB users (``charter_airflow.fab_users``): the ``user:role`` list, the passwords file, and
``airflow-init``'s run of it on a real FAB database, twice (idempotent; a changed password follows the file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from charter_airflow.fab_roles import APPROVER, DATA_ENGINEER, GOVERNANCE, SECURITY_OFFICER, department_role
from charter_airflow.fab_users import UsersError, parse_users, read_passwords

BIN = Path(sys.executable).parent


def test_the_role_keys_name_the_project_s_roles_and_fab_s() -> None:
    users = parse_users(" admin:admin, karim.haddad:approbateur,rssi:rssi,,ing:ingenieur,gouv:gouvernance,v:viewer")
    assert users == {
        "admin": "Admin",
        "karim.haddad": APPROVER,
        "rssi": SECURITY_OFFICER,
        "ing": DATA_ENGINEER,
        "gouv": GOVERNANCE,
        "v": "Viewer",
    }


def test_a_user_limited_to_a_department_gets_the_department_s_role() -> None:
    users = parse_users("rssi.citoyens:rssi@citoyens, ing:ingenieur @ dechets,gouv:gouvernance")
    assert users == {
        "rssi.citoyens": department_role(SECURITY_OFFICER, "citoyens"),
        "ing": department_role(DATA_ENGINEER, "dechets"),
        "gouv": GOVERNANCE,
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("reviewer:op", r"role 'op' of 'reviewer' is not one of \['admin', 'approbateur'"),
        ("karim.haddad", "is not user:role"),
        (":admin", "is not user:role"),
        ("karim:rssi@", "is not user:role or user:role@department"),
        ("boss:admin@citoyens", "FAB's Admin role cannot be limited to a department"),
        ("Karim:admin,karim:viewer", "listed twice"),
        (" , ", "users list is empty"),
    ],
)
def test_a_wrong_users_list_says_what_to_write(spec: str, message: str) -> None:
    with pytest.raises(UsersError, match=message):
        parse_users(spec)


def test_the_passwords_file_must_hold_each_user(tmp_path: Path) -> None:
    path = tmp_path / "airflow_users.json"
    path.write_text(json.dumps({"admin": "pw-admin-secret", "karim.haddad": ""}), encoding="utf-8")
    with pytest.raises(UsersError, match=r"no password for \['karim.haddad'\]") as caught:
        read_passwords(path, ["admin", "karim.haddad"])
    assert "pw-admin-secret" not in str(caught.value)
    assert read_passwords(path, ["admin"]) == {"admin": "pw-admin-secret"}
    path.write_text("admin: pw", encoding="utf-8")
    with pytest.raises(UsersError, match="is not JSON"):
        read_passwords(path, ["admin"])
    with pytest.raises(UsersError, match="cannot read the passwords file"):
        read_passwords(tmp_path / "missing.json", ["admin"])


CHECK = """
import json, sys
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

expected = json.loads(sys.argv[1])
with get_application_builder() as appbuilder:
    sm = appbuilder.sm
    out = {}
    for name, password in expected.items():
        user = sm.find_user(username=name)
        out[name] = {"roles": sorted(r.name for r in user.roles), "password_ok": sm.check_password(name, password)}
    print(json.dumps(out))
"""
ADD_ROLE = """
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

with get_application_builder() as appbuilder:
    user = appbuilder.sm.find_user(username="karim.haddad")
    user.roles.append(appbuilder.sm.find_role("Viewer"))
    appbuilder.sm.update_user(user)
"""


def _lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The helper's report (Airflow's start-up warnings go to stdout too)."""
    return [line for line in proc.stdout.splitlines() if line.startswith("user ")]


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_airflow_init_creates_then_updates_the_users_on_fab(tmp_path: Path) -> None:
    home = tmp_path / "airflow"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__AUTH_MANAGER": "charter_airflow.auth.CharterFabAuthManager",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__SECRET_KEY": "charte-fab-users-test",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    passwords = tmp_path / "airflow_users.json"
    first = {"admin": "pw-admin-1-secret", "karim.haddad": "pw-karim-1-secret"}
    passwords.write_text(json.dumps(first), encoding="utf-8")
    users = ["--users", "admin:admin,karim.haddad:approbateur", "--passwords-file", str(passwords)]
    _run([str(BIN / "airflow"), "db", "migrate"], env)
    # a department's user before its department is declared: refused, with what to do
    officer = ["--users", "rssi.citoyens:rssi@citoyens", "--passwords-file", str(passwords)]
    passwords.write_text(json.dumps({**first, "rssi.citoyens": "pw-rssi-1-secret"}), encoding="utf-8")
    _run([sys.executable, "-m", "charter_airflow.fab_roles"], env)
    refused = subprocess.run(
        [sys.executable, "-m", "charter_airflow.fab_users", *officer], env=env, capture_output=True, text=True
    )
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "declare the department in CHARTER_DEPARTMENTS" in refused.stderr, refused.stderr[-2000:]
    departments = {"CHARTER_DEPARTMENTS": "citoyens=citizen_requests"}
    _run([sys.executable, "-m", "charter_airflow.fab_roles"], env | departments)
    created = _run([sys.executable, "-m", "charter_airflow.fab_users", *users], env)
    assert _lines(created) == [
        "user admin: created (Admin)",
        f"user karim.haddad: created ({APPROVER})",
    ]
    limited = _run([sys.executable, "-m", "charter_airflow.fab_users", *officer], env)
    assert _lines(limited) == [f"user rssi.citoyens: created ({department_role(SECURITY_OFFICER, 'citoyens')})"]
    officer_state = _run([sys.executable, "-c", CHECK, json.dumps({"rssi.citoyens": "pw-rssi-1-secret"})], env)
    assert json.loads(officer_state.stdout.splitlines()[-1]) == {
        "rssi.citoyens": {"roles": [department_role(SECURITY_OFFICER, "citoyens")], "password_ok": True}
    }
    state = json.loads(_run([sys.executable, "-c", CHECK, json.dumps(first)], env).stdout.splitlines()[-1])
    assert state == {
        "admin": {"roles": ["Admin"], "password_ok": True},
        "karim.haddad": {"roles": [APPROVER], "password_ok": True},
    }
    # a role given since is kept; a password changed in the secret file follows it; nothing else changes
    _run([sys.executable, "-c", ADD_ROLE], env)
    second = {**first, "karim.haddad": "pw-karim-2-secret"}
    passwords.write_text(json.dumps(second), encoding="utf-8")
    updated = _run([sys.executable, "-m", "charter_airflow.fab_users", *users], env)
    assert _lines(updated) == ["user admin: unchanged", "user karim.haddad: password from the file"]
    state = json.loads(_run([sys.executable, "-c", CHECK, json.dumps(second)], env).stdout.splitlines()[-1])
    assert state["karim.haddad"] == {"roles": sorted([APPROVER, "Viewer"]), "password_ok": True}
    assert state["admin"]["password_ok"] is True
    for proc in (created, updated):
        assert "secret" not in proc.stdout + proc.stderr, "a password was printed"
