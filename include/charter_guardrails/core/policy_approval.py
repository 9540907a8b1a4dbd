"""The human approval of a model refresh in a use-case policy: who may answer, who may override, how long to wait.

Part of the policy schema (:class:`~charter_guardrails.core.policy.UseCasePolicy` assembles it); kept
apart from :mod:`charter_guardrails.core.policy_models`, which holds the sections about data and models.
An approver answers the Airflow HITL form under their Airflow user name (``username``): the form is
assigned to those names, and the publish step checks the answer against them again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field, field_validator

from charter_guardrails.core.policy_models import Contact, PolicySection

#: An Airflow user name (simple auth manager, FAB, Keycloak…): no spaces, no control characters.
Username = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")]

#: An Airflow role name as the auth manager names it (``op``, ``Admin``, ``Comité IA``…): printable, no line breaks.
RoleName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]

#: How long a refresh waits for a human answer when the policy does not say.
DEFAULT_RESPONSE_TIMEOUT = timedelta(days=7)


class Approver(Contact):
    """A person who may approve a refresh: their contact, and their Airflow user name.

    An approver without ``username`` is listed for the record but cannot answer the form.
    """

    username: Username | None = None


class ApprovalPolicy(PolicySection):
    """How the human review of a refresh runs (Maîtrise humaine 2)."""

    #: How long the form waits for an answer (ISO 8601 duration such as ``P7D``, or seconds); then
    #: the refresh is rejected (``rejected: no answer``) and the approvers are told.
    response_timeout: timedelta = DEFAULT_RESPONSE_TIMEOUT
    #: The approvers (by ``username``) who may publish despite an overridable failed guardrail
    #: (``Override``, with a written justification). Empty: nobody may override.
    override_approvers: list[Username] = Field(default_factory=list)
    #: Airflow roles whose members may suspend and resume the production model from the governance view,
    #: besides those the auth manager lets create Asset events (``op`` and ``admin`` with the simple auth
    #: manager). They still need the right to change DAG runs, as every action of the view. Empty: nobody else.
    kill_switch_roles: list[RoleName] = Field(default_factory=list)

    @field_validator("response_timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("response_timeout must be positive, e.g. P7D (seven days) or PT12H")
        return value


__all__ = ["DEFAULT_RESPONSE_TIMEOUT", "ApprovalPolicy", "Approver", "RoleName", "Username"]
