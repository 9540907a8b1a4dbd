"""Every use case's DAGs: one per valid policy of the policies folder (``[charter] policies_dir``); Airflow DAG file.

The same two lines as ``charter_airflow/charter_dags.py``, the file the package ships for an existing Airflow:
adding a use case is adding its policy and suites, with no Python.
"""

from charter_airflow.policy_dags import build_all

build_all(globals())
