"""The ledger's tables of storage limitation: legal holds and the files retention deleted.

Kept apart from :mod:`charter_guardrails.ledger.models` (which imports this module, so that the metadata and
:data:`~charter_guardrails.ledger.models.AUDITED_MODELS` hold these tables too); the schema is owned by the
migration ``0006_retention``. Both tables are audited: adding or lifting a hold and each deletion append an event
with the row's digest, so a hold lifted or a deletion erased behind the ledger's back is seen by
``charter audit verify``.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from charter_guardrails.ledger.models import Base, utcnow


class LegalHold(Base):
    """Files of a use case that retention must not delete (a litigation, a request of an authority…).

    The scope is the whole use case, or one dataset, one model version or one run of it; the hold lasts until
    ``released_at`` is set (``charter hold remove``), and the row stays as the record of it.
    """

    __tablename__ = "legal_holds"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case: Mapped[str] = mapped_column(String(64), index=True)
    dataset: Mapped[str | None] = mapped_column(String(128))
    model_version: Mapped[int | None] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(String(250))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_by: Mapped[str | None] = mapped_column(String(256))
    released_at: Mapped[datetime | None] = mapped_column()
    release_reason: Mapped[str | None] = mapped_column(Text)


class DeletedFile(Base):
    """A file (or a run folder) retention deleted: written, with its audit event, before the file is unlinked.

    ``path`` is relative to ``CHARTER_HOME`` with every name that may come from outside the project (a delivered
    file's name) replaced by a keyed hash; ``path_key`` is the keyed hash of the real relative path, which
    :func:`charter_guardrails.retention.deleted` looks up. ``completed_at`` is set once the file is gone: a row
    without it is a deletion a crash interrupted, finished by the next run without a second event.
    """

    __tablename__ = "deleted_files"
    __audited__ = True
    #: Bookkeeping of the unlink itself, set after the audited insert: left out of the row digest.
    __digest_excluded__: ClassVar[frozenset[str]] = frozenset({"completed_at"})
    __table_args__ = (Index("ix_deleted_files_path_key", "path_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case: Mapped[str] = mapped_column(String(64), index=True)
    #: working_copy | report | batch | model_artifact (one class per kind in ``retention.kinds``)
    kind: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    path_key: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(250))
    dataset: Mapped[str | None] = mapped_column(String(128))
    model_version: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    #: SHA-256 of the file; of a folder, of its files' relative paths and SHA-256 (``retention.digest``).
    sha256: Mapped[str] = mapped_column(String(64))
    files: Mapped[int] = mapped_column(Integer, default=1)
    #: The policy key that applied and its value, e.g. ``storage.working_copies_days=30``.
    rule: Mapped[str] = mapped_column(String(128))
    #: The clock the deletion was planned at (``--as-of`` moves it); ``deleted_at`` is when it was recorded.
    as_of: Mapped[datetime] = mapped_column()
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column()


__all__ = ["DeletedFile", "LegalHold"]
