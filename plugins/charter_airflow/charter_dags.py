"""Every use case's DAGs: one per valid policy of the policies folder (``[charter] policies_dir``); Airflow DAG file."""

from charter_airflow.policy_dags import build_all

build_all(globals())
