"""Demo and development material kept out of the library and the Airflow adapters: the deterministic sample
data, the PII evaluation harness, and real local Airflow processes driven through the REST API (``local_airflow``)."""
