"""A small client for the Airflow 3 public REST API (``/api/v2``), authenticated as one named user.

Approvals go through the same HITL API the Airflow UI uses:
``PATCH .../taskInstances/{task_id}/{map_index}/hitlDetails``, with the token of a named user so that the
responder is recorded as that user, not "Anonymous".
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

TERMINAL_STATES = {"success", "failed"}
#: A HITL task waits in ``awaiting_input`` (Airflow 3.3+) or ``deferred`` (earlier versions).
WAITING_STATES = {"awaiting_input", "deferred"}
#: Seconds to let the scheduler process the executor's report of a parked HITL task (heartbeat is 2 s here).
HITL_SETTLE_SECONDS = 12


class AirflowRestError(RuntimeError):
    """The Airflow REST API answered with an error or did not answer in time."""


#: How many times a request answered 500 "Database error" (a lock wait that timed out) is sent.
DATABASE_ERROR_RETRIES = 5


class AirflowRestClient:
    """A small client for the Airflow 3 public API (``/api/v2``), authenticated as one user."""

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 30.0) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.username = username
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        response = self._http.post("/auth/token", json={"username": username, "password": password})
        if response.status_code not in (200, 201):
            raise AirflowRestError(f"login as {username} failed: HTTP {response.status_code}")
        self._http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        # On the SQLite metadata database the scheduler, the dag-processor and the api-server write in turn;
        # on a busy machine the api-server's wait for the lock can time out, and it answers 500 "Database error"
        # with its transaction rolled back. That request is sent again; any other error is the caller's.
        for _ in range(DATABASE_ERROR_RETRIES):
            response = self._http.request(method, "/api/v2" + path, **kwargs)
            if not (response.status_code == 500 and "Database error" in response.text):
                break
            time.sleep(1)
        if response.status_code >= 400:
            raise AirflowRestError(f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the dag-processor has parsed ``dag_id``, then unpause it."""
        deadline = time.monotonic() + timeout
        while True:
            response = self._http.get(f"/api/v2/dags/{dag_id}")
            if response.status_code == 200:
                self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
                return
            if time.monotonic() > deadline:
                raise AirflowRestError(
                    f"DAG {dag_id} was not parsed within {timeout:.0f} s (HTTP {response.status_code})"
                )
            time.sleep(1)

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        body = {"logical_date": None, "conf": dict(conf or {})}
        return str(self._call("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def run_ids(self, dag_id: str) -> list[str]:
        """The ids of the DAG's runs, oldest first (a run triggered from the CLI or the UI, too)."""
        data = self._call("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "run_after", "limit": 100})
        return [str(run["dag_run_id"]) for run in data["dag_runs"]]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self._call("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        data = self._call(
            "GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances", params={"limit": 100}
        )
        return list(data["task_instances"])

    def task_state(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str | None:
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
        data = self._call("GET", path if map_index < 0 else f"{path}/{map_index}")
        return data.get("state")

    def pending_hitl(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        data = self._call("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/hitlDetails")
        return [d for d in data["hitl_details"] if not d.get("response_received")]

    def wait_for_hitl(self, dag_id: str, run_id: str, task_id: str, timeout: float = 900) -> dict[str, Any]:
        """Wait until ``task_id`` asks for a human answer; fail early if the run ends without asking."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for detail in self.pending_hitl(dag_id, run_id):
                # The form exists a moment before the task is parked; an answer given in between is
                # recorded but never resumes the task (Airflow 3.3), so wait for the parked state.
                if (
                    detail["task_instance"]["task_id"] == task_id
                    and self.task_state(dag_id, run_id, task_id) in WAITING_STATES
                ):
                    # The executor reports the parked process's exit a few seconds later; an answer that
                    # resumes the task before the scheduler has seen that report can be failed by it as a
                    # stale event. Let one report cycle pass, then check the task still waits.
                    time.sleep(HITL_SETTLE_SECONDS)
                    if self.task_state(dag_id, run_id, task_id) in WAITING_STATES:
                        return detail
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_STATES:
                raise AirflowRestError(f"{dag_id} run {run_id} ended {state} before {task_id} asked for a human answer")
            time.sleep(2)
        raise AirflowRestError(f"{task_id} of {dag_id} did not ask for an answer within {timeout:.0f} s")

    def answer_hitl(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        option: str,
        params_input: Mapping[str, Any] | None = None,
        map_index: int = -1,
    ) -> dict[str, Any]:
        body = {"chosen_options": [option], "params_input": dict(params_input or {})}
        return dict(
            self._call(
                "PATCH",
                f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/{map_index}/hitlDetails",
                json=body,
            )
        )

    def _xcom_path(self, dag_id: str, run_id: str, task_id: str, key: str) -> str:
        return f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/xcomEntries/{quote(key)}"

    def get_xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """The value of one XCom entry, as stored (JSON values decoded)."""
        value = self._call("GET", self._xcom_path(dag_id, run_id, task_id, key))["value"]
        return json.loads(value) if isinstance(value, str) else value

    def set_xcom(self, dag_id: str, run_id: str, task_id: str, value: Any, key: str = "return_value") -> None:
        """Rewrite one XCom entry, as any user allowed to edit the DAG's task instances can."""
        self._call("PATCH", self._xcom_path(dag_id, run_id, task_id, key), json={"value": value, "map_index": -1})

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_STATES:
                return state
            time.sleep(2)
        raise AirflowRestError(f"{dag_id} run {run_id} did not finish within {timeout:.0f} s")

    def asset_id(self, uri: str) -> int:
        """The id of the Asset whose URI is ``uri`` (known once a DAG naming it has been parsed)."""
        assets = self._call("GET", "/assets", params={"uri_pattern": uri, "limit": 100})["assets"]
        for asset in assets:
            if asset["uri"] == uri:
                return int(asset["id"])
        raise AirflowRestError(f"no asset {uri}: is a DAG that names it parsed?")

    def post_asset_event(self, uri: str, extra: Mapping[str, Any]) -> dict[str, Any]:
        """Record an event of the Asset ``uri``, as an upstream system announces a delivery; its ``extra``."""
        return dict(self._call("POST", "/assets/events", json={"asset_id": self.asset_id(uri), "extra": dict(extra)}))

    def asset_events(self, uri: str) -> list[dict[str, Any]]:
        """The events of the Asset ``uri``, oldest first."""
        params = {"asset_id": self.asset_id(uri), "order_by": "timestamp", "limit": 100}
        return list(self._call("GET", "/assets/events", params=params)["asset_events"])
