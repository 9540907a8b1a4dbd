# Personal data: evaluation and benchmark of the scanner. Not part of `make test`.
.PHONY: eval-pii bench-pii bench-pii-smoke

eval-pii: $(STAMP) ## scanner precision/recall on a labelled French table (10,000 rows, 24 columns)
	$(PY) bench/eval_pii.py

bench-pii: $(STAMP) ## scanner (sampling, exhaustive) vs Presidio BatchAnalyzerEngine; BENCH_ROWS=20000 for a smoke run
	$(PY) bench/bench_pii.py

bench-pii-smoke: $(STAMP) ## the CI size of bench-pii (about 30 s; sampling's 1000x is judged at full size only)
	BENCH_ROWS=20000 BASELINE_ROWS=300 $(PY) bench/bench_pii.py
