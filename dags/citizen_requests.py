"""DAGs of the use case ``citizen_requests``, built from include/policies/citizen_requests.yaml: no logic here."""

from charter_airflow.dag_factory import (
    build_inference_dag,
    build_model_refresh_dag,
    build_policy_review_dag,
    policy_file_for,
)

POLICY = policy_file_for("citizen_requests")

policy_review = build_policy_review_dag(POLICY)
model_refresh = build_model_refresh_dag(POLICY)
inference_guardrails = build_inference_dag(POLICY)
