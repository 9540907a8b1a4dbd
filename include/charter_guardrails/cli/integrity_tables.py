"""``charter hash --dataset UC.DS`` and ``charter verify --dataset UC.DS`` without a FILE: a ``format: sql``
dataset's table, in the database of the settings' ``data_url`` (:mod:`charter_guardrails.checks.integrity.
table_verification`). The manifest goes in the ledger's ``manifests`` table as a file's does; the verdict, the
verification row and the incident are recorded as a file's are (:func:`.integrity.report_verification`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from charter_guardrails.cli.main import EXIT_OK, emit
from charter_guardrails.core.errors import ConfigError, DatasetReadError, InfrastructureError

if TYPE_CHECKING:
    from charter_guardrails.checks.integrity.manifest import SignedManifest
    from charter_guardrails.core.policy import UseCasePolicy


@contextmanager
def _exit_clearly() -> Iterator[None]:
    """A missing table or an unreachable database: exit 2 with the error's own words (they name the table and
    the database without its credentials)."""
    try:
        yield
    except (DatasetReadError, InfrastructureError) as exc:
        raise ConfigError(str(exc)) from None


def hash_table_command(args: argparse.Namespace, policy: UseCasePolicy, dataset: str) -> int:
    """Register a signed manifest of the dataset's table."""
    from charter_guardrails.checks.integrity.manifest import sign_manifest
    from charter_guardrails.checks.integrity.table_hashing import DEFAULT_ROWS_PER_LEAF
    from charter_guardrails.checks.integrity.table_verification import register_dataset_table, table_of
    from charter_guardrails.cli.integrity import run_id_of
    from charter_guardrails.core.keys import load_signing_key

    table_of(policy, dataset)  # a file dataset is refused before anything else
    if args.chunk_size is not None:
        raise ConfigError("--chunk-size is for a file; a table's leaves are --rows-per-leaf rows")
    if args.rows_per_leaf is not None and args.rows_per_leaf < 1:
        raise ConfigError(f"--rows-per-leaf must be at least 1, not {args.rows_per_leaf}")
    key = load_signing_key()  # before hashing: a missing key should not cost a full pass
    run_id = run_id_of(args)
    with _exit_clearly():
        document = register_dataset_table(
            policy,
            dataset,
            run_id=run_id,
            rows_per_leaf=args.rows_per_leaf or DEFAULT_ROWS_PER_LEAF,
            algorithm=args.algorithm,
        )
    signed = sign_manifest(document, key)
    facts = {
        "table": document["table"],
        "key_columns": document["key_columns"],
        "rows_per_leaf": document["chunk_size"],
    }

    def line(doc: dict[str, Any]) -> str:
        return (
            f"{doc['dataset']}: table {doc['table']}, {doc['row_count']} rows in key order "
            f"({', '.join(doc['key_columns'])}), {doc['leaf_count']} key ranges"
        )

    return store_and_report(args, signed, policy, dataset, run_id, facts, line)


def store_and_report(
    args: argparse.Namespace,
    signed: SignedManifest,
    policy: UseCasePolicy,
    dataset: str,
    run_id: str | None,
    facts: dict[str, Any],
    line: Callable[[dict[str, Any]], str],
) -> int:
    """Store a signed manifest (a file's or a table's) and print what was registered: ``facts`` of its kind beside
    the common ones, and ``line`` (what was hashed) in the sentence."""
    from charter_guardrails.checks.integrity.manifest_registry import store_manifest
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        manifest_id = store_manifest(session, signed, policy=policy, dataset=dataset).id
    doc = signed.document
    data = {
        "manifest_id": manifest_id,
        "dataset": doc["dataset"],
        **facts,
        "row_count": doc["row_count"],
        "merkle_root": doc["merkle_root"],
        "leaves": doc["leaf_count"],
        "algorithm": doc["algorithm"],
        "schema_fingerprint": doc["schema_fingerprint"],
        "key_id": signed.key_id,
        "run_id": run_id,
    }
    if args.quiet and not args.json:
        return EXIT_OK
    emit(
        args,
        data,
        lambda: (
            f"registered manifest #{manifest_id} for {line(doc)}, root {doc['merkle_root']} "
            f"(signed by key {signed.key_id})"
        ),
    )
    return EXIT_OK


def verify_table_command(args: argparse.Namespace, use_case: str, dataset: str) -> int:
    """Verify the dataset's table against its active manifest; record and print the verdict as for a file."""
    from charter_guardrails.checks.integrity.light_ledger import light_ledger_session
    from charter_guardrails.checks.integrity.manifest_registry import active_manifest
    from charter_guardrails.checks.integrity.table_verification import table_of, verify_table
    from charter_guardrails.checks.integrity.verification import ManifestSnapshot
    from charter_guardrails.cli.integrity import report_verification
    from charter_guardrails.core.policy import load_policy

    table = table_of(load_policy(use_case), dataset)
    with light_ledger_session() as session:
        row = active_manifest(session, use_case, dataset)
        manifest = ManifestSnapshot.of(row) if row is not None else None
    with _exit_clearly():
        verification = verify_table(table, manifest, use_case=use_case, dataset=dataset)
    return report_verification(args, verification, manifest)
