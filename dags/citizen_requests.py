"""DAGs of the use case ``citizen_requests``, built from include/policies/citizen_requests.yaml."""

from charter_airflow.factory import build_policy_review_dag, policy_file_for

policy_review = build_policy_review_dag(policy_file_for("citizen_requests"))
