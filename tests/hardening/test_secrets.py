"""Secrets: no signing key, pseudonymisation key or SMTP password in the repository,
the logs or the outputs; and a key rotation keeps what the old key signed verifiable.

The commands that use the keys run as a person or a scheduler would run them, each in its own process,
with the root logger at DEBUG into a log file (SQLAlchemy then logs every statement and its
parameters): ``charter keys init``, ``hash``, ``verify`` (intact, then corrupted: an incident),
``scan`` (an undeclared phone column: an incident), ``pseudonymise``, ``alerts relay`` against a local
SMTP server that asks for a password and refuses it, ``audit verify``; then ``hash`` and
``pseudonymise`` again with the keys given by environment variables, as an Airflow deployment does.
The SMTP password is also set on Airflow's ``smtp_default`` connection (``AIRFLOW_CONN_SMTP_DEFAULT``).

Then every file of CHARTER_HOME except ``keys/`` (reports, Data Docs, pseudonymised data, the ledger
database and a text dump of it, the audit anchor, the debug log, each command's stdout and stderr) and
every file of the repository (tracked and untracked) is searched for each secret, as raw bytes, hex,
base64 (standard, URL-safe, unpadded), PEM lines, and for the password also the SMTP AUTH PLAIN blob.
Zero hits. The same search finds them in ``keys/``, so it is not blind.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socketserver
import sqlite3
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.conftest import CHECKOUT_CONFIG

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "include" / "policies" / "citizen_requests.yaml"
SMTP_USER = "relais-charte"
#: Each command runs like this: the CLI, with every logger at DEBUG into one file.
BOOT = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, filename=sys.argv[1], format="%(asctime)s %(name)s %(levelname)s %(message)s")
# SQLAlchemy holds itself at WARNING unless told: every statement and parameter
logging.getLogger("sqlalchemy").setLevel(logging.DEBUG)
sys.argv = ["charter", *sys.argv[2:]]
from charter_guardrails.cli.main import entry
entry()
"""


