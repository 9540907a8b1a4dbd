"""The DPO's documents in the governance view: the governance role lists each use case's register entry and AIPD
draft and opens them as HTML, JSON and signed PDF; a viewer or an operator outside governance gets 403; files are
served from the DPO folder only. In process, with the simple auth manager deciding the roles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from charte_ledger import LEAKED_PHONE

HTML = {"Accept": "text/html"}


def test_governance_lists_and_opens_the_dpo_documents(view: Any, charter_home: Path) -> None:
    from charter_guardrails.core.keys import load_public_key
    from charter_guardrails.reporting.report_signing import verify_report

    page = view.client.get("/dpo", headers=HTML)
    assert page.status_code == 200, page.text[:500]
    assert "Documents du DPO" in page.text
    for use_case in ("citizen_requests", "waste_tonnage"):
        assert f'<tr data-use-case="{use_case}">' in page.text
        for kind in ("registre", "aipd"):
            for fmt in ("html", "json", "pdf"):
                assert f'href="/dpo/documents/{kind}-{use_case}.{fmt}"' in page.text

    html = view.client.get("/dpo/documents/aipd-citizen_requests.html")
    assert html.status_code == 200
    assert "Vraisemblance" in html.text
    assert "à compléter par le DPO" in html.text
    register = view.client.get("/dpo/documents/registre-waste_tonnage.json")
    assert register.status_code == 200
    assert "processing.entry_ref" in register.json()["completeness"]["missing"]
    aipd = view.client.get("/dpo/documents/aipd-citizen_requests.json").json()
    assert aipd["ledger_history"]["personal_data_findings"]["FR_PHONE"]["not_allowed"] == 37
    for text in (html.text, register.text, json.dumps(aipd, ensure_ascii=False)):
        assert LEAKED_PHONE not in text
        assert "06 ** ** ** 78" not in text

    pdf = view.client.get("/dpo/documents/registre-citizen_requests.pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")
    written = charter_home / "reports" / "dpo" / "registre-citizen_requests.pdf"
    assert written.read_bytes() == pdf.content
    assert verify_report(written, load_public_key()).ok
    page = view.client.get("/dpo", headers=HTML).text
    assert 'href="/dpo/fichiers/registre-citizen_requests.pdf.sig.json"' in page
    signature = view.client.get("/dpo/fichiers/registre-citizen_requests.pdf.sig.json")
    assert signature.status_code == 200
    assert signature.json()["file"] == "registre-citizen_requests.pdf"

    for unknown in ("/dpo/documents/registre-nobody.html", "/dpo/documents/registre-citizen_requests.exe"):
        assert view.client.get(unknown).status_code == 404, unknown


def test_the_dpo_folder_serves_nothing_else(view: Any, charter_home: Path) -> None:
    folder = charter_home / "reports" / "dpo"
    folder.mkdir(parents=True)
    (folder / "registre-evil.html").symlink_to(charter_home / "keys" / "signing_ed25519.pem")
    (folder / "notes.txt").write_text("pas un document du DPO", encoding="utf-8")
    for name in ("registre-evil.html", "notes.txt", "..%2Fkeys%2Fsigning_ed25519.pem", "%2E%2E%2F..%2Fledger.db"):
        response = view.client.get(f"/dpo/fichiers/{name}")
        assert response.status_code == 404, name
        assert "PRIVATE KEY" not in response.text


@pytest.mark.parametrize("role", ["viewer", "user"])
def test_a_user_outside_governance_gets_403(view: Any, role: str) -> None:
    view.as_role(role)
    for path in ("/dpo", "/dpo/documents/registre-citizen_requests.json", "/dpo/fichiers/aipd-waste_tonnage.pdf"):
        response = view.client.get(path, headers=HTML)
        assert response.status_code == 403, f"{role} GET {path} -> {response.status_code}"
        assert "Action r" in response.text  # refusée (no right to act) or réservée à la gouvernance
        assert "dpo/documents" not in response.text
        assert "ampmetropole" not in response.text
    assert view.client.get("/", headers=HTML).status_code == 200  # the rest of the view stays readable
