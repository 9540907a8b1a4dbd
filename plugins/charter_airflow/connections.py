"""Alert destinations resolved by Airflow: a connection id to the library's ``ConnectionInfo``.

Inside a task, ``airflow.sdk.Connection.get`` asks the task SDK, which reads the secrets backends, the
``AIRFLOW_CONN_*`` variables and the metadata database (through the API server); the password and the
extra are masked in the task logs. The library's senders call :func:`airflow_connection` when they send.
"""

from __future__ import annotations

from typing import Any

from charter_guardrails.incidents.connections import ConnectionInfo, ConnectionInvalid, ConnectionNotFound


def airflow_connection(conn_id: str) -> ConnectionInfo:
    """The Airflow connection ``conn_id``; :class:`ConnectionNotFound` when Airflow does not define it."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn: Any = Connection.get(conn_id)
    except AirflowNotFoundException:
        raise ConnectionNotFound(conn_id) from None
    if conn is None:
        raise ConnectionNotFound(conn_id)
    try:
        extra = conn.extra_dejson
    except Exception:  # noqa: BLE001 - never echo the extra, which may hold a secret
        extra = None
    if not isinstance(extra, dict):
        raise ConnectionInvalid(conn_id, "its extra is not a JSON object; write the extra as a JSON object")
    return ConnectionInfo(
        conn_id=conn_id,
        conn_type=conn.conn_type,
        host=conn.host or None,
        schema=conn.schema or None,
        port=int(conn.port) if conn.port else None,
        login=conn.login or None,
        password=conn.password or None,
        extra=dict(extra),
    )
