"""The ``storage`` section of a use-case policy: how long the files a use case leaves behind are kept.

Part of the policy schema (:class:`~charter_guardrails.core.policy.UseCasePolicy` assembles it); kept apart
from :mod:`charter_guardrails.core.policy_models`, which holds the sections about data and models. A dataset's
``retention`` says which *rows* training may still use; this section says when the *files* go (storage
limitation, GDPR Art. 5(1)(e)): the run folders of working copies, delivered and quarantined batches, the
run reports, and the artifacts of retired model versions. :mod:`charter_guardrails.retention` applies it.

Every field has a default, so an older policy without the section is still subject to retention.
"""

from __future__ import annotations

from pydantic import Field

from charter_guardrails.core.policy_models import PolicySection

#: Days a run's working copies (``work/<use case>/<run>/``) are kept when the policy does not say.
DEFAULT_WORKING_COPIES_DAYS = 30
#: Days a batch file is kept when neither the policy nor its dataset's ``retention`` says.
DEFAULT_BATCHES_DAYS = 365
#: Days a run's reports (``reports/<use case>/<run>/``) are kept when the policy does not say.
DEFAULT_REPORTS_DAYS = 365
#: Days the artifact of a retired model version is kept after its retirement when the policy does not say.
DEFAULT_RETIRED_MODELS_DAYS = 365


class StoragePolicy(PolicySection):
    """How long each kind of file of the use case is kept, in days after its last change (Sûreté 1)."""

    #: The run folders of working copies: pseudonymised and minimised copies, the candidate and its holdout.
    working_copies_days: int = Field(default=DEFAULT_WORKING_COPIES_DAYS, gt=0, le=36500)
    #: Batch files under ``data/<use case>/`` (deliveries, accepted and quarantined batches). ``None``: the
    #: ``retention.days`` of the dataset the file belongs to, else :data:`DEFAULT_BATCHES_DAYS`.
    batches_days: int | None = Field(default=None, gt=0, le=36500)
    #: The run folders of reports (``reports/<use case>/<run>/``: check reports, Great Expectations Data Docs).
    reports_days: int = Field(default=DEFAULT_REPORTS_DAYS, gt=0, le=36500)
    #: The artifact (``models/<use case>/v<n>.joblib``) of a version retired for longer than this; its model card
    #: is kept: it documents what ran in production.
    retired_models_days: int = Field(default=DEFAULT_RETIRED_MODELS_DAYS, gt=0, le=36500)


__all__ = [
    "DEFAULT_BATCHES_DAYS",
    "DEFAULT_REPORTS_DAYS",
    "DEFAULT_RETIRED_MODELS_DAYS",
    "DEFAULT_WORKING_COPIES_DAYS",
    "StoragePolicy",
]
