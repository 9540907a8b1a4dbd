"""``charter hash`` and ``charter verify``.

``charter incidents`` and ``charter alerts`` are in :mod:`.integrity_incidents`; both commands without a FILE, on a
``format: sql`` dataset's table, are in :mod:`.integrity_tables`.

``charter verify`` starts hashing the file before it imports the ledger, so that the start-up
of SQLAlchemy overlaps the hashing on the other cores; nothing on that path imports pandas,
Great Expectations or Presidio.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from charter_guardrails.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_json_flag, emit, message_in
from charter_guardrails.core.errors import ConfigError

MIB = 1024 * 1024


def _chunk_size(text: str) -> int:
    """``8M``, ``512K`` or a number of bytes."""
    units = {"k": 1024, "m": MIB, "g": 1024 * MIB}
    value = text.strip().lower().removesuffix("ib").removesuffix("b")
    try:
        if value and value[-1] in units:
            return int(float(value[:-1]) * units[value[-1]])
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 8M, 512K, 1048576)") from None


def _file_or_uri(text: str) -> Path | str:
    """A local path, or an object URI kept as text (a ``Path`` would fold its ``//``)."""
    return text if "://" in text else Path(text)


def _dataset_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        type=_file_or_uri,
        metavar="FILE",
        nargs="?",
        help="the dataset file, or a directory of Parquet files, or an object (s3://bucket/key) of an object "
        "dataset's store (none for a format: sql dataset, its table, or an object dataset, its uri)",
    )
    parser.add_argument(
        "--dataset",
        required=True,
        metavar="ID",
        help="USE_CASE.DATASET (e.g. citizen_requests.training), or DATASET with --use-case",
    )
    parser.add_argument("--use-case", metavar="UC", help="the use case, when --dataset is not dotted")
    parser.add_argument("--run-id", help="the run to record this under (default: cli:<UTC time>)")
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="print nothing unless something is wrong (the exit code says it all)"
    )


def register(subparsers: Any) -> None:
    hash_ = subparsers.add_parser(
        "hash", help="register a signed Merkle manifest of a dataset file, or of a format: sql dataset's table"
    )
    _dataset_args(hash_)
    hash_.add_argument(
        "--chunk-size",
        type=_chunk_size,
        default=None,
        help="bytes per Merkle leaf (default: 8M, or less for files under 256M so that they get about 32 leaves)",
    )
    hash_.add_argument(
        "--rows-per-leaf",
        type=int,
        default=None,
        metavar="N",
        help="a table's rows per Merkle leaf: a change is localised to a key range of about N rows (default 10000)",
    )
    hash_.add_argument("--algorithm", default="sha256", choices=["sha256", "sha512", "blake2b"])
    add_json_flag(hash_)
    hash_.set_defaults(handler=_hash, exit_promptly=True)

    verify = subparsers.add_parser(
        "verify",
        help="check a dataset file (or a format: sql dataset's table) against its signed manifest "
        "(exit 0 intact, 1 mismatch: an incident is raised, 2 usage)",
    )
    _dataset_args(verify)
    verify.add_argument(
        "--no-record", action="store_true", help="only verify (public key only); write nothing to the ledger"
    )
    add_json_flag(verify)
    verify.set_defaults(handler=_verify, exit_promptly=True)


def run_id_of(args: argparse.Namespace) -> str:
    return args.run_id or f"cli:{datetime.now(UTC).isoformat(timespec='microseconds')}"


def _hash(args: argparse.Namespace) -> int:
    from charter_guardrails.checks.integrity.manifest import build_manifest, sign_manifest
    from charter_guardrails.checks.integrity.manifest_registry import parse_dataset_ref
    from charter_guardrails.cli.integrity_tables import hash_table_command, store_and_report
    from charter_guardrails.core.keys import load_signing_key
    from charter_guardrails.core.policy import load_policy

    use_case, dataset = parse_dataset_ref(args.dataset, args.use_case)
    policy = load_policy(use_case)
    spec = policy.dataset(dataset)  # declared? (clear error otherwise)
    if isinstance(args.file, str) or (args.file is None and spec.is_object):
        from charter_guardrails.cli.integrity_objects import hash_object_command

        return hash_object_command(args, policy, dataset)
    if args.file is None:
        return hash_table_command(args, policy, dataset)
    if args.rows_per_leaf is not None:
        raise ConfigError("--rows-per-leaf is for a table; a file's leaves are --chunk-size bytes")
    key = load_signing_key()  # before hashing: a missing key should not cost a full pass
    run_id = run_id_of(args)
    document = build_manifest(
        args.file,
        use_case=use_case,
        dataset=dataset,
        run_id=run_id,
        algorithm=args.algorithm,
        chunk_size=args.chunk_size,
    )
    signed = sign_manifest(document, key)
    facts = {"file": document["location"], "size_bytes": document["size_bytes"], "chunk_size": document["chunk_size"]}

    def line(doc: dict[str, Any]) -> str:
        rows = doc["row_count"] if doc["row_count"] is not None else "?"
        return (
            f"{doc['dataset']}: {doc['file_name']}, {doc['size_bytes']} bytes, {rows} rows, {doc['leaf_count']} leaves"
        )

    return store_and_report(args, signed, policy, dataset, run_id, facts, line)


