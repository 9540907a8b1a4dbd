"""DAGs of the use case ``waste_tonnage``, built from include/policies/waste_tonnage.yaml."""

from charter_airflow.factory import build_policy_review_dag, policy_file_for

policy_review = build_policy_review_dag(policy_file_for("waste_tonnage"))
