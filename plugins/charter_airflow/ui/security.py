"""Who may see and do what in the governance view.

A plugin's FastAPI app is *not* authenticated by the api-server (apache/airflow#72655), so every
route of ours depends on :func:`require_reader`, set once on the app so that a route added later
cannot forget it. Identity comes from Airflow's own ``get_user``: the ``Authorization: Bearer``
header (API clients, token from ``POST /auth/token``) or the UI's ``_token`` JWT cookie (pages
opened from the Airflow UI). Permissions are asked of the configured auth manager:

* reading the view = reading DAG runs (``is_authorized_dag(GET, RUN)``): the ledger describes runs;
* acknowledging or resolving an incident = editing DAG runs (``is_authorized_dag(PUT, RUN)``):
  with the simple auth manager a ``viewer`` reads, a ``user``, ``op`` or ``admin`` acts;
* recording an attestation of the charter = the governance role (:func:`require_governance`):
  editing DAG runs and editing the configuration (``is_authorized_configuration(PUT)``).

CSRF. The JWT cookie is sent by the browser on its own, so a state-changing request that relies
on it must prove it comes from one of our pages. Our forms carry a synchronizer token:
``<issued-at>.<HMAC-SHA256(api secret, "charter-csrf|user|issued-at")>``, bound to the user and
valid for :data:`CSRF_MAX_AGE`. A forged page cannot read it (same-origin policy) and cannot
compute it (no secret); the cookie is also ``SameSite=Lax`` (set by Airflow), so a cross-site POST
carries no identity at all, and a present ``Origin`` header must be our own. A request whose
identity came from an ``Authorization: Bearer`` token needs no CSRF token: a browser never adds
that header by itself. What decides is where the identity came from, recorded by
:func:`authenticated_user` from the same credentials Airflow's ``get_user`` reads, not whether some
``Authorization`` header is present: a request that carries one Airflow ignores (an empty token,
another scheme) and is authenticated by the cookie is checked like any cookie request. The token is
not bound to the JWT value because Airflow refreshes the cookie during a session
(JWTRefreshMiddleware), which would void open forms.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from typing import Annotated, Any

from airflow.api_fastapi.core_api.security import bearer_scheme, get_user
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials

#: A form stays valid for eight hours: a working day with the page left open.
CSRF_MAX_AGE = 8 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
#: Where :func:`authenticated_user` records the source of the request's identity (``"bearer"`` or ``"cookie"``).
IDENTITY_SOURCE = "charter_identity_source"


def _auth_manager() -> Any:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def _authorized_on_runs(user: Any, method: str) -> bool:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    return bool(_auth_manager().is_authorized_dag(method=method, access_entity=DagAccessEntity.RUN, user=user))


def authenticated_user(
    request: Request,
    user: Annotated[Any, Depends(get_user)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Any:
    """Airflow's user of the request, remembering where its identity came from.

    ``get_user`` takes the identity from the ``Authorization: Bearer`` credentials that ``bearer_scheme``
    parses when there are any, else from the JWT cookie; ``bearer`` is that same parsed value (FastAPI
    resolves a dependency once per request), so the source recorded here is the one Airflow used.
    """
    setattr(request.state, IDENTITY_SOURCE, "bearer" if bearer is not None else "cookie")
    return user


def require_reader(user: Annotated[Any, Depends(authenticated_user)]) -> Any:
    """An authenticated Airflow user who may read DAG runs; 401 without identity, 403 without the right."""
    if not _authorized_on_runs(user, "GET"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Accès refusé : il faut pouvoir lire les exécutions de DAG.")
    return user


def require_operator(user: Annotated[Any, Depends(authenticated_user)]) -> Any:
    """An authenticated user who may change DAG runs: acknowledges and resolves incidents."""
    if not _authorized_on_runs(user, "PUT"):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "Action refusée : il faut pouvoir modifier les exécutions de DAG."
        )
    return user


def _governs(user: Any) -> bool:
    return bool(_auth_manager().is_authorized_configuration(method="PUT", user=user))


def require_governance(user: Annotated[Any, Depends(require_operator)]) -> Any:
    """An operator who belongs to the governance role: records the attestations of the charter report.

    The auth manager has no notion of a charter committee, so the governance role is the right to
    change the installation's configuration, ``is_authorized_configuration(method="PUT")``: the people
    who govern the platform. With the simple auth manager that is ``op`` and ``admin`` (``viewer`` and
    ``user`` are not); with the FAB auth manager, "can edit on Configurations", which only ``Admin``
    holds by default. ``is_authorized_custom_view`` is not used: the simple auth manager grants it to
    every role, ``viewer`` included. An attestation changes the ledger like the other actions, so the
    operator's right (:func:`require_operator`) is asked first.
    """
    if not _governs(user):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Action réservée à la gouvernance : il faut pouvoir modifier la configuration d'Airflow.",
        )
    return user


ReaderDep = Annotated[Any, Depends(require_reader)]
OperatorDep = Annotated[Any, Depends(require_operator)]
GovernanceDep = Annotated[Any, Depends(require_governance)]


def can_act(user: Any) -> bool:
    """Whether to show the action forms (the routes check again)."""
    return _authorized_on_runs(user, "PUT")


def can_govern(user: Any) -> bool:
    """Whether to show the governance forms to a user who may act (the route checks again)."""
    return _governs(user)


def role_names(user: Any) -> frozenset[str]:
    """The Airflow roles of ``user``, case-folded: the simple auth manager's one ``role``, the FAB auth manager's
    ``roles`` (each with a ``name``). An auth manager that exposes neither gives none."""
    names: set[str] = set()
    role = getattr(user, "role", None)
    if isinstance(role, str):
        names.add(role)
    for item in getattr(user, "roles", None) or ():
        name = getattr(item, "name", item)
        if isinstance(name, str):
            names.add(name)
    return frozenset(name.casefold() for name in names)


def may_stop_models(user: Any, policy_roles: Iterable[str]) -> bool:
    """Whether an operator may suspend and resume a production model (the kill switch): the right to create
    Asset events (``is_authorized_asset(POST)``: ``op`` and ``admin`` with the simple auth manager), since a
    suspension emits one, or one of ``policy_roles`` (the policy's ``approval.kill_switch_roles``)."""
    if _auth_manager().is_authorized_asset(method="POST", user=user):
        return True
    return bool(role_names(user) & {name.casefold() for name in policy_roles})


def _secret() -> bytes:
    from airflow.configuration import conf

    secret = conf.get("api", "secret_key", fallback=None) or conf.get("api_auth", "jwt_secret", fallback=None)
    if not secret:
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR, "[api] secret_key is not configured; CSRF tokens cannot be issued"
        )
    return hashlib.sha256(b"charter-csrf|" + secret.encode()).digest()


