"""``charter_retention``: every day, delete the files past their retention (storage limitation), except those
under a legal hold or an open incident; each deletion is recorded in the ledger and the audit chain first.

The same two lines as ``charter_airflow/charter_retention.py``, the file the package ships for an existing Airflow.
See docs/retention.md.
"""

from charter_airflow.retention import build_retention_dag

dag = build_retention_dag()
