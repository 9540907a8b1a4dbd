# The governance view ("Charte IA"): see docs/ui.md.
# The browser tests (tests/ui) drive Debian's chromium through Playwright; Playwright never
# downloads a browser here. `test` must depend on `ui-deps` so a fresh machine gets chromium, and
# poppler-utils, whose pdftotext and pdfinfo read the charter report's PDF in the tests.
UI_PORT ?= 8080
UI_SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: ui ui-deps test-ui

ui-deps: ## install Debian's chromium (browser tests) and poppler-utils (pdftotext, pdfinfo: PDF report tests) when missing
	@command -v chromium >/dev/null || ($(UI_SUDO) apt-get update && $(UI_SUDO) apt-get install -y chromium)
	@command -v pdftotext >/dev/null || ($(UI_SUDO) apt-get update && $(UI_SUDO) apt-get install -y poppler-utils)

ui: $(STAMP) ## the Airflow api-server with the "Charte IA" governance view on http://127.0.0.1:$(UI_PORT)
	$(PY) -m charter_airflow.ui.serve --port $(UI_PORT)

test-ui: $(STAMP) ui-deps ## the UI tier: auth on every route, roles, CSRF, Chromium end to end (screenshots in artifacts/ui)
	$(BIN)/pytest tests/ui -q -p no:cacheprovider
