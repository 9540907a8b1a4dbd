# docker-compose.yaml run as local processes, without Docker: see docs/deployment.md ("The compose file, run natively").
COMPOSE_STATE ?= $(CURDIR)/.charter/compose

.PHONY: compose-native

compose-native: $(STAMP) ## docker-compose.yaml as local processes, dev profile (mail catcher, Flower) included; Ctrl-C stops
	$(PY) scripts/compose_native.py up --generate-secrets --profile dev --state-dir $(COMPOSE_STATE)
