#!/usr/bin/env bash
# One-shot initialisation, run by the airflow-init service before any other Airflow component:
#   1. Airflow metadata migrations (database "airflow"), FAB's tables included: `airflow db migrate` runs the
#      FAB provider's database manager too, so no `airflow fab-db migrate` is needed;
#   2. under the FAB auth manager, the project's roles (python -m charter_airflow.fab_roles) and the users of
#      CHARTER_AIRFLOW_USERS (user:role), their passwords read from the airflow_users secret file by
#      python -m charter_airflow.fab_users (never on a command line);
#   3. ledger migrations (database "charter_ledger");
#   4. keys: from Docker secrets when the secret files are present and non-empty, otherwise
#      `charter keys init` once into the charter-keys volume (existing keys are kept);
#   5. the state folders on the shared volumes (they belong to the Airflow user: the image creates
#      them, and Docker copies their ownership into new named volumes).
# It is idempotent: running it again on an initialised deployment changes nothing.
set -euo pipefail

log() { printf '[airflow-init] %s\n' "$*"; }

log "Airflow $(airflow version)"
mkdir -p "$CHARTER_DATA_DIR" "$CHARTER_REPORTS_DIR" "$CHARTER_KEYS_DIR" "$(dirname "$CHARTER_AUDIT_ANCHOR")" \
         "$CHARTER_HOME/models" "$CHARTER_HOME/profiles" "$CHARTER_HOME/work"

log "migrating the Airflow metadata database"
airflow db migrate

if [[ "${AIRFLOW__CORE__AUTH_MANAGER:-}" == *FabAuthManager* ]]; then
    log "FAB: the project's roles (and those of CHARTER_DEPARTMENTS) and the users of CHARTER_AIRFLOW_USERS"
    python -m charter_airflow.fab_roles
    python -m charter_airflow.fab_users --users "${CHARTER_AIRFLOW_USERS:?set AIRFLOW_USERS (user:role,...)}" \
        --passwords-file "${CHARTER_AIRFLOW_USERS_FILE:-/run/secrets/airflow_users}"
fi

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
