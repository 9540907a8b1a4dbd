"""The project's Celery workers: their settings (``celery_config``) and the prompt reaping of task processes."""
