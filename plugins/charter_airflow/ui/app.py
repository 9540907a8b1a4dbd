"""The governance view: pages and JSON API on the ledger, mounted at ``/charte`` in the api-server.

Every route depends on :func:`~charter_airflow.ui.security.require_reader` (set on the app and on
each router, so no route can be added without it); actions also need :func:`require_operator` and a
CSRF token. The routes live in three routers: :mod:`.pages` (HTML pages), :mod:`.actions` (POST) and
:mod:`.api` (JSON and downloads); this module assembles them and renders errors.
"""

from __future__ import annotations

from charter_guardrails.core.errors import LedgerNotMigrated, LedgerUnavailable
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from charter_airflow.ui import actions, api, pages
from charter_airflow.ui.queries import configure_ledger_from_airflow
from charter_airflow.ui.security import require_reader
from charter_airflow.ui.templating import base_path, environment

#: Error statuses shown as a page to a browser; others (and every API error) stay JSON.
_HTML_ERRORS = (401, 403, 404, 409)


def _wants_html(request: Request) -> bool:
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    return not path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    headers = getattr(exc, "headers", None)
    if _wants_html(request) and exc.status_code in _HTML_ERRORS:
        html = (
            environment()
            .get_template("error.html")
            .render(
                base=base_path(request),
                status=exc.status_code,
                detail=exc.detail,
                login="/auth/login" if exc.status_code == 401 else None,
                user=None,
                can_act=False,
                embedded=False,
            )
        )
        return HTMLResponse(html, status_code=exc.status_code, headers=headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def _ledger_down(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=503)


def create_app() -> FastAPI:
    """The view's app: the three routers behind the reader check, and its error pages."""
    configure_ledger_from_airflow()
    # No /docs or /openapi.json: every route is a page or an API call that needs a user.
    app = FastAPI(
        title="Charte IA", docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(require_reader)]
    )
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(LedgerNotMigrated)(_ledger_down)
    app.exception_handler(LedgerUnavailable)(_ledger_down)
    for router in (pages.router, actions.router, api.router):
        app.include_router(router)
    return app
