# Dataset integrity: see docs/integrity.md.
# BENCH_SIZE_MIB=32 for a CI smoke run; default 256 MiB and 1 GiB. BENCH_RUNS (default 5).

.PHONY: bench-integrity

bench-integrity: $(STAMP) ## charter verify vs openssl dgst -sha256 on 256 MiB and 1 GiB: throughput ratio and peak RSS
	$(PY) bench/bench_integrity.py
