"""The governance view ("Charte IA"): a FastAPI app mounted in the Airflow api-server by
``charter_airflow.plugin``. Server-rendered Jinja2 pages in French, and a JSON API."""
