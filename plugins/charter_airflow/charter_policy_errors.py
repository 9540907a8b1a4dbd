"""Airflow import errors for the invalid policies of the policies folder (``[charter] policies_dir``).

This DAG file builds no DAG: it raises, naming each invalid policy file, key path and reason, so that Airflow
lists them among its import errors, while ``charter_dags.py`` builds the DAGs of the valid policies (an import
error in that file would stop them all). Copy it beside ``charter_dags.py`` in the DAGs folder.
"""

from charter_airflow.policy_dags import raise_policy_errors

raise_policy_errors()
