"""integrity: register signed manifests, verify them, catch the corrupted variant as a security incident, \
deliver its alert.

1. ``charter hash`` registers a signed Merkle manifest of every sample dataset;
2. the ``integrity_monitor`` DAG re-verifies every registered dataset (all intact);
3. ``charter verify`` on ``training__corrupted.csv`` exits 1 and raises an integrity incident;
4. the ``incident_alert_relay`` DAG delivers its alerts to a local SMTP catcher (aiosmtpd on
   loopback), which writes each message as an ``.eml`` file under ``$CHARTER_HOME/mail/``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ART33_FIELDS = (
    "detected_at",
    "breach_type",
    "nature",
    "facts",
    "dataset",
    "use_case",
    "data_subject_categories",
    "approx_records",
    "likely_consequences",
    "measures_taken",
    "dpo_contact",
    "notify_deadline",
    "status",
)


def _charter(*argv: str) -> tuple[int, Any]:
    """Run the CLI in-process with ``--json``; return (exit code, parsed output)."""
    from charter_guardrails.cli.main import main as charter

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = charter([*argv, "--json"])
    text = out.getvalue().strip()
    return code, (json.loads(text) if text else None)


class MailCatcher:
    """aiosmtpd handler: each received message becomes ``<folder>/<n>-<idempotency key>.eml``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: list[Path] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import email
        from email.policy import default

        message = email.message_from_bytes(envelope.content, policy=default)
        key = str(message.get("X-Idempotency-Key", "no-key"))[:16]
        path = self.folder / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{len(self.files) + 1:02d}-{key}.eml"
        path.write_bytes(envelope.content)
        self.files.append(path)
        return "250 OK"


@contextlib.contextmanager
def smtp_catcher(folder: Path) -> Iterator[tuple[MailCatcher, int]]:
    from aiosmtpd.controller import Controller

    folder.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    catcher = MailCatcher(folder)
    controller = Controller(catcher, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield catcher, port
    finally:
        controller.stop()


def run(ctx: Any) -> None:
    from charter_guardrails.core.policy import UseCasePolicy, policy_files
    from charter_guardrails.core.settings import get_settings

    settings = get_settings()
    registered = 0
    for path in policy_files():
        policy = UseCasePolicy.from_file(path)
        for dataset in policy.datasets:
            if dataset.path is None or not dataset.resolve_path().exists():
                continue
            code, data = _charter("hash", str(dataset.resolve_path()), "--dataset", f"{policy.id}.{dataset.id}")
            ctx.expect(
                code == 0,
                f"registered {policy.id}.{dataset.id}: manifest #{data and data.get('manifest_id')}, "
                f"{data and data.get('leaves')} leaf/leaves, root {(data or {}).get('merkle_root', '?')[:16]}…",
            )
            registered += code == 0

    ctx.dag_test("integrity_monitor")

    corrupted = settings.data_dir / "citizen_requests" / "training__corrupted.csv"
    code, result = _charter("verify", str(corrupted), "--dataset", "citizen_requests.training")
    ctx.expect(
        code == 1 and result["outcome"] == "data_changed",
        f"charter verify {corrupted.name} --dataset citizen_requests.training -> exit {code}:"
        f" {result and result['summary']}",
    )
    incident_id = result and result.get("incident_id")
    code, incidents = _charter("incidents", "list")
    incident = next((i for i in incidents or [] if i["id"] == incident_id), None)
    missing = [f for f in ART33_FIELDS if incident is None or incident.get(f) in (None, "", [], {})]
    ctx.expect(
        incident is not None and not missing,
        f"incident #{incident_id} in `charter incidents list --json` with every Art. 33 field filled"
        + (
            f" (missing: {missing})"
            if missing
            else f"; notify before {incident and incident['notify_deadline'][:16]} UTC"
        ),
    )

    mail_dir = settings.home / "mail"
    with smtp_catcher(mail_dir) as (catcher, port):
        saved = {k: os.environ.get(k) for k in ("CHARTER_SMTP_HOST", "CHARTER_SMTP_PORT")}
        os.environ.update({"CHARTER_SMTP_HOST": "127.0.0.1", "CHARTER_SMTP_PORT": str(port)})
        try:
            ctx.dag_test("incident_alert_relay")
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    code, shown = _charter("incidents", "show", str(incident_id)) if incident_id else (2, None)
    delivered = [a for a in (shown or {}).get("alerts", []) if a["status"] == "delivered"]
    ctx.expect(
        bool(delivered)
        and len(delivered) == len((shown or {}).get("alerts", []))
        and len(catcher.files) >= len(delivered),
        f"{len(delivered)} alert e-mail(s) of incident #{incident_id} delivered to the local SMTP catcher"
        f" (aiosmtpd, port {port})",
    )
    for path in catcher.files:
        print(f"    read the alert: {path}")
