"""The governance view: pages and JSON API on the ledger, mounted at ``/charte`` in the api-server.

Every route depends on :func:`~charter_airflow.ui.security.require_reader` and on
:func:`~charter_airflow.ui.scope.bind_scope`, which limits every ledger read of the request to the use cases
the reader may see (both set on the app and on each router, so no route can be added without them); actions
also need :func:`require_operator` and a CSRF token. The routes live in four routers: :mod:`.pages` (HTML
pages), :mod:`.actions` (POST), :mod:`.api` (JSON and downloads) and :mod:`.dpo` (the DPO's documents,
governance role only); this module assembles them, and :mod:`.errors` renders every error.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from charter_airflow.ui import actions, api, dpo, errors, pages
from charter_airflow.ui.queries import configure_ledger_from_airflow
from charter_airflow.ui.scope import bind_scope
from charter_airflow.ui.security import require_reader


def create_app() -> FastAPI:
    """The view's app: the three routers behind the reader check, and its error pages."""
    configure_ledger_from_airflow()
    # No /docs or /openapi.json: every route is a page or an API call that needs a user.
    app = FastAPI(
        title="Charte IA",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(require_reader), Depends(bind_scope)],
    )
    errors.install(app)
    for router in (pages.router, actions.router, api.router, dpo.router):
        app.include_router(router)
    return app
