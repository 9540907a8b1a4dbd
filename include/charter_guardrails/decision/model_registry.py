"""Model versions, human decisions and the kill switch (AI Act Art. 14(4)(e)).

Every change is an audited row: publishing a version, approvals and overrides (who, when,
why), suspending and resuming the production model.

A version's files (artifact, model card) are stored relative to the models folder
(``$CHARTER_HOME/models``, :mod:`charter_guardrails.core.stored_paths`); read them with
:func:`artifact_file` and :func:`card_file`, which also accept the absolute paths of older rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from charter_guardrails.core.catalogue import CATALOGUE, CheckName
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.messages import Template
from charter_guardrails.core.results import CheckResult, Severity, Verdict
from charter_guardrails.core.settings import get_settings
from charter_guardrails.core.stored_paths import from_stored, to_stored
from charter_guardrails.ledger.audit import append_event
from charter_guardrails.ledger.models import Approval, ModelVersion

SUSPENDED = Template("production model v%(version)s is suspended by %(actor)s: %(reason)s")
NOT_SUSPENDED = Template("the production model is not suspended")


def production_version(session: Session, use_case: str) -> ModelVersion | None:
    return session.scalars(
        select(ModelVersion)
        .where(ModelVersion.use_case == use_case, ModelVersion.status == "production")
        .order_by(ModelVersion.version.desc())
    ).first()


def versions(session: Session, use_case: str | None = None) -> list[ModelVersion]:
    query = select(ModelVersion).order_by(ModelVersion.use_case, ModelVersion.version)
    if use_case:
        query = query.where(ModelVersion.use_case == use_case)
    return list(session.scalars(query))


def record_approval(
    session: Session,
    *,
    use_case: str,
    run_id: str | None,
    decision: str,
    actor: str,
    justification: str | None = None,
    overridden_checks: list[str] | None = None,
) -> Approval:
    """Record a human decision; the same decision on the same run (a retried publish task) is recorded once."""
    if run_id is not None:
        existing = session.scalars(
            select(Approval).where(
                Approval.use_case == use_case,
                Approval.run_id == run_id,
                Approval.decision == decision,
                Approval.actor == actor,
                Approval.justification.is_(None) if justification is None else Approval.justification == justification,
            )
        ).first()
        if existing is not None and sorted(existing.overridden_checks or []) == sorted(overridden_checks or []):
            return existing
    approval = Approval(
        use_case=use_case,
        run_id=run_id,
        decision=decision,
        actor=actor,
        justification=justification,
        overridden_checks=sorted(overridden_checks or []),
        decided_at=datetime.now(UTC),
    )
    session.add(approval)
    append_event(
        session,
        actor=actor,
        action=f"approval.{decision}",
        subject=approval,
        use_case=use_case,
        run_id=run_id,
        payload={"overridden_checks": approval.overridden_checks, "justification": justification},
    )
    return approval


def publish_version(
    session: Session,
    *,
    use_case: str,
    run_id: str,
    metrics: dict[str, Any],
    artifact_path: str | None,
    artifact_sha256: str | None,
    approved_by: str,
    card_path: str | None = None,
) -> ModelVersion:
    """Register a new production version; the previous one is retired. Idempotent per run."""
    existing = session.scalars(
        select(ModelVersion).where(ModelVersion.use_case == use_case, ModelVersion.run_id == run_id)
    ).first()
    if existing is not None:
        return existing
    previous = production_version(session, use_case)
    if previous is not None and previous.suspended:
        raise ConfigError(f"the production model of {use_case} is suspended: resume it before publishing a new version")
    number = (session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.use_case == use_case)) or 0) + 1
    if previous is not None:
        previous.status, previous.retired_at = "retired", datetime.now(UTC)
        append_event(
            session, actor=approved_by, action="model.retired", subject=previous, use_case=use_case, run_id=run_id
        )
    version = ModelVersion(
        use_case=use_case,
        version=number,
        run_id=run_id,
        status="production",
        metrics=metrics,
        artifact_path=_stored(artifact_path),
        artifact_sha256=artifact_sha256,
        card_path=_stored(card_path),
        approved_by=approved_by,
        suspended=False,
        created_at=datetime.now(UTC),
    )
    session.add(version)
    append_event(
        session,
        actor=approved_by,
        action="model.published",
        subject=version,
        use_case=use_case,
        run_id=run_id,
        payload={"version": number},
    )
    return version


def _stored(path: str | Path | None) -> str | None:
    """``path`` as a version stores it: relative to the models folder when it lies inside it."""
    return to_stored(path, get_settings().models_dir)


def artifact_file(version: ModelVersion) -> Path | None:
    """The version's model artifact in the current models folder (an older row's absolute path as it is)."""
    return from_stored(version.artifact_path, get_settings().models_dir)


def card_file(version: ModelVersion) -> Path | None:
    """The version's model card in the current models folder (an older row's absolute path as it is)."""
    return from_stored(version.card_path, get_settings().models_dir)


def set_card_path(session: Session, version: ModelVersion, card_path: str, actor: str) -> None:
    """Link the version to its model card (stored relative to the models folder), audited."""
    set_model_files(session, version, card_path=card_path, artifact_path=version.artifact_path, actor=actor)


def set_model_files(
    session: Session,
    version: ModelVersion,
    *,
    card_path: str | Path | None,
    artifact_path: str | Path | None,
    actor: str,
) -> None:
    """Link the version to its model card and artifact (stored relative to the models folder), in one audited change."""
    card, artifact = _stored(card_path), _stored(artifact_path)
    if (version.card_path, version.artifact_path) == (card, artifact):
        return  # a retried publish wrote the same files
    version.card_path, version.artifact_path = card, artifact
    append_event(
        session,
        actor=actor,
        action="model.card_written",
        subject=version,
        use_case=version.use_case,
        run_id=version.run_id,
    )


def suspend(session: Session, use_case: str, *, actor: str, reason: str) -> ModelVersion:
    if not reason.strip():
        raise ConfigError("a suspension needs a reason (--reason)")
    version = production_version(session, use_case)
    if version is None:
        raise ConfigError(f"{use_case} has no production model to suspend; see `charter model list`")
    if version.suspended:
        raise ConfigError(f"the production model of {use_case} (v{version.version}) is already suspended")
    version.suspended, version.suspended_by, version.suspended_at, version.suspend_reason = (
        True,
        actor,
        datetime.now(UTC),
        reason,
    )
    record_approval(session, use_case=use_case, run_id=None, decision="suspend", actor=actor, justification=reason)
    append_event(
        session, actor=actor, action="model.suspended", subject=version, use_case=use_case, payload={"reason": reason}
    )
    return version


def resume(session: Session, use_case: str, *, actor: str, reason: str) -> ModelVersion:
    version = production_version(session, use_case)
    if version is None or not version.suspended:
        raise ConfigError(f"{use_case} has no suspended production model; see `charter model list`")
    version.suspended, version.suspended_by, version.suspended_at, version.suspend_reason = False, None, None, None
    record_approval(session, use_case=use_case, run_id=None, decision="resume", actor=actor, justification=reason)
    append_event(
        session, actor=actor, action="model.resumed", subject=version, use_case=use_case, payload={"reason": reason}
    )
    return version


def check_kill_switch(session: Session, use_case: str) -> CheckResult:
    """Fails while the production model is suspended: refreshes and inference stop within one run."""
    version = production_version(session, use_case)
    suspended = bool(version and version.suspended)
    return CheckResult(
        check=CheckName.KILL_SWITCH,
        verdict=Verdict.FAIL if suspended else Verdict.PASS,
        severity=Severity.CRITICAL if suspended else Severity.INFO,
        engagements=CATALOGUE[CheckName.KILL_SWITCH].engagement_ids(),
        message=(
            SUSPENDED(version=version.version, actor=version.suspended_by, reason=version.suspend_reason)
            if suspended and version
            else NOT_SUSPENDED()
        ),
        metrics={"production_version": version.version if version else None},
        evidence={"suspended": suspended},
    )