class _SmtpAskingForAPassword(socketserver.StreamRequestHandler):
    """Enough SMTP to make smtplib log in: AUTH is offered, every attempt is refused (535), as a relay would."""

    seen: ClassVar[list[bytes]] = []  # shared by every connection: the test reads it once the client is done

    def handle(self) -> None:
        self.wfile.write(b"220 relais.example ESMTP\r\n")
        for line in self.rfile:
            type(self).seen.append(line)
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                self.wfile.write(b"250-relais.example\r\n250-AUTH PLAIN LOGIN\r\n250 OK\r\n")
            elif command.startswith(b"AUTH"):
                self.wfile.write(b"535 5.7.8 Error: authentication failed\r\n")
            elif command == b"QUIT":
                self.wfile.write(b"221 Bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpAskingForAPassword)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _charter(env: dict[str, str], log: Path, out_dir: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", BOOT, str(log), *args], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    (out_dir / f"{name}.stdout").write_text(proc.stdout, encoding="utf-8")
    (out_dir / f"{name}.stderr").write_text(proc.stderr, encoding="utf-8")
    assert "Traceback" not in proc.stderr, (name, proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, smtp_server: int) -> dict[str, Any]:
    """Run the commands; return CHARTER_HOME and the secrets they used."""
    work = tmp_path_factory.mktemp("secrets")
    home = work / "charter"
    logs = home / "logs"
    logs.mkdir(parents=True)
    password = "Smtp-" + secrets.token_urlsafe(18)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHARTER_", "AIRFLOW_CONN_"))}
    env.update(
        {
            **CHECKOUT_CONFIG,
            "CHARTER_HOME": str(home),
            "PYTHONDONTWRITEBYTECODE": "1",
            "CHARTER_SMTP_HOST": "127.0.0.1",
            "CHARTER_SMTP_PORT": str(smtp_server),
            "CHARTER_SMTP_USER": SMTP_USER,
            "CHARTER_SMTP_PASSWORD": password,
            "AIRFLOW_CONN_SMTP_DEFAULT": (
                f"smtp://{SMTP_USER}:{urllib.parse.quote(password, safe='')}@127.0.0.1:{smtp_server}"
            ),
        }
    )
    log = logs / "charter-debug.log"
    data = home / "data" / "citizen_requests"
    dataset = "citizen_requests.training"

    def run(
        name: str, *args: str, expect: int = 0, environ: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = _charter(environ or env, log, logs, name, *args)
        assert proc.returncode == expect, (name, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
        return proc

    run("01-keys-init", "keys", "init")
    run("02-ledger-migrate", "ledger", "migrate")
    run("03-data", "data", "generate", "--rows", "300", "--use-case", "citizen_requests")
    run("04-hash", "hash", str(data / "training.csv"), "--dataset", dataset)
    run("05-verify", "verify", str(data / "training.csv"), "--dataset", dataset)
    run(
        "06-verify-corrupted", "verify", str(data / "training__corrupted.csv"), "--dataset", dataset, "--json", expect=1
    )
    run(
        "07-scan",
        "scan",
        str(data / "training__pii_leak.csv"),
        "--policy",
        str(POLICY),
        "--run-id",
        "secrets-scan",
        expect=1,
    )
    run(
        "08-pseudonymise",
        "pseudonymise",
        str(data / "training.csv"),
        str(home / "work" / "training__pseudonymised.csv"),
        "--policy",
        str(POLICY),
    )
    relay = run("09-alerts-relay", "alerts", "relay", "--once", "--json", expect=1)
    run("10-incidents", "incidents", "list", "--json")
    # the keys given by environment variables, as Airflow's variables or a secrets backend would
    keys_dir = home / "keys"
    pem = (keys_dir / "signing_ed25519.pem").read_text(encoding="ascii")
    pseudo = (keys_dir / "pseudonymisation.key").read_text(encoding="ascii").strip()
    env_keys = {
        **env,
        "CHARTER_SIGNING_KEY": pem,
        "CHARTER_PSEUDONYMISATION_KEY": pseudo,
        "CHARTER_KEYS_DIR": str(work / "no-keys"),
    }
    env_keys["CHARTER_PUBLIC_KEY"] = (keys_dir / "signing_ed25519.pub").read_text(encoding="ascii")
    run(
        "11-hash-env-keys",
        "hash",
        str(data / "inference_batch.csv"),
        "--dataset",
        "citizen_requests.inference",
        environ=env_keys,
    )
    run(
        "12-pseudonymise-env-keys",
        "pseudonymise",
        str(data / "inference_batch.csv"),
        str(home / "work" / "inference__pseudonymised.csv"),
        "--policy",
        str(POLICY),
        "--dataset",
        "inference",
        environ=env_keys,
    )
    run("13-audit-verify", "audit", "verify", "--json")
    with sqlite3.connect(home / "ledger.db") as conn:
        (logs / "ledger-dump.sql").write_text("\n".join(conn.iterdump()), encoding="utf-8")
    return {"home": home, "password": password, "pem": pem, "pseudo": pseudo, "relay": json.loads(relay.stdout)}


def _b64_forms(raw: bytes) -> set[bytes]:
    std = base64.b64encode(raw)
    return {std, std.rstrip(b"="), base64.urlsafe_b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"=")}


def _forms(ran: dict[str, Any]) -> dict[str, set[bytes]]:
    """Every form in which each secret could leak."""
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(ran["pem"].encode("ascii"), password=None)
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem_lines = {line.encode() for line in ran["pem"].splitlines() if "PRIVATE KEY" not in line and len(line) >= 16}
    pseudo = base64.b64decode(ran["pseudo"])
    password = ran["password"].encode()
    forms = {
        "signing key": {
            seed,
            seed.hex().encode(),
            seed.hex().upper().encode(),
            der,
            der.hex().encode(),
            ran["pem"].encode(),
            *pem_lines,
            *_b64_forms(seed),
            *_b64_forms(der),
        },
        "pseudonymisation key": {pseudo, pseudo.hex().encode(), pseudo.hex().upper().encode(), *_b64_forms(pseudo)},
        "SMTP password": {
            password,
            urllib.parse.quote(ran["password"], safe="").encode(),
            *_b64_forms(password),
            *_b64_forms(f"\0{SMTP_USER}\0{ran['password']}".encode()),
        },
    }
    return {name: {f for f in values if len(f) >= 12} for name, values in forms.items()}


def _hits(files: list[Path], forms: dict[str, set[bytes]]) -> list[str]:
    hits = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for secret, values in forms.items():
            if any(v in data for v in values):
                hits.append(f"{secret} in {path}")
    return hits


def test_the_commands_used_the_secrets(ran: dict[str, Any]) -> None:
    """The search below means something only if the secrets were in play."""
    auth = [line for line in _SmtpAskingForAPassword.seen if line.upper().startswith(b"AUTH PLAIN")]
    blob = base64.b64encode(f"\0{SMTP_USER}\0{ran['password']}".encode())
    assert any(blob in line for line in auth), "the relay never offered the password to the SMTP server"
    assert ran["relay"]["failed"] >= 1
    assert ran["relay"]["delivered"] == 0
    home = ran["home"]
    assert (home / "work" / "training__pseudonymised.csv").exists()
    assert (home / "work" / "inference__pseudonymised.csv").exists()
    log = (home / "logs" / "charter-debug.log").read_text(encoding="utf-8", errors="replace")
    assert " DEBUG " in log, "the debug log holds SQL statements and their parameters"
    assert "INSERT INTO audit_events" in log, "the debug log holds SQL statements and their parameters"
    # the same search finds the keys where they belong
    keys = list((home / "keys").rglob("*"))
    found = _hits([p for p in keys if p.is_file()], _forms(ran))
    assert any(h.startswith("signing key") for h in found), found
    assert any(h.startswith("pseudonymisation key") for h in found), found


def test_no_secret_in_outputs_logs_or_ledger(ran: dict[str, Any]) -> None:
    home = ran["home"]
    files = [p for p in home.rglob("*") if p.is_file() and "keys" not in p.relative_to(home).parts]
    names = {p.relative_to(home).parts[0] for p in files}
    assert {"logs", "reports", "work", "audit", "ledger.db"} <= names, names
    assert any(p.suffix == ".html" for p in files)
    assert any(p.name.endswith(".sql") for p in files)
    assert not _hits(files, _forms(ran))


def test_no_secret_in_the_repository(ran: dict[str, Any]) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    files = [ROOT / name for name in listed.stdout.decode().split("\0") if name]
    files = [p for p in files if p.is_file() and p.stat().st_size < 50 * 1024 * 1024]
    assert len(files) > 100
    assert not _hits(files, _forms(ran))


def test_key_files_are_private(ran: dict[str, Any]) -> None:
    keys = ran["home"] / "keys"
    assert (keys.stat().st_mode & 0o777) == 0o700
    for name in ("signing_ed25519.pem", "pseudonymisation.key"):
        assert ((keys / name).stat().st_mode & 0o777) == 0o600, name


# ------------------------------------------------------------------------------------------------
# rotation


def test_rotation_keeps_old_manifests_and_audit_heads_verifiable(
    charter_home: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``charter keys rotate`` (and ``keys init --force``) retire the old public key instead of dropping it: what
    the old key signed, manifests and audit heads, still verifies with public keys only. Without the retired key it
    would not."""
    from charter_guardrails.cli.main import main as charter
    from charter_guardrails.core.keys import load_pseudonymisation_key
    from charter_guardrails.ledger.models import AuditCheckpoint, Manifest
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    data = charter_home / "data"
    data.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in ("training", "inference", "extra"):
        files[name] = data / f"{name}.csv"
        files[name].write_text("a;b\n" + "".join(f"{i};{name}{i}\n" for i in range(40)), encoding="utf-8")

    def cli(*args: str) -> tuple[int, Any]:
        code = charter(list(args))
        out = capsys.readouterr().out
        try:
            return code, json.loads(out)
        except ValueError:
            return code, out

    pseudo_before = load_pseudonymisation_key()
    assert cli("hash", str(files["training"]), "--dataset", "citizen_requests.training")[0] == 0
    code, rotated = cli("keys", "rotate", "--json")
    assert code == 0
    assert rotated["retired_key_id"] != rotated["key_id"]
    assert load_pseudonymisation_key() == pseudo_before, "rotating the signing key must not change the pseudonyms"
    assert cli("hash", str(files["inference"]), "--dataset", "citizen_requests.inference")[0] == 0
    assert cli("keys", "init", "--force")[0] == 0  # the other way to replace the keys
    assert cli("hash", str(files["extra"]), "--dataset", "waste_tonnage.training")[0] == 0

    keys_dir = charter_home / "keys"
    (keys_dir / "signing_ed25519.pem").unlink()  # from here on, public keys only
    with ledger_session() as session:
        assert len(set(session.scalars(select(Manifest.key_id)))) == 3
        assert len(set(session.scalars(select(AuditCheckpoint.key_id)))) == 3
    assert len(list((keys_dir / "retired").glob("*.pub"))) == 2
    for name, ref in (
        ("training", "citizen_requests.training"),
        ("inference", "citizen_requests.inference"),
        ("extra", "waste_tonnage.training"),
    ):
        code, result = cli("verify", str(files[name]), "--dataset", ref, "--no-record", "--json")
        assert code == 0, (name, result)
        assert result["outcome"] == "intact", (name, result)
    code, report = cli("audit", "verify", "--json")
    assert code == 0, report
    assert report["ok"], report

    # the control: without the retired keys, the old manifests and heads no longer verify
    for path in (keys_dir / "retired").glob("*.pub"):
        path.unlink()
    code, result = cli(
        "verify", str(files["training"]), "--dataset", "citizen_requests.training", "--no-record", "--json"
    )
    assert code == 1, result
    assert result["outcome"] == "unknown_key", result
    code, report = cli("audit", "verify", "--json")
    assert code == 1
    assert "unknown key" in json.dumps(report["problems"])