def _username(user: Any) -> str:
    return str(user.get_name())


def _sign(username: str, issued_at: int) -> str:
    return hmac.new(_secret(), f"{username}|{issued_at}".encode(), hashlib.sha256).hexdigest()


def issue_csrf_token(user: Any, now: float | None = None) -> str:
    issued_at = int(now if now is not None else time.time())
    return f"{issued_at}.{_sign(_username(user), issued_at)}"


def csrf_token_valid(user: Any, token: str | None, now: float | None = None) -> bool:
    if not token or "." not in token:
        return False
    issued, _, signature = token.partition(".")
    if not issued.isdigit():
        return False
    age = (now if now is not None else time.time()) - int(issued)
    if age < -60 or age > CSRF_MAX_AGE:
        return False
    return hmac.compare_digest(signature, _sign(_username(user), int(issued)))


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    # "null" is what a sandboxed iframe (the task-instance tab) sends: the token decides then.
    if origin is None or origin == "null":
        return True
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1].rstrip("/") == host


def check_csrf(request: Request, user: Any, token: str | None) -> None:
    """Refuse a state change without a valid token or from another origin, unless its identity came from a
    bearer token. Fails closed: a request whose identity source is unknown is checked."""
    if getattr(request.state, IDENTITY_SOURCE, None) == "bearer":
        return
    if not _same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Requête refusée : origine différente (CSRF).")
    if not csrf_token_valid(user, token or request.headers.get(CSRF_HEADER)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "Requête refusée : jeton CSRF absent ou expiré. Rechargez la page."
        )


def actor_name(user: Any) -> str:
    return _username(user)
