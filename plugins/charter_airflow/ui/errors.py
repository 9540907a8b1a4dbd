"""The view's error responses: one page (or one JSON body) per error, with the pages' security headers.

Every error (400, 401, 403, 404, 409, 422, 500, 503) carries the same Content-Security-Policy and headers as
the other pages (:data:`~charter_airflow.ui.templating.PAGE_HEADERS`); a browser gets the error page, an API
client (``/api/...`` or no ``text/html`` in ``Accept``) a ``{"detail": ...}`` body. What an error says is
written for the person reading it: what was wrong and what to do, never a host, a database user or name, or a
server path. The cause (an unreachable ledger's address, a traceback) goes to the api-server's log only.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from charter_guardrails.core.errors import ConfigError, LedgerNotMigrated, LedgerUnavailable
from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from charter_airflow.ui.templating import PAGE_HEADERS, base_path, environment

log = logging.getLogger(__name__)

LEDGER_UNAVAILABLE = (
    "Le registre de la charte est injoignable pour le moment. Réessayez dans quelques minutes ; si cela dure, "
    "l'administrateur trouvera la cause dans le journal de l'api-server."
)
LEDGER_NOT_MIGRATED = (
    "Le schéma du registre de la charte n'est pas à jour. L'administrateur doit lancer `charter ledger migrate`, "
    "puis vous pourrez recharger la page."
)
INTERNAL_ERROR = (
    "Erreur interne de la vue Charte IA. Réessayez ; si elle se répète, transmettez l'heure de l'erreur à "
    "l'administrateur, qui en trouvera la cause dans le journal de l'api-server."
)
#: What a parameter of the wrong type should hold, by pydantic error type.
_EXPECTED = {
    "int_parsing": "un nombre entier",
    "int_type": "un nombre entier",
    "missing": "une valeur (paramètre obligatoire)",
    "date_from_datetime_parsing": "une date AAAA-MM-JJ",
    "date_parsing": "une date AAAA-MM-JJ",
}


def period(debut: str | None, fin: str | None) -> tuple[datetime, datetime]:
    """The [start, end) period of a page's ``debut`` and ``fin``; a bad date is a 422 that says what to type."""
    from charter_guardrails.reporting.governance import parse_period

    try:
        return parse_period(debut, fin)
    except (ConfigError, ValueError, OverflowError):
        shown = ", ".join(f"{name} « {value[:40]} »" for name, value in (("debut", debut), ("fin", fin)) if value)
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Période invalide ({shown}) : saisissez des dates au format AAAA-MM-JJ (par exemple 2026-01-31), "
            "le début avant la fin, la fin avant 9999-12-31.",
        ) from None


def _wants_html(request: Request) -> bool:
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    return not path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def error_response(request: Request, code: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    """The error page (or JSON body) of ``code``, with the pages' security headers."""
    all_headers = {**PAGE_HEADERS, **(headers or {})}
    if not _wants_html(request):
        return JSONResponse({"detail": detail}, status_code=code, headers=all_headers)
    html = (
        environment()
        .get_template("error.html")
        .render(
            base=base_path(request),
            status=code,
            detail=detail,
            login="/auth/login" if code == status.HTTP_401_UNAUTHORIZED else None,
            user=None,
            can_act=False,
            embedded=False,
        )
    )
    return HTMLResponse(html, status_code=code, headers=all_headers)


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    return error_response(request, exc.status_code, exc.detail, getattr(exc, "headers", None))


async def validation_error(request: Request, exc: RequestValidationError) -> Response:
    """A parameter of the wrong type (``/executions/abc``): which one, and what it should hold."""
    parts = []
    for error in exc.errors():
        name = str(error.get("loc", ("?",))[-1])
        parts.append(f"« {name} » doit être {_EXPECTED.get(str(error.get('type')), 'une valeur valide')}")
    detail = "Paramètre invalide : " + "; ".join(parts) + ". Corrigez l'adresse ou le formulaire."
    return error_response(request, status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


async def ledger_down(request: Request, exc: Exception) -> Response:
    """503 without the ledger's address: the log has it (its password already hidden)."""
    log.warning("governance view: ledger unavailable: %s", exc)
    detail = LEDGER_NOT_MIGRATED if isinstance(exc, LedgerNotMigrated) else LEDGER_UNAVAILABLE
    return error_response(request, status.HTTP_503_SERVICE_UNAVAILABLE, detail, {"Retry-After": "60"})


async def internal_error(request: Request, exc: Exception) -> Response:
    log.error("governance view: %s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(request, status.HTTP_500_INTERNAL_SERVER_ERROR, INTERNAL_ERROR)


def install(app: Any) -> None:
    """Every error of ``app`` through :func:`error_response`."""
    app.exception_handler(StarletteHTTPException)(http_error)
    app.exception_handler(RequestValidationError)(validation_error)
    app.exception_handler(LedgerNotMigrated)(ledger_down)
    app.exception_handler(LedgerUnavailable)(ledger_down)
    app.exception_handler(Exception)(internal_error)
