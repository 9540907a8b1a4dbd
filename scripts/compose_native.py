"""`make compose-native`: the services of docker-compose.yaml as local processes, until Ctrl-C.

    python scripts/compose_native.py up --generate-secrets [--service airflow-apiserver ...] [--profile dev]

PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) of this machine stand for the ``postgres`` and ``redis``
services, an SMTP catcher for ``mailpit`` (charter_demo.compose_backing). ``--generate-secrets`` writes development
secret files and passwords into the state folder (deploy/secrets/README.md describes them); without it, the
variables and ``CHARTER_SECRETS_DIR`` come from the environment, as for ``docker compose``. Ctrl-C stops every
process and drops the run's databases; the state folder (volumes, logs) is kept for reading.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from charter_demo.compose_backing import write_dev_secrets
from charter_demo.compose_runner import ComposeRunner
from charter_demo.compose_spec import ComposeError

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ("AIRFLOW_DB_PASSWORD", "CHARTER_LEDGER_DB_PASSWORD", "POSTGRES_PASSWORD", "REDIS_PASSWORD")


def _interrupt(*_: object) -> None:
    """SIGTERM stops the run as Ctrl-C does: the processes are stopped and the databases dropped."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up"], help="start the services; Ctrl-C stops them and cleans up")
    parser.add_argument("--file", default=ROOT / "docker-compose.yaml", type=Path)
    parser.add_argument("--state-dir", default=ROOT / ".charter" / "compose", type=Path, help="volumes, logs, mail")
    parser.add_argument("--service", action="append", help="only this service and its dependencies (repeatable)")
    parser.add_argument("--profile", action="append", default=[], help="activate a profile (dev: the mail catcher)")
    parser.add_argument("--generate-secrets", action="store_true", help="development secrets in the state folder")
    args = parser.parse_args(argv)
    variables = dict(os.environ)
    if args.generate_secrets:
        users = {"admin": secrets.token_urlsafe(12), "reviewer": secrets.token_urlsafe(12)}
        write_dev_secrets(args.state_dir / "secrets", users)
        variables["CHARTER_SECRETS_DIR"] = str((args.state_dir / "secrets").resolve())
        for name in REQUIRED:
            variables.setdefault(name, secrets.token_urlsafe(16))
        variables.setdefault("CHARTER_SMTP_STARTTLS", "false")  # the catcher speaks no TLS
        print("users: " + ", ".join(f"{user} / {password}" for user, password in users.items()))
    try:
        runner = ComposeRunner(args.file, args.state_dir, variables, profiles=args.profile)
    except ComposeError as exc:
        print(f"{exc} (see deploy/secrets/README.md, or pass --generate-secrets)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        runner.up(args.service)
        print(f"up: {runner.url('airflow-apiserver', 8080)}; logs in {runner.state_dir / 'logs'}; Ctrl-C stops")
        while True:
            runner.check_running()
            time.sleep(2)
    except KeyboardInterrupt:
        return 0
    except ComposeError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        for error in runner.down():
            print(error, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
