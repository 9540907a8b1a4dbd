# The audit chain's verification at scale: see docs/integrity.md (section "The audit chain").
# BENCH_EVENTS (default 1,000,000), BENCH_DB=postgresql, BENCH_APPEND (default 5), BENCH_BASELINE_EVENTS
# (default 100,000), BENCH_STRICT=1 to fail on a missed target.

.PHONY: bench-audit bench-audit-smoke

bench-audit: $(STAMP) ## audit chain: full verification (time, peak RSS ≤ 256 MiB), incremental, page and report ≤ 1 s, vs the old verification
	$(PY) bench/bench_audit.py

bench-audit-smoke: $(STAMP) ## bench-audit at CI size (20,000 events, under a minute)
	BENCH_EVENTS=$${BENCH_EVENTS:-20000} $(PY) bench/bench_audit.py
