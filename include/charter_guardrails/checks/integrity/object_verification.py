"""Integrity of an object in storage: the manifest of its bytes, and the version the store gave them.

An object is staged under the data folder (:func:`charter_guardrails.readers.objects.stage`), and its staged copy
is hashed and compared as a file is (same manifests, same Merkle trees, same localisation of a changed chunk).
The store's own identity of the object is compared too: the manifest of an object records its URI, version id
and ETag (``object``), and an object written again since it was registered is a mismatch even when it holds the
same bytes, because the store's history then has a version nobody registered. The pin of an intact object
carries its version id, so later steps and the accepted batch name the version that was verified.

No credential appears here: a :class:`~charter_guardrails.readers.objects.ObjectInfo` holds the URI (scheme,
bucket, key), the size, the version id and the ETag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.integrity.manifest import Outcome
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.readers.objects import Located, ObjectInfo, locate, stage

if TYPE_CHECKING:
    from charter_guardrails.checks.integrity.outcome import Verification
    from charter_guardrails.core.policy_models import Dataset
    from charter_guardrails.incidents.connections import ConnectionInfo

#: The manifest key that records the object a manifest was computed from.
OBJECT_KEY = "object"
#: ``(uri, conn_id) -> location``: the Airflow adapter's uses ``ObjectStoragePath``; :func:`env_locator` is the
#: command line's.
Locator = Callable[[str, "str | None"], Located]


def env_locator(uri: str, conn_id: str | None) -> Located:
    """The object with the credentials of ``AIRFLOW_CONN_<CONN_ID>`` (the command line, outside Airflow)."""
    from charter_guardrails.incidents.connections import env_connection

    return locate(uri, dataset_connection(conn_id, env_connection))


def dataset_connection(conn_id: str | None, resolve: Callable[[str], ConnectionInfo]) -> ConnectionInfo | None:
    """The connection ``conn_id`` of an object dataset (None: the store's default credentials)."""
    from charter_guardrails.incidents.connections import ConnectionNotFound, env_variable

    if conn_id is None:
        return None
    try:
        return resolve(conn_id)
    except ConnectionNotFound:
        raise ConfigError(
            f"the connection {conn_id!r} of an object dataset is not defined: create it with `airflow connections "
            f"add {conn_id} --conn-type aws --conn-login ACCESS_KEY --conn-password SECRET --conn-extra "
            f'\'{{"endpoint_url": "..."}}\'`, or set {env_variable(conn_id)} for the command line'
        ) from None


def stage_delivery(
    spec: Dataset, delivery: str | None, data_dir: Path, locator: Locator = env_locator
) -> tuple[Path, ObjectInfo]:
    """Stage the object a run of ``spec`` reads (``delivery``, else the dataset's uri); its copy and what the store
    said of it."""
    uri = spec.object_uri(delivery)
    target = spec.delivery(uri, data_dir)
    return target, stage(locator(uri, spec.conn_id), uri, target)


def object_facts(document: dict[str, Any]) -> dict[str, Any] | None:
    """What a manifest recorded of its object (None: a file's manifest)."""
    facts = document.get(OBJECT_KEY)
    return facts if isinstance(facts, dict) else None


def check_identity(verification: Verification, document: dict[str, Any] | None, info: ObjectInfo) -> Verification:
    """An intact staged copy whose object was written again since its manifest (another version id, or another
    ETag for the same URI) becomes ``data_changed``; otherwise the verification is returned with the object named."""
    facts = {**verification.facts, "object": info.facts()}
    verification = replace(verification, facts=facts)  # ``path`` stays the staged copy: the pin names it
    registered = object_facts(document or {})
    if not verification.intact or registered is None or registered.get("uri") != info.uri:
        return verification
    changed = [
        f"{label} {registered.get(key)!s} registered, {getattr(info, key)!s} now"
        for key, label in (("version_id", "version id"), ("etag", "ETag"))
        if registered.get(key) and getattr(info, key) and registered.get(key) != getattr(info, key)
    ]
    if not changed:
        return verification
    summary = (
        f"{verification.use_case}.{verification.dataset}: {info.uri} was written again since manifest "
        f"#{verification.manifest_id} ({'; '.join(changed)}): register the new version with `charter hash`, or "
        "restore the registered one, then re-run"
    )
    return replace(
        verification,
        outcome=Outcome.DATA_CHANGED,
        summary=summary,
        facts={**facts, "registered_object": registered},
    )
