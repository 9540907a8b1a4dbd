"""``charter hash`` and ``charter verify`` for a dataset in object storage (``uri: s3://bucket/key``).

``charter hash --dataset UC.DS`` stages the dataset's object (or the object named instead of FILE, in the same
store) under the data folder, hashes the staged copy as a file, and signs a manifest that also records the
object's URI, version id and ETag. ``charter verify`` stages it again and compares both: the bytes, as for a
file, and the store's version of them (:mod:`charter_guardrails.checks.integrity.object_verification`). The
credentials come from ``AIRFLOW_CONN_<CONN_ID>`` of the dataset's ``conn_id``; no message carries them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from charter_guardrails.core.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from charter_guardrails.core.policy import UseCasePolicy
    from charter_guardrails.readers.objects import ObjectInfo


def _staged(policy: UseCasePolicy, dataset: str, delivery: str | None) -> tuple[Path, ObjectInfo]:
    from charter_guardrails.checks.integrity.object_verification import stage_delivery
    from charter_guardrails.core.settings import get_settings

    spec = policy.dataset(dataset)
    if not spec.is_object:
        raise ConfigError(
            f"{policy.id}.{dataset} reads files of the data folder, not {delivery}: give FILE as a path, or give "
            "the dataset the uri of an object in that store"
        )
    return stage_delivery(spec, delivery, get_settings().data_dir)


def hash_object_command(args: argparse.Namespace, policy: UseCasePolicy, dataset: str) -> int:
    """Register a signed manifest of the dataset's object (its bytes, its URI, version id and ETag)."""
    from charter_guardrails.checks.integrity.manifest import build_manifest, sign_manifest
    from charter_guardrails.checks.integrity.object_verification import OBJECT_KEY
    from charter_guardrails.cli.integrity import run_id_of
    from charter_guardrails.cli.integrity_tables import store_and_report
    from charter_guardrails.core.keys import load_signing_key

    if args.rows_per_leaf is not None:
        raise ConfigError("--rows-per-leaf is for a table; an object's leaves are --chunk-size bytes")
    key = load_signing_key()  # before the download: a missing key should not cost a full pass
    run_id = run_id_of(args)
    staged, info = _staged(policy, dataset, args.file)
    document = build_manifest(
        staged, use_case=policy.id, dataset=dataset, run_id=run_id, algorithm=args.algorithm, chunk_size=args.chunk_size
    )
    document[OBJECT_KEY] = info.facts()
    signed = sign_manifest(document, key)
    facts = {"object": info.uri, "version_id": info.version_id, "size_bytes": document["size_bytes"]}

    def line(doc: dict[str, Any]) -> str:
        rows = doc["row_count"] if doc["row_count"] is not None else "?"
        version = f", version {info.version_id}" if info.version_id else ""
        return f"{doc['dataset']}: {info.uri}{version}, {doc['size_bytes']} bytes, {rows} rows"

    return store_and_report(args, signed, policy, dataset, run_id, facts, line)


def verify_object_command(args: argparse.Namespace, use_case: str, dataset: str) -> int:
    """Stage the object again and verify it against the dataset's active manifest; record and print the verdict."""
    from charter_guardrails.checks.integrity.light_ledger import light_ledger_session
    from charter_guardrails.checks.integrity.manifest_registry import active_manifest
    from charter_guardrails.checks.integrity.object_verification import check_identity
    from charter_guardrails.checks.integrity.verification import ManifestSnapshot, verify_file
    from charter_guardrails.cli.integrity import report_verification
    from charter_guardrails.core.policy import load_policy

    staged, info = _staged(load_policy(use_case), dataset, args.file)
    with light_ledger_session() as session:
        row = active_manifest(session, use_case, dataset)
        manifest = ManifestSnapshot.of(row) if row is not None else None
    verification = verify_file(staged, manifest, use_case=use_case, dataset=dataset)
    verification = check_identity(verification, manifest.document if manifest else None, info)
    return report_verification(args, verification, manifest)
