"""The human review of a refresh: Airflow's HITL form, assigned to the policy's approvers.

:class:`PolicyReviewOperator` is Airflow's ``HITLOperator`` with what the policy says, read when the
form opens (so a policy edit applies to the next run without re-parsing anything):

* the form is assigned to the approvers' Airflow user names, except the user who triggered the run
  (four eyes): Airflow's API refuses anyone else's answer. A person is their user name in both auth managers:
  the simple auth manager's user id is its name, and under FAB (whose id is the numeric ``ab_user.id``) the
  project's auth manager, :class:`charter_airflow.auth.CharterFabAuthManager`, checks the name;
* it waits ``approval.response_timeout`` (seven days by default), then answers ``Reject`` by itself;
* the approvers are told that a decision waits, through the alert outbox
  (:mod:`charter_guardrails.incidents.approval_notice`);
* the brief the form shows is rendered from the ledger's verdicts, not from the gate's XCom.

When the answer comes, the task records Airflow's HITL record of it (the resume event the api-server
builds from the ``hitl_detail`` row) in the ledger (``approval.answered``): publish trusts that record,
never the task's XCom.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator

log = logging.getLogger(__name__)

OPTIONS = ["Approve", "Override", "Reject"]
#: The answer Airflow gives by itself when nobody answered in time.
TIMEOUT_ANSWER = "Reject"


def triggering_user(context: Any) -> str | None:
    """The Airflow user who triggered the run (``None`` for a scheduled run)."""
    return getattr(context.get("dag_run"), "triggering_user_name", None) or None


def _user_field(user: Any, key: str) -> str | None:
    """``id`` or ``name`` of a HITL user, whether it arrives as a mapping or as a model."""
    value = user.get(key) if isinstance(user, dict) else getattr(user, key, None)
    return str(value) if value is not None else None


class PolicyReviewOperator(HITLOperator):
    """Airflow's HITL form, assigned to the policy's approvers (minus the run's triggering user).

    :param policy_file: the use case's policy file, read when the form opens.
    """

    def __init__(self, *, policy_file: str, **kwargs: Any) -> None:
        super().__init__(options=list(OPTIONS), defaults=[TIMEOUT_ANSWER], **kwargs)
        self.policy_file = policy_file

    def execute(self, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowFailException
        from airflow.sdk.execution_time.hitl import HITLUser

        from charter_airflow.runtime import load_policy

        policy = load_policy(Path(self.policy_file))
        triggered_by = triggering_user(context)
        assigned = [name for name in policy.approver_usernames if name != triggered_by]
        if not assigned:
            raise AirflowFailException(
                f"no approver of {policy.id} may answer this refresh: the policy lists "
                f"{policy.approver_usernames or 'no approver username'} and the run was triggered by "
                f"{triggered_by!r} (four eyes). Add another approver with a username to the policy."
            )
        # id = name: the simple auth manager's is_authorized_hitl_task compares ids, which are user names;
        # CharterFabAuthManager compares the responder's name (FAB's id is numeric).
        self.assigned_users = [HITLUser(id=name, name=name) for name in assigned]
        self.response_timeout = policy.approval.response_timeout
        self._open_form(policy, context, assigned, triggered_by)
        return super().execute(context)

    def _open_form(self, policy: Any, context: Any, assigned: list[str], triggered_by: str | None) -> None:
        """The brief from the ledger's verdicts (not the gate's XCom), the request recorded, the approvers told."""
        from charter_guardrails.core.settings import get_settings
        from charter_guardrails.decision.gate import REFRESH_CHECKS, decide
        from charter_guardrails.decision.review_records import record_request
        from charter_guardrails.incidents.approval_notice import REQUESTED, queue_approval_notice
        from charter_guardrails.ledger.store import ledger_session
        from charter_guardrails.reporting.brief import render_approval_brief

        from charter_airflow.publish import run_results
        from charter_airflow.runtime import run_ids

        results = run_results(policy, context)
        decision = decide(results, REFRESH_CHECKS)
        self.body = render_approval_brief(policy, results, decision)
        _, run_id = run_ids(context)
        deadline = datetime.now(UTC) + policy.approval.response_timeout
        link = self.generate_link_to_ui(task_instance=context["ti"], base_url=get_settings().ui_base_url)
        with ledger_session() as session:
            record_request(
                session,
                use_case=policy.id,
                run_id=run_id,
                assigned=assigned,
                triggered_by=triggered_by,
                deadline=deadline,
                link=link,
            )
            queue_approval_notice(
                session,
                policy,
                kind=REQUESTED,
                run_id=run_id,
                usernames=assigned,
                payload={
                    "link": link,
                    "deadline": deadline.isoformat(),
                    "brief": self.body,
                    "outcome": decision.outcome,
                },
            )
        log.info("approval of %s assigned to %s until %s", policy.id, assigned, deadline.isoformat())

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """Record the answer in the ledger, then return it as Airflow does.

        ``event`` is Airflow's HITL record of the answer (who answered, the options chosen, the form's
        input), which the api-server (or the scheduler's timeout sweep) hands to the resumed task: not
        XCom, which users can rewrite. The task SDK offers no other read of it to a worker's task.
        """
        result = super().execute_complete(context, event)  # validates the options and the form's input
        from charter_guardrails.decision.review_records import ReviewAnswer, record_answer
        from charter_guardrails.ledger.store import ledger_session

        from charter_airflow.runtime import load_policy, run_ids

        user = event.get("responded_by_user")  # a HITLUser mapping, or None when the form timed out
        answer = ReviewAnswer(
            responder_id=_user_field(user, "id"),
            responder_name=_user_field(user, "name"),
            choice=(event.get("chosen_options") or [TIMEOUT_ANSWER])[0],
            justification=(event.get("params_input") or {}).get("justification") or None,
            responded_at=event.get("responded_at"),
        )
        policy = load_policy(Path(self.policy_file))
        with ledger_session() as session:
            record_answer(session, use_case=policy.id, run_id=run_ids(context)[1], answer=answer)
        log.info("approval of %s answered %s by %s", policy.id, answer.choice, answer.responder or "nobody")
        return result
