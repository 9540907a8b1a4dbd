# Data quality: see docs/quality.md. Not part of `make test`.
# BENCH_ROWS (default 1,000,000), BENCH_PG_ROWS (default 10,000,000) and BENCH_RUNS (default 3) set a smoke size for CI.
.PHONY: bench-quality

bench-quality: $(STAMP) ## our GX runner vs bare GX on 1M rows (ratio), and a 10M-row PostgreSQL table validated in the database (peak RSS)
	$(PY) bench/bench_quality.py
