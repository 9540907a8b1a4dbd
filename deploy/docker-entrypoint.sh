#!/usr/bin/env bash
# Entry point of the charter image: load secrets from files, then hand over to Airflow's /entrypoint.
#
# For every variable NAME listed below, when NAME_FILE points to a non-empty file (a Docker secret
# under /run/secrets, a Kubernetes secret volume...), NAME is exported with the file's content.
# An empty or absent file leaves NAME alone, so the key files in CHARTER_KEYS_DIR apply.
# A file that is there but cannot be read (not a regular file, no read permission, a read error)
# stops the container with its name: quietly going on would let init create other keys.
# Values are never printed.
set -euo pipefail

for name in CHARTER_SIGNING_KEY CHARTER_PUBLIC_KEY CHARTER_PSEUDONYMISATION_KEY \
            CHARTER_SMTP_PASSWORD; do
    file_var="${name}_FILE"
    file="${!file_var:-}"
    if [[ -z "$file" || ! -e "$file" ]]; then
        continue
    fi
    if [[ ! -f "$file" || ! -r "$file" ]]; then
        echo "charter: the secret file $file ($file_var) cannot be read: check that it is a file the container's user (uid $(id -u)) may read" >&2
        exit 78
    fi
    if [[ -s "$file" ]]; then
        if ! value="$(cat "$file" 2>/dev/null)"; then
            echo "charter: the secret file $file ($file_var) cannot be read: check its permissions" >&2
            exit 78
        fi
        export "$name"="$value"
    fi
done

exec "${CHARTER_NEXT_ENTRYPOINT:-/entrypoint}" "$@"
