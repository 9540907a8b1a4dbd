# Hardening: canary personal data, fault injection, tamper campaigns, bad inputs, fuzzing.
# `make test` runs tests/hardening at the CI size; `make hardening` runs the same campaigns at full size.
.PHONY: hardening

hardening: $(STAMP) ## the hardening campaigns at full size (HARDENING_SCALE=full): tamper, SIGKILL, fuzzing, bad inputs
	HARDENING_SCALE=full $(BIN)/pytest tests/hardening -q
