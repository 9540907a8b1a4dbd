"""The "Charte IA" Airflow plugin: the governance view inside the Airflow 3 UI.

* ``fastapi_apps``: the governance app, mounted by the api-server at ``/charte``;
* ``external_views``: "Charte IA" in the navigation (an iframe on ``/charte/``) and a
  "Rapport charte" tab on every task instance, which opens the report of the task's run.

Airflow imports this file in every process that loads plugins (scheduler, DAG processor, workers);
``plugins/.airflowignore`` keeps it the only file the plugin loader imports. So it stays light: the
app is built on its first request, and nothing here imports FastAPI, pandas, Great Expectations or Presidio.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

#: Where the api-server mounts the governance app.
URL_PREFIX = "/charte"

_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class LazyGovernanceApp:
    """An ASGI app that builds :func:`charter_airflow.ui.app.create_app` on its first request.

    The real app needs FastAPI and Airflow's API security module (a second or two to import);
    only the api-server ever serves a request, so only it pays for them.
    """

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    def get_app(self) -> Any:
        if self._app is None:
            with self._lock:  # the first requests may arrive together on uvicorn's thread pool
                if self._app is None:
                    from charter_airflow.ui.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: MutableMapping[str, Any], receive: _Receive, send: _Send) -> None:
        await self.get_app()(scope, receive, send)


governance_app = LazyGovernanceApp()


class CharterGovernancePlugin(AirflowPlugin):
    """Registers the governance view with the Airflow 3 api-server and UI."""

    name = "charter_governance"
    # AirflowPlugin declares these as class attributes; Airflow reads them from the class.
    fastapi_apps = [{"app": governance_app, "url_prefix": URL_PREFIX, "name": "Charte IA"}]  # noqa: RUF012
    external_views = [  # noqa: RUF012
        {
            "name": "Charte IA",
            "href": f"{URL_PREFIX}/",
            "url_route": "charte-ia",
            "destination": "nav",
            "nav_top_level": True,
        },
        {
            # The UI substitutes {DAG_ID}, {RUN_ID} and {TASK_ID} for the task instance shown.
            "name": "Rapport charte",
            "href": f"{URL_PREFIX}/ti?dag_id={{DAG_ID}}&run_id={{RUN_ID}}&task_id={{TASK_ID}}",
            "url_route": "charte-ia-rapport",
            "destination": "task_instance",
        },
    ]
