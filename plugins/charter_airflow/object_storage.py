"""Objects in storage through Airflow's ``ObjectStoragePath``, with the credentials of an Airflow connection.

An object dataset (``uri: s3://bucket/key``, ``conn_id``) is read through ``airflow.sdk.ObjectStoragePath``. For
``s3://`` the filesystem attached to the connection is the library's (``readers.objects.s3_filesystem``: s3fs,
version-aware, the connection's login and password as access key and secret, its extra's ``endpoint_url`` and
``region_name``), so that no provider package is needed and the command line and the DAGs read the store alike;
a deployment that attached its own filesystem for that connection first keeps it (Airflow caches one store per
protocol and connection in a process). ``file://`` URIs use Airflow's local filesystem.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from charter_guardrails.core.policy_models import Dataset
    from charter_guardrails.readers.objects import Located, ObjectInfo


def airflow_locator(uri: str, conn_id: str | None) -> Located:
    """The object ``uri`` as an ``ObjectStoragePath`` on the store attached for ``conn_id``."""
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from charter_guardrails.checks.integrity.object_verification import dataset_connection
    from charter_guardrails.readers.objects import parse_uri, s3_filesystem

    from charter_airflow.connections import airflow_connection

    scheme, _, _ = parse_uri(uri)
    if scheme == "s3":
        attach(protocol="s3", conn_id=conn_id, fs=s3_filesystem(dataset_connection(conn_id, airflow_connection)))
    path: Any = ObjectStoragePath(uri, conn_id=conn_id)
    return path  # type: ignore[no-any-return]


def stage_for_run(spec: Dataset, delivery: str | None) -> tuple[Path, ObjectInfo]:
    """Stage the object a run of ``spec`` reads under the data folder: its staged copy and its version."""
    from charter_guardrails.checks.integrity.object_verification import stage_delivery
    from charter_guardrails.core.settings import get_settings

    return stage_delivery(spec, delivery, get_settings().data_dir, airflow_locator)
