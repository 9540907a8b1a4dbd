"""A production model for the tests: trained by the project's ``train_candidate`` on a use case's sample training
file, then published as ``publish`` does it (the version registered, its artifact copied into the models folder,
its model card and AI label written and linked)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def train(policy: Any, training_file: Path, artifact_dir: Path, *, as_of: datetime | None = None) -> Any:
    """A candidate of ``policy`` trained on ``training_file`` (read, typed and minimised as the refresh does, with
    retention counted from ``as_of``, now by default)."""
    from charter_guardrails.checks.proportionality import check_proportionality
    from charter_guardrails.readers.files import apply_types, read_dataset
    from charter_guardrails.refresh.training import train_candidate

    dataset = policy.training_dataset
    frame, _ = apply_types(read_dataset(dataset, training_file), dataset)
    minimised, _ = check_proportionality(policy, dataset, frame, as_of=as_of or datetime.now(UTC))
    return train_candidate(policy, minimised, artifact_dir=artifact_dir)


def publish(policy: Any, model: Any, *, run_id: str = "manual__refresh", approver: str = "claire.martin") -> Path:
    """Publish ``model`` as the production version of ``policy``; the path of its ``ai_label.json``."""
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.decision.model_registry import production_version, publish_version, set_model_files
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting.model_card import ModelCardFacts, write_model_card

    with ledger_session() as session:
        number = publish_version(
            session,
            use_case=policy.id,
            run_id=run_id,
            metrics=model.metrics,
            artifact_path=None,
            artifact_sha256=model.artifact_sha256,
            approved_by=approver,
        ).version
    models_dir = get_settings().models_dir / policy.id
    artifact = models_dir / f"v{number}.joblib"
    artifact.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model.artifact_path, artifact)
    facts = ModelCardFacts(
        version=number,
        run_id=run_id,
        metrics=model.metrics,
        fairness={},
        energy={},
        approver=approver,
        decision="published",
        overrides=[],
        results=[],
        data_period=model.data_period,
    )
    paths = write_model_card(policy, facts, out_dir=models_dir / f"v{number}")
    with ledger_session() as session:
        version = production_version(session, policy.id)
        assert version is not None
        assert version.version == number
        set_model_files(session, version, card_path=paths.html, artifact_path=artifact, actor=approver)
    return paths.label_json
