"""``charter hash``, ``charter verify``, ``charter incidents`` and ``charter alerts``.

``charter verify`` starts hashing the file before it imports the ledger, so that the start-up
of SQLAlchemy overlaps the hashing on the other cores; nothing on that path imports pandas,
Great Expectations or Presidio.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from charter_guardrails.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, add_json_flag, emit, table

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


def _dataset_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE", help="the dataset file, or a directory of Parquet files")
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
    hash_ = subparsers.add_parser("hash", help="register a signed Merkle manifest of a dataset file in the ledger")
    _dataset_args(hash_)
    hash_.add_argument(
        "--chunk-size",
        type=_chunk_size,
        default=None,
        help="bytes per Merkle leaf (default: 8M, or less for files under 256M so that they get about 32 leaves)",
    )
    hash_.add_argument("--algorithm", default="sha256", choices=["sha256", "sha512", "blake2b"])
    add_json_flag(hash_)
    hash_.set_defaults(handler=_hash, exit_promptly=True)

    verify = subparsers.add_parser(
        "verify",
        help="check a dataset file against its signed manifest (exit 0 intact, 1 mismatch: an incident is raised, 2 usage)",
    )
    _dataset_args(verify)
    verify.add_argument(
        "--no-record", action="store_true", help="only verify (public key only); write nothing to the ledger"
    )
    add_json_flag(verify)
    verify.set_defaults(handler=_verify, exit_promptly=True)

    incidents = subparsers.add_parser(
        "incidents", help="security and GDPR incidents (Art. 33 fields, 72-hour deadline)"
    )
    sub = incidents.add_subparsers(dest="incidents_command", metavar="ACTION", required=True)
    list_ = sub.add_parser("list", help="list incidents, newest first")
    list_.add_argument("--status", choices=["open", "acknowledged", "resolved"])
    list_.add_argument("--use-case")
    list_.add_argument("--limit", type=int, default=50)
    add_json_flag(list_)
    list_.set_defaults(handler=_incidents_list)
    show = sub.add_parser("show", help="every field of one incident, and its alert deliveries")
    show.add_argument("incident_id", type=int, metavar="ID")
    add_json_flag(show)
    show.set_defaults(handler=_incidents_show)
    for action, helptext in (("ack", "acknowledge an open incident"), ("resolve", "resolve an incident")):
        p = sub.add_parser(action, help=helptext)
        p.add_argument("incident_id", type=int, metavar="ID")
        p.add_argument("--by", default=os.environ.get("USER") or "cli", help="who (default: $USER)")
        p.add_argument("--comment", help="why; recorded in the incident and the audit chain")
        add_json_flag(p)
        p.set_defaults(handler=_incidents_transition, to=action)

    alerts = subparsers.add_parser("alerts", help="incident alerts (outbox, relay)")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    relay = alerts_sub.add_parser("relay", help="deliver due outbox alerts by e-mail (CHARTER_SMTP_*) and webhook")
    relay.add_argument("--once", action="store_true", help="one batch only (default: drain every alert due now)")
    add_json_flag(relay)
    relay.set_defaults(handler=_alerts_relay)
    status = alerts_sub.add_parser("status", help="outbox rows by status")
    add_json_flag(status)
    status.set_defaults(handler=_alerts_status)


def _run_id(args: argparse.Namespace) -> str:
    return args.run_id or f"cli:{datetime.now(UTC).isoformat(timespec='microseconds')}"


def _hash(args: argparse.Namespace) -> int:
    from charter_guardrails.checks.integrity.manifest import build_manifest, sign_manifest
    from charter_guardrails.checks.integrity.verification import load_policy, parse_dataset_ref, store_manifest
    from charter_guardrails.core.keys import load_signing_key
    from charter_guardrails.ledger.store import ledger_session

    use_case, dataset = parse_dataset_ref(args.dataset, args.use_case)
    policy = load_policy(use_case)
    policy.dataset(dataset)  # declared? (clear error otherwise)
    key = load_signing_key()  # before hashing: a missing key should not cost a full pass
    run_id = _run_id(args)
    document = build_manifest(
        args.file,
        use_case=use_case,
        dataset=dataset,
        run_id=run_id,
        algorithm=args.algorithm,
        chunk_size=args.chunk_size,
    )
    signed = sign_manifest(document, key)
    with ledger_session() as session:
        row = store_manifest(session, signed, policy=policy, dataset=dataset)
        manifest_id = row.id
    doc = signed.document
    data = {
        "manifest_id": manifest_id,
        "dataset": doc["dataset"],
        "file": doc["location"],
        "size_bytes": doc["size_bytes"],
        "row_count": doc["row_count"],
        "merkle_root": doc["merkle_root"],
        "leaves": doc["leaf_count"],
        "chunk_size": doc["chunk_size"],
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
            f"registered manifest #{manifest_id} for {doc['dataset']}: {doc['file_name']}, {doc['size_bytes']} bytes, "
            f"{doc['row_count'] if doc['row_count'] is not None else '?'} rows, {doc['leaf_count']} leaves, "
            f"root {doc['merkle_root']} (signed by key {signed.key_id})"
        ),
    )
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    # Start hashing first: the imports below (SQLAlchemy, the ledger) then overlap it. These modules are light.
    from charter_guardrails.checks.integrity.hashing import HashJob, auto_chunk_size
    from charter_guardrails.checks.integrity.manifest import Outcome
    from charter_guardrails.checks.integrity.verification import (
        ManifestSnapshot,
        active_manifest,
        light_ledger_session,
        parse_dataset_ref,
        verify_file,
    )

    use_case, dataset = parse_dataset_ref(args.dataset, args.use_case)
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
    incident_id = None
    run_id = _run_id(args)
    if not args.no_record:
        incident_id = _record(verification, manifest, run_id)
    data = {**verification.to_json_dict(), "run_id": None if args.no_record else run_id, "incident_id": incident_id}

    def human() -> str:
        head = "INTACT" if verification.intact else verification.outcome.value.upper().replace("_", " ")
        text = f"{head}: {verification.summary}"
        if incident_id is not None:
            text += f"\nincident #{incident_id} raised (refresh blocked, dataset quarantined): `charter incidents show {incident_id}`"
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
    import charter_guardrails.checks.integrity.verification  # noqa: F401
    import charter_guardrails.ledger.audit  # noqa: F401
    import charter_guardrails.ledger.store  # noqa: F401


def _record(verification: Any, manifest: Any, run_id: str) -> int | None:
    """Persist the verdict, the verification row and, on a mismatch, the incident: one transaction."""
    from charter_guardrails.checks.integrity.verification import (
        ensure_dataset_record,
        light_ledger_session,
        load_policy,
        record_verification,
    )
    from charter_guardrails.ledger.store import finish_check_run, get_or_create_check_run, record_check_result

    result = verification.to_check_result()
    draft = verification.incident_draft(run_id)
    policy = load_policy(verification.use_case) if (draft is not None or manifest is None) else None
    with light_ledger_session() as session:
        if manifest is not None:
            dataset_id = manifest.dataset_id
        else:
            assert policy is not None
            dataset_id = ensure_dataset_record(
                session, policy, verification.dataset, Path(verification.path).resolve()
            ).id
        run = get_or_create_check_run(session, use_case=verification.use_case, dag_id="cli", run_id=run_id)
        record_check_result(session, run, result)
        record_verification(session, verification, dataset_id=dataset_id, run_id=run_id)
        incident_id = None
        if draft is not None:
            from charter_guardrails.incidents.incident import (
                raise_incident,
            )  # imports the policy model: only on a mismatch

            assert policy is not None
            incident, _created = raise_incident(session, policy, draft)
            incident_id = incident.id
        finish_check_run(
            session,
            run,
            decision="passed" if verification.intact else "quarantined",
            blocked_by=[] if verification.intact else ["integrity"],
        )
    return incident_id


#: Every field of an incident, in the order of GDPR Art. 33(3) and then its handling.
INCIDENT_FIELDS = (
    "id",
    "key",
    "status",
    "breach_type",
    "severity",
    "title",
    "use_case",
    "dataset",
    "run_id",
    "detected_at",
    "notify_deadline",
    "nature",
    "facts",
    "data_subject_categories",
    "approx_data_subjects",
    "personal_data_categories",
    "approx_records",
    "likely_consequences",
    "measures_taken",
    "dpo_contact",
    "acknowledged_by",
    "acknowledged_at",
    "resolved_by",
    "resolved_at",
    "comments",
)


def incident_dict(incident: Any) -> dict[str, Any]:
    out = {}
    for name in INCIDENT_FIELDS:
        value = getattr(incident, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _outbox(session: Any, incident_id: int) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from charter_guardrails.ledger.models import AlertOutbox

    rows = session.scalars(select(AlertOutbox).where(AlertOutbox.incident_id == incident_id).order_by(AlertOutbox.id))
    return [
        {
            "channel": o.channel,
            "recipient": o.recipient,
            "status": o.status,
            "attempts": o.attempts,
            "idempotency_key": o.idempotency_key,
            "next_attempt_at": o.next_attempt_at.isoformat() if o.next_attempt_at else None,
            "delivered_at": o.delivered_at.isoformat() if o.delivered_at else None,
            "last_error": o.last_error,
        }
        for o in rows
    ]


def _incidents_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from charter_guardrails.ledger.models import Incident
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        query = select(Incident).order_by(Incident.id.desc()).limit(args.limit)
        if args.status:
            query = query.where(Incident.status == args.status)
        if args.use_case:
            query = query.where(Incident.use_case == args.use_case)
        incidents = [incident_dict(i) for i in session.scalars(query)]
    emit(
        args,
        incidents,
        lambda: (
            table(
                [
                    [
                        i["id"],
                        i["status"],
                        i["breach_type"],
                        i["severity"],
                        f"{i['use_case']}.{i['dataset'] or '-'}",
                        i["detected_at"][:19],
                        i["notify_deadline"][:19],
                        i["title"],
                    ]
                    for i in incidents
                ],
                ["id", "status", "type", "severity", "dataset", "detected (UTC)", "notify before", "title"],
            )
            if incidents
            else "no incident"
        ),
    )
    return EXIT_OK


def _incidents_show(args: argparse.Namespace) -> int:
    import json

    from charter_guardrails.ledger.models import Incident
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        incident = session.get(Incident, args.incident_id)
        if incident is None:
            raise UsageError(f"no incident #{args.incident_id}; list them with `charter incidents list`")
        data = {**incident_dict(incident), "alerts": _outbox(session, incident.id)}

    def human() -> str:
        lines = [
            f"{name:26} {json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value}"
            for name, value in data.items()
            if name != "alerts"
        ]
        lines.append("alerts:")
        lines += [
            f"  - {a['channel']} {a['recipient']}: {a['status']} after {a['attempts']} attempt(s)"
            + (f", delivered {a['delivered_at']}" if a["delivered_at"] else "")
            + (f", last error: {a['last_error']}" if a["last_error"] else "")
            for a in data["alerts"]
        ]
        return "\n".join(lines)

    emit(args, data, human)
    return EXIT_OK


def _incidents_transition(args: argparse.Namespace) -> int:
    from charter_guardrails.incidents.incident import IncidentStatus, transition_incident
    from charter_guardrails.ledger.store import ledger_session

    to = IncidentStatus.ACKNOWLEDGED if args.to == "ack" else IncidentStatus.RESOLVED
    with ledger_session() as session:
        incident = transition_incident(session, args.incident_id, to, actor=args.by, comment=args.comment)
        data = incident_dict(incident)
    emit(args, data, f"incident #{data['id']} is {data['status']} (by {args.by})")
    return EXIT_OK


def _alerts_relay(args: argparse.Namespace) -> int:
    from charter_guardrails.incidents.relay import relay, relay_once
    from charter_guardrails.incidents.senders import default_senders

    senders = default_senders()
    report = relay_once(senders) if args.once else relay(senders)
    data = report.to_json_dict()

    def human() -> str:
        text = f"alerts: {report.claimed} due, {report.delivered} delivered, {report.failed} failed (retried later), {report.dead} dead"
        for channel, count in report.unsent_channels.items():
            text += f"\n{count} {channel} alert(s) left pending: no {channel} sender configured" + (
                " (set CHARTER_SMTP_HOST)" if channel == "email" else ""
            )
        for error in report.errors[:10]:
            text += (
                f"\n  outbox #{error['outbox_id']} ({error['channel']}), attempt {error['attempts']}: {error['error']}"
            )
        return text

    emit(args, data, human)
    return EXIT_OK if report.failed == 0 else EXIT_FAILED


def _alerts_status(args: argparse.Namespace) -> int:
    from charter_guardrails.incidents.relay import outbox_status

    counts = outbox_status()
    emit(args, counts, lambda: ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "outbox empty")
    return EXIT_OK
