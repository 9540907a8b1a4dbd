#!/usr/bin/env bash
# One-shot initialisation, run by the airflow-init service before any other Airflow component:
#   1. Airflow metadata migrations (database "airflow");
#   2. ledger migrations (database "charter_ledger");
#   3. keys: from Docker secrets when the secret files are present and non-empty, otherwise
#      `charter keys init` once into the charter-keys volume (existing keys are kept);
#   4. the state folders on the shared volumes (they belong to the Airflow user: the image creates
#      them, and Docker copies their ownership into new named volumes).
# It is idempotent: running it again on an initialised deployment changes nothing.
set -euo pipefail

log() { printf '[airflow-init] %s\n' "$*"; }

log "Airflow $(airflow version)"
mkdir -p "$CHARTER_DATA_DIR" "$CHARTER_REPORTS_DIR" "$CHARTER_KEYS_DIR" "$(dirname "$CHARTER_AUDIT_ANCHOR")" \
         "$CHARTER_HOME/models" "$CHARTER_HOME/profiles" "$CHARTER_HOME/work"

log "migrating the Airflow metadata database"
airflow db migrate

log "migrating the charter ledger"
charter ledger migrate

if [[ -n "${CHARTER_SIGNING_KEY:-}" ]]; then
    log "signing key: from the Docker secret ${CHARTER_SIGNING_KEY_FILE:-(environment)}"
    if [[ -z "${CHARTER_PSEUDONYMISATION_KEY:-}" ]]; then
        log "pseudonymisation key: secret absent, keeping or creating the key file in $CHARTER_KEYS_DIR"
        charter keys init
    fi
else
    log "no signing key secret: keeping or creating the local key files in $CHARTER_KEYS_DIR"
    charter keys init
fi

if [[ "${CHARTER_GENERATE_SAMPLE_DATA:-false}" == "true" ]]; then
    log "generating the sample data (development only)"
    charter data generate
fi

chmod 700 "$CHARTER_KEYS_DIR"
log "done"
