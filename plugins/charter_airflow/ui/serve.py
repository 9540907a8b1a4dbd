"""``make ui``: the Airflow api-server with the Charte IA view, for a person to look at.

It prepares what the view needs (Airflow's metadata database, the ledger schema, the local keys)
and runs ``airflow api-server`` in the foreground on loopback. Two users exist: ``admin`` (may
acknowledge and resolve incidents, and belongs to the governance role that records the charter's
attestations) and ``viewer`` (read only); their passwords are generated once into a file under
AIRFLOW_HOME, whose path is printed. The ledger is the one ``make run`` fills.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
USERS = {"admin": "admin", "viewer": "viewer"}


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback by default: the simple auth manager is for local use"
    )
    args = parser.parse_args(argv)

    airflow_home = Path(os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow")))
    os.environ.setdefault("CHARTER_HOME", str(ROOT / ".charter"))
    airflow_home.mkdir(parents=True, exist_ok=True)
    passwords = airflow_home / "charte_ui_passwords.json"
    if not passwords.exists():
        passwords.write_text(json.dumps({user: secrets.token_urlsafe(12) for user in USERS}))
        passwords.chmod(0o600)
    env = {
        **os.environ,
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__BASE_URL": f"http://{args.host}:{args.port}",
        "AIRFLOW__API__HOST": args.host,
        "AIRFLOW__API__PORT": str(args.port),
    }
    bin_dir = Path(sys.executable).parent
    _say(f"==> airflow db migrate ({airflow_home})")
    # The airflow executable next to this interpreter, with fixed arguments: nothing comes from a user.
    migrated = subprocess.run(  # noqa: S603
        [str(bin_dir / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True
    )
    if migrated.returncode != 0:
        sys.stderr.write(migrated.stderr[-3000:] + "\n")
        return 2

    from charter_guardrails.cli.main import main as charter

    for command in (["ledger", "migrate"], ["keys", "init"]):
        if charter(command) != 0:
            return 2
    # Passwords stay in their file (mode 600): a terminal is often recorded or shared.
    _say(
        f"\n==> Charte IA: http://{args.host}:{args.port}/plugin/charte-ia  (Ctrl-C to stop)\n"
        "    users: admin (acknowledges incidents, records the charter's attestations), viewer (read only)\n"
        f"    passwords in {passwords}\n"
        "    the view shows the ledger of `make run`; run it first if the pages are empty.\n"
    )
    return subprocess.call(  # noqa: S603 - our airflow executable; host and port are parsed arguments
        [str(bin_dir / "airflow"), "api-server", "--host", args.host, "--port", str(args.port)], env=env
    )


if __name__ == "__main__":
    sys.exit(main())
