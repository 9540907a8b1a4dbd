"""Maîtrise humaine 1 in the charter report: the model in service watched on what it scores.

Each accepted inference batch is scored by the production model, or recorded as not scored with the reason
(``decision.scoring``; the ledger's ``prediction_batches``). The report counts them over its period and gives the
largest drift of the predictions from one batch to the next (Jensen-Shannon distance, 0 to 1): aggregates only,
never a prediction. A batch left unscored is not a gap: the kill switch, or the absence of a production model,
is a person's decision (Maîtrise humaine 2).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from charter_guardrails.ledger.models_predictions import PredictionBatch


def scored_batches(session: Session, start: datetime, end: datetime) -> list[PredictionBatch]:
    """The batches recorded in ``[start, end)``, oldest first."""
    return list(
        session.scalars(
            select(PredictionBatch)
            .where(PredictionBatch.created_at >= start, PredictionBatch.created_at < end)
            .order_by(PredictionBatch.created_at, PredictionBatch.id)
        )
    )


def prediction_evidence(batches: list[PredictionBatch]) -> tuple[dict[str, Any], list[str]]:
    """The evidence counts, and the sentence of what was found (none without a scored batch)."""
    scored = [b for b in batches if b.status == "scored"]
    drifts = [b.drift for b in scored if b.drift is not None]
    evidence = {
        "scored_batches": len(scored),
        "not_scored_batches": len(batches) - len(scored),
        "max_prediction_drift": round(max(drifts), 4) if drifts else None,
    }
    if not scored:
        return evidence, []
    use_cases = ", ".join(sorted({b.use_case for b in scored}))
    lots = f"{len(scored)} lot noté" if len(scored) == 1 else f"{len(scored)} lots notés"
    return evidence, [f"{lots} par le modèle en service ({use_cases})"]