def _verify(args: argparse.Namespace) -> int:
    # Start hashing first: the imports below (SQLAlchemy, the ledger) then overlap it. These modules are light.
    from charter_guardrails.checks.integrity.hash_job import HashJob
    from charter_guardrails.checks.integrity.hashing import auto_chunk_size
    from charter_guardrails.checks.integrity.light_ledger import light_ledger_session
    from charter_guardrails.checks.integrity.manifest_registry import active_manifest, parse_dataset_ref
    from charter_guardrails.checks.integrity.verification import ManifestSnapshot, verify_file

    use_case, dataset = parse_dataset_ref(args.dataset, args.use_case)
    if isinstance(args.file, str) or (args.file is None and _is_object(use_case, dataset)):
        from charter_guardrails.cli.integrity_objects import verify_object_command

        return verify_object_command(args, use_case, dataset)
    if args.file is None:
        from charter_guardrails.cli.integrity_tables import verify_table_command

        return verify_table_command(args, use_case, dataset)
    from charter_guardrails.cli import main as cli

    # Speculatively with the default chunk size; if the manifest says otherwise, the file is hashed again.
    # In the console script the hashing runs in a child process; in-process (tests, libraries) in a
    # thread, whose workers need the GIL between reads while this thread imports: let them have it sooner.
    if not cli.console_script:
        sys.setswitchinterval(0.001)
    job = (
        HashJob(args.file, isolate=cli.console_script, chunk_size=auto_chunk_size(args.file.stat().st_size))
        if args.file.is_file()
        else None
    )
    try:
        with light_ledger_session() as session:
            row = active_manifest(session, use_case, dataset)
            manifest = ManifestSnapshot.of(row) if row is not None else None
        digest = None
        if job is not None and manifest is not None:
            if not args.no_record:
                _import_record_path()  # while the file is still being hashed, not after it
            digest = job.result()  # raises DatasetFileError (exit 2) for a file that changed while hashed
    finally:
        if job is not None:
            job.cancel()  # no-op once the digest is in
    verification = verify_file(args.file, manifest, use_case=use_case, dataset=dataset, digest=digest)
    return report_verification(args, verification, manifest)


def _is_object(use_case: str, dataset: str) -> bool:
    from charter_guardrails.core.policy import load_policy

    return load_policy(use_case).dataset(dataset).is_object


def report_verification(args: argparse.Namespace, verification: Any, manifest: Any) -> int:
    """Record the verdict (unless ``--no-record``), print it, and return the exit code of its outcome."""
    from charter_guardrails.checks.integrity.manifest import Outcome

    incident_id = None
    run_id = run_id_of(args)
    if not args.no_record:
        incident_id = _record(verification, manifest, run_id)
    data = {**verification.to_json_dict(), "run_id": None if args.no_record else run_id, "incident_id": incident_id}

    def human() -> str:
        head = "INTACT" if verification.intact else verification.outcome.value.upper().replace("_", " ")
        text = f"{head}: {message_in(args, verification.message(), verification.summary)}"
        if incident_id is not None:
            text += (
                f"\nincident #{incident_id} raised (refresh blocked, dataset quarantined): "
                f"`charter incidents show {incident_id}`"
            )
        return text

    if not (args.quiet and verification.intact and not args.json):
        emit(args, data, human)
    if verification.intact:
        return EXIT_OK
    if verification.outcome in (Outcome.KEY_MISSING, Outcome.NO_MANIFEST):
        return EXIT_USAGE
    return EXIT_FAILED


def _import_record_path() -> None:
    """Import what :func:`_record` needs (the ledger store, the audit chain and its signing key handling).

    Called while the hashing threads run: the imports then use the time the file is read, instead of
    adding to it once the digest is known.
    """
    import importlib

    for module in (
        "charter_guardrails.checks.integrity.manifest_registry",
        "charter_guardrails.ledger.audit",
        "charter_guardrails.ledger.store",
    ):
        importlib.import_module(module)


def _record(verification: Any, manifest: Any, run_id: str) -> int | None:
    """Persist the verdict, the verification row and, on a mismatch, the incident: one transaction."""
    from charter_guardrails.checks.integrity.light_ledger import light_ledger_session
    from charter_guardrails.checks.integrity.manifest_registry import ensure_dataset_record, record_verification
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.ledger.store import finish_check_run, get_or_create_check_run, record_check_result

    result = verification.to_check_result()
    draft = verification.incident_draft(run_id)
    policy = load_policy(verification.use_case) if (draft is not None or manifest is None) else None
    with light_ledger_session() as session:
        if manifest is not None:
            dataset_id = manifest.dataset_id
        else:
            assert policy is not None  # noqa: S101 - loaded above when there is no manifest
            location = verification.path if verification.table else Path(verification.path).resolve()
            dataset_id = ensure_dataset_record(session, policy, verification.dataset, location).id
        run = get_or_create_check_run(session, use_case=verification.use_case, dag_id="cli", run_id=run_id)
        record_check_result(session, run, result)
        record_verification(session, verification, dataset_id=dataset_id, run_id=run_id)
        incident_id = None
        if draft is not None:
            # The incident module imports the policy model: only on a mismatch.
            from charter_guardrails.incidents.incident import raise_incident

            assert policy is not None  # noqa: S101 - loaded above when there is an incident draft
            incident, _created = raise_incident(session, policy, draft)
            incident_id = incident.id
        finish_check_run(
            session,
            run,
            decision="passed" if verification.intact else "quarantined",
            blocked_by=[] if verification.intact else ["integrity"],
        )
    return incident_id
