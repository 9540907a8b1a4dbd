"""The ledger's table of monitoring: what the production model predicted on each accepted inference batch.

Kept apart from :mod:`charter_guardrails.ledger.models` (which imports this module, so that the metadata and
:data:`~charter_guardrails.ledger.models.AUDITED_MODELS` hold this table too); the schema is owned by the
migration ``0007_prediction_batches``. The table is audited: each row is written with a ``predictions.recorded``
event carrying its digest, so a distribution or a drift edited behind the ledger's back is seen by
``charter audit verify``. A row holds aggregates only (counts, shares, histograms), never an input value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from charter_guardrails.ledger.models import Base, utcnow


class PredictionBatch(Base):
    """One accepted batch of a use case, scored by its production model, or the reason it was not.

    ``batch`` and ``predictions`` are relative to the data folder. ``distribution`` is the predictions'
    distribution (:func:`charter_guardrails.decision.prediction_stats.distribution`); ``drift`` is the
    Jensen-Shannon distance (base 2, 0 to 1) to the distribution of the use case's previous scored batch
    (``previous_id``), ``None`` for the first one.
    """

    __tablename__ = "prediction_batches"
    __audited__ = True
    __table_args__ = (Index("ix_prediction_batches_use_case_run", "use_case", "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case: Mapped[str] = mapped_column(String(64))
    dag_id: Mapped[str | None] = mapped_column(String(250))
    run_id: Mapped[str] = mapped_column(String(250))
    batch: Mapped[str] = mapped_column(Text)
    #: scored | not_scored
    status: Mapped[str] = mapped_column(String(16))
    #: Why the batch was not scored (no production model, kill switch on, a failure's kind); None when scored.
    reason: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[int | None] = mapped_column(Integer)
    #: SHA-256 of the version's ``ai_label.json`` (the AI label the predictions are published under).
    ai_label_id: Mapped[str | None] = mapped_column(String(64))
    predictions: Mapped[str | None] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    distribution: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    drift: Mapped[float | None] = mapped_column(Float)
    previous_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = ["PredictionBatch"]
