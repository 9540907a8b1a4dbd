"""The ``charter_retention`` DAG: daily deletion of what is past its retention, audited; Airflow DAG file.

The same two lines as ``dags/charter_retention.py``: the file the package ships for an existing Airflow.
"""

from charter_airflow.retention import build_retention_dag

dag = build_retention_dag()
