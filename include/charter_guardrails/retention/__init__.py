"""Storage limitation (GDPR Art. 5(1)(e)): delete what a use case no longer needs, audited, except under a hold.

:func:`plan` lists every item past the lifetime its policy's ``storage`` section (and its datasets'
``retention``) gives it; :func:`apply` deletes them, each recorded in the ledger and the audit chain before its
file is unlinked. A legal hold (:mod:`.holds`) or an incident not yet resolved keeps an item. The kinds of
storage are classes of :mod:`.kinds`. See ``docs/retention.md``.
"""

from __future__ import annotations

from charter_guardrails.retention.engine import (
    PAUSE_AFTER_ENV,
    ApplyReport,
    RetentionPlan,
    apply,
    deleted,
    deleted_artifact,
    finish_pending,
    plan,
)
from charter_guardrails.retention.holds import add_hold, holds, remove_hold

__all__ = [
    "PAUSE_AFTER_ENV",
    "ApplyReport",
    "RetentionPlan",
    "add_hold",
    "apply",
    "deleted",
    "deleted_artifact",
    "finish_pending",
    "holds",
    "plan",
    "remove_hold",
]
