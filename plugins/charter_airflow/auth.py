"""Airflow's FAB auth manager, with the human-in-the-loop approvals checked by user name.

The deployment (``docker-compose.yaml``) sets::

    AIRFLOW__CORE__AUTH_MANAGER=charter_airflow.auth.CharterFabAuthManager

The project names a person by their Airflow user name, in both auth managers: the policy lists its approvers
by ``username``, a run's triggering user is its ``triggering_user_name``, and the review form
(:class:`charter_airflow.review.PolicyReviewOperator`) is assigned to ``HITLUser(id=name, name=name)``. Under
the simple auth manager of ``make run`` a user's id *is* its name, so Airflow's own check
(``BaseAuthManager.is_authorized_hitl_task``: ``user.get_id() in assigned_users``) works as is. Under FAB a
user's id is its numeric ``ab_user.id``: that check would refuse every approver. Airflow documents the method
as the one an auth manager overrides; this one compares the user's name (FAB's unique ``username``).

Only the name is compared, never the id as well: ids and names in one set could collide (a user whose numeric
id is another's all-digit user name), and the four-eyes check of publish compares names too
(:meth:`charter_guardrails.decision.review_records.ReviewAnswer.responder`).

The class name keeps ``FabAuthManager`` in it: Airflow recognises FAB by that substring of
``[core] auth_manager`` (the dag-processor syncs each DAG's ``access_control`` permissions, ``airflow db clean``
cleans FAB's sessions). Needs the ``fab`` extra (``apache-airflow-providers-fab``).
"""

from __future__ import annotations

from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager
from airflow.providers.fab.auth_manager.models import User

__all__ = ["CharterFabAuthManager"]


class CharterFabAuthManager(FabAuthManager):
    """FAB's auth manager, where a HITL form's assigned users are user names (see the module's docstring)."""

    def is_authorized_hitl_task(self, *, assigned_users: set[str], user: User) -> bool:
        """Whether ``user`` may answer a HITL form assigned to ``assigned_users`` (user names).

        Every other permission (who may edit the ``HITL Detail`` of a DAG at all) stays FAB's, checked by
        Airflow's API before this method is called.
        """
        name = user.get_name()
        return bool(name) and name in assigned_users
