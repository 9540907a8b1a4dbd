"""Start a real ``airflow api-server`` with the Charte IA plugin, on loopback, for the UI tests.

The simple auth manager reads its users from ``[core] simple_auth_manager_users`` and their
passwords from a JSON file (``[core] simple_auth_manager_passwords_file``); it only generates a
password for a user missing from that file, so writing the file first makes them deterministic.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
USERS = {"admin": ("admin", "admin-charte-2026"), "viewer": ("viewer", "viewer-charte-2026")}
RESERVED_PORTS = {8793, 8080, 8794}


@dataclass(frozen=True)
class ApiServer:
    base_url: str
    airflow_home: Path
    log_path: Path

    def token(self, username: str) -> str:
        """A JWT from the real token endpoint of the simple auth manager."""
        response = httpx.post(
            f"{self.base_url}/auth/token", json={"username": username, "password": USERS[username][1]}, timeout=30
        )
        assert response.status_code == 201, response.text
        return str(response.json()["access_token"])


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in RESERVED_PORTS:
            return port


def server_env(airflow_home: Path, charter_env: dict[str, str], port: int) -> dict[str, str]:
    passwords = airflow_home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({name: password for name, (_, password) in USERS.items()}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(charter_env)
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{name}:{role}" for name, (role, _) in USERS.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API__SECRET_KEY": "charte-ia-tests-secret-key",
            "AIRFLOW__API_AUTH__JWT_SECRET": "charte-ia-tests-jwt-secret",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    return env


def migrate_airflow(env: dict[str, str]) -> None:
    airflow = Path(sys.executable).parent / "airflow"
    proc = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _own_session_dying_with_parent() -> None:
    """In the child: a process group of its own (stopped as a whole), and SIGTERM when pytest dies.

    Without the death signal, a pytest killed by a timeout would leave the api-server running,
    since it no longer shares pytest's process group.
    """
    os.setsid()
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:  # not Linux/glibc: the finally block below still stops the server
        pass


@contextmanager
def api_server(
    airflow_home: Path,
    charter_env: dict[str, str],
    *,
    migrate: bool = True,
    timeout: float = 240,
    airflow_env: dict[str, str] | None = None,
) -> Iterator[ApiServer]:
    """Run ``airflow api-server`` until the block exits; always stopped (its whole process group).
    ``airflow_env`` overrides the server's Airflow settings (another auth manager, another database)."""
    port = free_port()
    env = {**server_env(airflow_home, charter_env, port), **(airflow_env or {})}
    if migrate:
        migrate_airflow(env)
    airflow = Path(sys.executable).parent / "airflow"
    log_path = airflow_home / "api-server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(airflow), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_own_session_dying_with_parent,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"api-server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-4000:]}"
                )
            try:
                if httpx.get(f"{base_url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"api-server not up after {timeout} s:\n{log_path.read_text(errors='replace')[-4000:]}"
                )
            time.sleep(0.5)
        yield ApiServer(base_url=base_url, airflow_home=airflow_home, log_path=log_path)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def app_routes() -> list[tuple[str, str, Any]]:
    """(method, path, route) of every route of the Charte IA app, read from the app object."""
    from charter_airflow.ui.app import create_app
    from fastapi.routing import APIRoute

    app = create_app()
    # Any other kind of route (a Mount, static files, /docs) would escape the app-level dependency.
    assert all(isinstance(r, APIRoute) for r in app.routes), [r for r in app.routes if not isinstance(r, APIRoute)]
    return [
        (method, route.path, route)
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in sorted(route.methods)
    ]


def fill_path(path: str, values: dict[str, Any], query: dict[str, dict[str, str]] | None = None) -> str:
    """A route path with its parameters filled in (``{name}`` and ``{name:path}``), plus the query a route requires."""
    filled = re.sub(r"\{(\w+)(?::path)?\}", lambda m: str(values[m.group(1)]), path)
    extra = (query or {}).get(path)
    return filled + ("?" + str(httpx.QueryParams(extra)) if extra else "")


def browser_login(browser: Any, base_url: str, user: str = "admin") -> Any:
    """A Chromium page logged into Airflow through its own login form (the UI then holds the JWT cookie)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="fr-FR")
    page.set_default_timeout(30_000)
    page.goto(f"{base_url}/auth/login")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(USERS[user][1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/" not in url)
    return page
