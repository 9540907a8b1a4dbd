# Personal data: evaluation and benchmark of the scanner. Not part of `make test`.
.PHONY: eval-pii bench-pii bench-pii-smoke

eval-pii: $(STAMP) ## scanner precision/recall on a labelled French table (10,000 rows, 24 columns)
	$(PY) bench/eval_pii.py

bench-pii: $(STAMP) ## `charter scan` as whole processes on 10M rows x 20 columns: sampling vs a pyarrow read (RSS, time), exhaustive on 1M rows vs Presidio
	$(PY) bench/bench_pii.py

bench-pii-smoke: $(STAMP) ## the CI size of bench-pii (200,000 rows sampled, 20,000 exhaustive, 300 baseline rows; targets judged at full size only)
	BENCH_ROWS=200000 EXHAUSTIVE_ROWS=20000 BASELINE_ROWS=300 $(PY) bench/bench_pii.py
