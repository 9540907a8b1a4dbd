# Data sources: see docs/integrity.md (tables) and docs/quality.md. Not part of `make test`.
# BENCH_SOURCES_ROWS (default 10,000,000) sets the size of the PostgreSQL table; bench-sources-smoke is the CI size.
.PHONY: bench-sources bench-sources-smoke

bench-sources: $(STAMP) ## a 10M-row PostgreSQL table: its manifest (ratio to a plain read in key order) and its quality suite in the database, peak RSS per process (<= 1 GiB), load
	$(PY) bench/bench_sources.py

bench-sources-smoke: $(STAMP) ## the CI size of bench-sources (50,000 rows, under a minute)
	BENCH_SOURCES_ROWS=50000 $(PY) bench/bench_sources.py

# Objects in storage: see docs/integrity.md (objects in storage). BENCH_OBJECT_MIB (default 256) sets the object's size.
.PHONY: bench-objects bench-objects-smoke

bench-objects: $(STAMP) ## a 256 MiB object of a loopback S3-compatible bucket: staged and hashed (ratio to boto3's download), peak RSS (<= 256 MiB), load
	$(PY) bench/bench_objects.py

bench-objects-smoke: $(STAMP) ## the CI size of bench-objects (16 MiB, seconds)
	BENCH_OBJECT_MIB=16 $(PY) bench/bench_objects.py
