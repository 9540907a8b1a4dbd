#!/usr/bin/env bash
# Runs once, on an empty data volume (docker-entrypoint-initdb.d): two databases, two roles.
# The Airflow metadata and the charter ledger are kept apart so that each can be backed up,
# restored and granted on its own; the ledger role cannot read Airflow's tables and vice versa.
set -euo pipefail

read_secret() {  # $1: *_FILE variable name, $2: fallback variable name
    local file_var="$1" value_var="$2"
    if [[ -n "${!file_var:-}" && -s "${!file_var}" ]]; then
        tr -d '\n' < "${!file_var}"
    else
        printf '%s' "${!value_var:-}"
    fi
}

AIRFLOW_DB_PASSWORD="$(read_secret AIRFLOW_DB_PASSWORD_FILE AIRFLOW_DB_PASSWORD)"
CHARTER_LEDGER_DB_PASSWORD="$(read_secret CHARTER_LEDGER_DB_PASSWORD_FILE CHARTER_LEDGER_DB_PASSWORD)"
: "${AIRFLOW_DB_PASSWORD:?the airflow database password is not set (secret airflow_db_password)}"
: "${CHARTER_LEDGER_DB_PASSWORD:?the ledger database password is not set (secret charter_ledger_db_password)}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v airflow_pw="$AIRFLOW_DB_PASSWORD" -v ledger_pw="$CHARTER_LEDGER_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE charter LOGIN PASSWORD :'ledger_pw';
CREATE DATABASE charter_ledger OWNER charter;
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
REVOKE ALL ON DATABASE charter_ledger FROM PUBLIC;
SQL
