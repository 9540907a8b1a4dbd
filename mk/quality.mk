# Data quality: see docs/quality.md. Not part of `make test`.
# BENCH_ROWS (default 1,000,000), BENCH_REPEATS (default 5) and BENCH_PG_ROWS (default 10,000,000; 0 skips
# PostgreSQL) set the size; bench-quality-smoke is the CI size.
.PHONY: bench-quality bench-quality-smoke

bench-quality: $(STAMP) ## our GX runner vs bare GX on 1M rows (median of 5 interleaved runs, ratio, peak RSS, load), and a 10M-row PostgreSQL table validated in the database (peak RSS)
	$(PY) bench/bench_quality.py

bench-quality-smoke: $(STAMP) ## the CI size of bench-quality (about 30 s; the ratio is judged at full size only)
	BENCH_ROWS=20000 BENCH_REPEATS=3 BENCH_PG_ROWS=50000 $(PY) bench/bench_quality.py
