"""personal data: the clean citizen training set passes, a PII leak in waste_tonnage fails with a GDPR incident, \
pseudonymisation.

Runs the same commands a data engineer would: ``charter scan`` and ``charter pseudonymise``.
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime
from typing import Any


def _charter(argv: list[str]) -> tuple[int, str, str]:
    from charter_guardrails.cli.main import main as charter

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = charter(argv)
    return code, out.getvalue(), err.getvalue()


def run(ctx: Any) -> None:
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.ledger.models import CheckResultRecord, CheckRun, Incident, PiiFinding
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    settings = get_settings()
    policies, data = settings.policies_dir, settings.data_dir
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    # 1. The clean training set of citizen_requests: personal data only in the declared free-text column.
    run_id = f"scenario-privacy-clean-{stamp}"
    code, out, err = _charter(
        [
            "scan",
            str(data / "citizen_requests" / "training.csv"),
            "--policy",
            str(policies / "citizen_requests.yaml"),
            "--record",
            "--run-id",
            run_id,
            "--json",
        ]
    )
    message = next((c for c in json.loads(out) if c["name"] == "message"), {}) if code in (0, 1) else {}
    found = sorted(f["entity_type"] for f in message.get("findings", []))
    ctx.expect(
        code == 0,
        f"citizen_requests/training.csv passes: personal data only in 'message' ({', '.join(found)}), all allowed",
    )
    print(f"    {err.strip().splitlines()[-1] if err.strip() else ''}")

    # 2. The PII-leak variant of waste_tonnage, a dataset declared non-personal: fail and GDPR incident.
    run_id = f"scenario-privacy-leak-{stamp}"
    code, out, err = _charter(
        [
            "scan",
            str(data / "waste_tonnage" / "training__pii_leak.csv"),
            "--policy",
            str(policies / "waste_tonnage.yaml"),
            "--run-id",
            run_id,
        ]
    )
    with ledger_session() as session:
        incident = session.scalars(select(Incident).where(Incident.run_id == run_id)).first()
        result = session.scalars(
            select(CheckResultRecord)
            .join(CheckRun, CheckResultRecord.check_run_id == CheckRun.id)
            .where(CheckRun.run_id == run_id)
        ).first()
        findings = (
            session.scalars(select(PiiFinding).where(PiiFinding.check_result_id == result.id)).all() if result else []
        )
        ctx.expect(
            code == 1 and incident is not None and incident.breach_type == "gdpr_compliance",
            f"waste_tonnage/training__pii_leak.csv fails (exit {code}); incident #{incident.id if incident else '?'} "
            f"({incident.breach_type if incident else '-'}, notify by {incident.notify_deadline:%Y-%m-%d %H:%M} UTC)"
            if incident
            else f"waste_tonnage/training__pii_leak.csv fails (exit {code}) with an incident",
        )
        ctx.expect(
            bool(findings) and all("*" in e for f in findings for e in f.masked_examples),
            (
                f"{len(findings)} masked pii_findings rows,"
                f" e.g. {findings[0].entity_type} {findings[0].masked_examples[:2]}"
            )
            if findings
            else "masked pii_findings rows recorded",
        )
        if result is not None:
            print(f"    report: {result.report_path}")

    # 3. The training-ready copy of citizen_requests: identifiers HMAC'd, free text masked, undeclared columns dropped.
    target = settings.home / "work" / "citizen_requests" / "scenario" / "training__pseudonymised.csv"
    code, out, err = _charter(
        [
            "pseudonymise",
            str(data / "citizen_requests" / "training__pii_leak.csv"),
            str(target),
            "--policy",
            str(policies / "citizen_requests.yaml"),
            "--json",
        ]
    )
    report = json.loads(out) if code == 0 else {}
    ctx.expect(
        code == 0
        and report.get("dropped_columns") == ["telephone_usager"]
        and report.get("hashed_columns") == ["request_id"],
        f"pseudonymised copy {target.name}: hashed {report.get('hashed_columns')},"
        f" masked {report.get('masked_columns')} "
        f"({report.get('masked_entities')}), dropped {report.get('dropped_columns')}",
    )
    print(f"    reports under {settings.reports_dir}; pseudonymised data at {target}")
