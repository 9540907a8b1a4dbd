# The compose topology as local processes (CeleryExecutor, PostgreSQL, Redis): see docs/deployment.md.
CLUSTER_WORKERS ?= 2
CLUSTER_STATE ?= $(CURDIR)/.charter/cluster

.PHONY: cluster cluster-stop cluster-status bench-scale

cluster: $(STAMP) ## start Airflow with the CeleryExecutor as local processes (PostgreSQL + Redis, 2 workers)
	$(PY) scripts/cluster.py start --workers $(CLUSTER_WORKERS) --state-dir $(CLUSTER_STATE)

cluster-stop: $(STAMP) ## stop every process `make cluster` started
	$(PY) scripts/cluster.py stop --state-dir $(CLUSTER_STATE)

cluster-status: $(STAMP) ## the processes of `make cluster` and the api-server's health
	$(PY) scripts/cluster.py status --state-dir $(CLUSTER_STATE)

bench-scale: $(STAMP) ## the partitioned personal-data guardrail over 1 then 2 Celery workers: map-phase speed-up and load average (BENCH_SCALE_ROWS for a smoke size)
	$(PY) bench/bench_scale.py
