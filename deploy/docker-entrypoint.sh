#!/usr/bin/env bash
# Entry point of the charter image: load secrets from files, then hand over to Airflow's /entrypoint.
#
# For every variable NAME listed below, when NAME_FILE points to a non-empty file (a Docker secret
# under /run/secrets, a Kubernetes secret volume...), NAME is exported with the file's content.
# An empty or absent file leaves NAME alone, so the key files in CHARTER_KEYS_DIR apply.
# Values are never printed.
set -euo pipefail

for name in CHARTER_SIGNING_KEY CHARTER_PUBLIC_KEY CHARTER_PSEUDONYMISATION_KEY \
            CHARTER_SMTP_PASSWORD; do
    file_var="${name}_FILE"
    file="${!file_var:-}"
    if [[ -n "$file" && -s "$file" ]]; then
        export "$name"="$(cat "$file")"
    fi
done

exec /entrypoint "$@"
