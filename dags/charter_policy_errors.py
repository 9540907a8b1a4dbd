"""Airflow import errors for the invalid policies of the policies folder; this DAG file builds no DAG.

The same two lines as ``charter_airflow/charter_policy_errors.py``: the DAGs of the valid policies come from
``charter_use_cases.py``, which an import error here does not touch.
"""

from charter_airflow.policy_dags import raise_policy_errors

raise_policy_errors()
