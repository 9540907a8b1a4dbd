"""The committee's charter report as files: ``charter report charter`` writes signed HTML, JSON and PDF;
``charter report verify`` checks them with the public key only; the engagements table fits a 1280-pixel
screen and an A4 landscape page; the view exports the same document as a PDF.

The ledger is the UI tier's (``charte_ledger.populate_ledger``: a blocked refresh with failures and two
open incidents, a published run with its model version), written through the ledger's store.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from charte_ledger import LedgerRows


def _pdf_text(path: Path) -> str:
    """The PDF's text in content order (``-raw``: each table cell stays whole), whitespace collapsed."""
    assert shutil.which("pdftotext"), "pdftotext is missing: run `make ui-deps` (apt-get install poppler-utils)"
    proc = subprocess.run(
        ["pdftotext", "-raw", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True
    )
    return " ".join(proc.stdout.split())


def _page_sizes(path: Path) -> set[tuple[int, int]]:
    """Every page's size in points, rounded, from ``pdfinfo``."""
    assert shutil.which("pdfinfo"), "pdfinfo is missing: run `make ui-deps` (apt-get install poppler-utils)"
    proc = subprocess.run(["pdfinfo", "-f", "1", "-l", "999", str(path)], capture_output=True, text=True, check=True)
    sizes = re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+) pts", proc.stdout)
    assert sizes, proc.stdout
    return {(round(float(w)), round(float(h))) for w, h in sizes}


def _charter(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from charter_guardrails.cli.main import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def written(ui_ledger: tuple[str, LedgerRows], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Path]:
    """``charter report charter`` on the UI tier's ledger, every format, into a temporary folder."""
    code, out, err = _charter(["report", "charter", "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    paths = [Path(line) for line in out.splitlines() if line.strip()]
    by_suffix = {p.suffix.lstrip("."): p for p in paths if not p.name.endswith(".sig.json")}
    assert sorted(by_suffix) == ["html", "json", "pdf"]
    assert all(p.is_file() for p in paths)
    assert {p.name for p in paths if p.name.endswith(".sig.json")} == {f"{p.name}.sig.json" for p in by_suffix.values()}
    assert "WeasyPrint" in err
    assert "pages laid out" in err
    return by_suffix


def test_the_pdf_holds_every_engagement_and_every_status(written: dict[str, Path]) -> None:
    from charter_guardrails.core.engagements import load_engagements

    doc = json.loads(written["json"].read_text(encoding="utf-8"))
    text = _pdf_text(written["pdf"])
    engagements = load_engagements()
    assert len(engagements) == 21
    assert len(doc["engagements"]) == 21
    for eng in engagements:
        assert eng.label in text, f"{eng.label} is not in the PDF"
        opening = " ".join(eng.text.split()[:9])
        assert opening in text, f"the text of {eng.label} ({opening!r}) is not in the PDF"
    statuses = [e["status"] for e in doc["engagements"]]
    assert len(set(statuses)) >= 2
    for status in set(statuses):
        # once per engagement row, and once more in the header and the summary's heading
        assert text.count(status) >= statuses.count(status) + 1, status
    assert doc["summary"]["by_status"] == {s: statuses.count(s) for s in doc["summary"]["by_status"]}
    assert sum(doc["summary"]["by_status"].values()) == 21
    head = doc["chain_head"]
    assert head["verified"] is True
    assert head["hash"] in text
    assert f"événement n° {head['seq']}" in text


def test_the_document_summarises_use_cases_risks_and_the_chain_head(
    written: dict[str, Path], ui_ledger: tuple[str, LedgerRows]
) -> None:
    from charter_guardrails.ledger.models import AuditEvent
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import func, select

    _, rows = ui_ledger
    doc = json.loads(written["json"].read_text(encoding="utf-8"))
    principles = {p["principle"]: p for p in doc["summary"]["principles"]}
    assert list(principles) == [
        "transparence",
        "equite",
        "maitrise_humaine",
        "durabilite",
        "surete",
        "proportionnalite",
    ]
    assert sum(p["engagements"] for p in principles.values()) == 21
    use_cases = {u["use_case"]: u for u in doc["summary"]["use_cases"]}
    citizen, waste = use_cases["citizen_requests"], use_cases["waste_tonnage"]
    assert citizen["runs"] == 1
    assert citizen["decisions"] == {"blocked": 1}
    assert citizen["results"] == {"pass": 3, "warn": 1, "fail": 3}
    assert citizen["incidents"] == {"open": 2, "total": 2}
    assert citizen["model_versions"] == 0
    assert waste["results"] == {"pass": 2, "warn": 0, "fail": 0}
    assert waste["approvals"] == 1
    assert waste["overrides"] == 0
    assert waste["model_versions"] == 1
    risks = doc["open_risks"]
    assert {i["id"] for i in risks["incidents"]} == {rows.incident_id, rows.pii_incident_id}
    standing = {(f["use_case"], f["check"]) for f in risks["standing_failures"]}
    assert standing == {
        ("citizen_requests", "integrity"),
        ("citizen_requests", "personal_data"),
        ("citizen_requests", "drift"),
    }
    not_evaluated = [e["id"] for e in doc["engagements"] if e["status"] == "non évalué"]
    assert [e["id"] for e in risks["not_evaluated"]] == not_evaluated
    with ledger_session() as session:
        last_seq = session.scalar(select(func.max(AuditEvent.seq)))
        last_hash = session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == last_seq))
    assert doc["chain_head"]["seq"] == last_seq
    assert doc["chain_head"]["hash"] == last_hash
    signature = json.loads(Path(f"{written['pdf']}.sig.json").read_text(encoding="utf-8"))
    assert signature["chain_head"] == {"seq": last_seq, "hash": last_hash, "verified": True}
    assert signature["algorithm"] == "Ed25519"
    assert re.fullmatch(r"[0-9a-f]{64}", signature["sha256"])
    assert set(signature) >= {"sha256", "signature", "key_id", "signed_at", "chain_head", "file"}


def test_verify_uses_the_public_key_only_and_detects_one_changed_byte(
    written: dict[str, Path], charter_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from charter_guardrails.core.keys import PUBLIC_KEY_FILE, SIGNING_KEY_FILE

    keys_dir = charter_home / "keys"
    public = tmp_path / "public.pem"
    shutil.copy(keys_dir / PUBLIC_KEY_FILE, public)
    (keys_dir / SIGNING_KEY_FILE).unlink()  # from here on, only the public key exists
    pdf = written["pdf"]

    code, out, err = _charter(["report", "verify", str(pdf), "--public-key", str(public)], capsys)
    assert code == 0, err
    assert out.startswith("ok:")
    for fmt in ("html", "json"):
        code, _, err = _charter(["report", "verify", str(written[fmt])], capsys)
        assert code == 0, err

    copy = tmp_path / "copie.pdf"
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    shutil.copy(Path(f"{pdf}.sig.json"), Path(f"{copy}.sig.json"))
    code, _, err = _charter(["report", "verify", str(copy), "--public-key", str(public)], capsys)
    assert code == 1
    assert "changed after it was signed" in err

    Path(f"{copy}.sig.json").unlink()
    code, _, err = _charter(["report", "verify", str(copy), "--public-key", str(public)], capsys)
    assert code == 2
    assert "no signature file" in err
    assert "charter report charter" in err


def test_verify_refuses_a_forged_signature_file_and_another_key(
    written: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    html = written["html"]
    sig_path = Path(f"{html}.sig.json")
    fields = json.loads(sig_path.read_text(encoding="utf-8"))
    fields["chain_head"]["seq"] += 1  # the signed metadata changed, the file did not
    sig_path.write_text(json.dumps(fields), encoding="utf-8")
    code, _, err = _charter(["report", "verify", str(html)], capsys)
    assert code == 1
    assert "signature does not match" in err

    other = tmp_path / "other.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    code, _, err = _charter(["report", "verify", str(written["pdf"]), "--public-key", str(other)], capsys)
    assert code == 1
    assert "not the public key given" in err

    sig_path.write_text("{not json", encoding="utf-8")
    code, _, err = _charter(["report", "verify", str(html)], capsys)
    assert code == 2
    assert "unreadable" in err


def test_the_engagements_table_fits_1280_pixels_and_an_a4_landscape_page(
    written: dict[str, Path], browser: Any, artifacts: Path
) -> None:
    html = written["html"].read_text(encoding="utf-8")
    assert re.search(r"@page\s*\{[^}]*size:\s*A4 landscape", html)
    assert "table-layout: fixed" in html
    assert "overflow-wrap: anywhere" in html
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the page must fetch nothing"
    assert _page_sizes(written["pdf"]) == {(842, 595)}

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.set_content(html, wait_until="load")
        layout = page.evaluate(
            """() => {
              const table = document.querySelector('#engagements');
              const header = [...table.querySelectorAll('thead th')].map(th => th.textContent.trim());
              const cells = [...table.querySelectorAll('td')];
              const status = [...table.querySelectorAll('tr.engagement td:last-child')].map(td => {
                const r = td.getBoundingClientRect(), badge = td.querySelector('.status').getBoundingClientRect();
                return {left: r.left, right: r.right, width: r.width, badgeRight: badge.right, text: td.innerText};
              });
              return {
                viewport: window.innerWidth,
                scrollWidth: document.documentElement.scrollWidth,
                tableRight: table.getBoundingClientRect().right,
                header,
                status,
                overflowing: cells.filter(td => td.scrollWidth > td.clientWidth + 1)
                  .map(td => td.innerText.slice(0, 60)),
              };
            }"""
        )
        page.screenshot(path=str(artifacts / "rapport-charte-1280.png"), full_page=True)
    finally:
        page.close()
    assert layout["viewport"] == 1280
    assert layout["scrollWidth"] <= 1280, "the page scrolls sideways"
    assert layout["tableRight"] <= 1280
    assert layout["header"][-1] == "État"
    assert len(layout["status"]) == 21
    for cell in layout["status"]:
        assert cell["width"] > 60
        assert 0 <= cell["left"] < cell["right"] <= 1280
        assert cell["badgeRight"] <= cell["right"]
        assert cell["text"].strip()
    assert layout["overflowing"] == []


def test_the_view_exports_the_document_as_pdf_and_html_for_a_reader(
    ui_ledger: tuple[str, LedgerRows], tmp_path: Path
) -> None:
    from charter_airflow.ui.app import create_app
    from charter_airflow.ui.scope import EVERYTHING, bind_scope
    from charter_airflow.ui.security import require_reader
    from fastapi.testclient import TestClient

    app = create_app()
    app.dependency_overrides[require_reader] = lambda: SimpleNamespace(get_name=lambda: "viewer")
    app.dependency_overrides[bind_scope] = lambda: EVERYTHING  # the stubbed reader sees all
    client = TestClient(app)

    pdf = client.get("/rapport-charte/export.pdf", params={"debut": "2026-01-01", "fin": "2026-12-31"})
    assert pdf.status_code == 200, pdf.text[:500]
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == 'attachment; filename="rapport-charte-2026-01-01-2027-01-01.pdf"'
    assert pdf.content.startswith(b"%PDF-")
    target = tmp_path / "export.pdf"
    target.write_bytes(pdf.content)
    text = _pdf_text(target)
    assert "Proportionnalité 3" in text
    assert _page_sizes(target) == {(842, 595)}

    html = client.get("/rapport-charte/export.html", params={"debut": "2026-01-01", "fin": "2026-12-31"})
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert html.text.count('<tr class="engagement"') == 21
    assert "Synthèse par cas d'usage" in html.text
    assert "@page" in html.text

    document = client.get("/rapport-charte/export.json").json()
    assert len(document["engagements"]) == 21
    assert document["chain_head"]["verified"] is True

    assert client.get("/rapport-charte/export.pdf", params={"debut": "2026-13-01"}).status_code == 422


def test_the_views_pdf_export_is_signed_beside_the_clis_files_and_verifies_with_the_public_key(
    ui_ledger: tuple[str, LedgerRows], charter_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from charter_airflow.ui.app import create_app
    from charter_airflow.ui.scope import EVERYTHING, bind_scope
    from charter_airflow.ui.security import require_reader
    from charter_guardrails.core.keys import PUBLIC_KEY_FILE, SIGNING_KEY_FILE
    from charter_guardrails.core.settings import get_settings
    from fastapi.testclient import TestClient

    app = create_app()
    app.dependency_overrides[require_reader] = lambda: SimpleNamespace(get_name=lambda: "viewer")
    app.dependency_overrides[bind_scope] = lambda: EVERYTHING  # the stubbed reader sees all
    client = TestClient(app)
    folder = get_settings().reports_dir / "charte"
    assert folder.is_relative_to(charter_home)
    name = "rapport-charte-2026-01-01-2027-01-01.pdf"

    response = client.get("/rapport-charte/export.pdf", params={"debut": "2026-01-01", "fin": "2026-12-31"})
    assert response.status_code == 200, response.text[:500]
    pdf = folder / name
    assert pdf.read_bytes() == response.content
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [name, f"{name}.sig.json"]
    assert response.headers["link"] == f'</rapport-charte/fichiers/{name}.sig.json>; rel="signature"'

    served = client.get(f"/rapport-charte/fichiers/{name}.sig.json")
    assert served.status_code == 200
    assert served.content == (folder / f"{name}.sig.json").read_bytes()
    assert served.json()["file"] == name
    assert client.get(f"/rapport-charte/fichiers/{name}").content == response.content

    keys_dir = charter_home / "keys"
    public = tmp_path / "public.pem"
    shutil.copy(keys_dir / PUBLIC_KEY_FILE, public)
    (keys_dir / SIGNING_KEY_FILE).unlink()  # from here on, only the public key exists
    code, out, err = _charter(["report", "verify", str(pdf), "--public-key", str(public)], capsys)
    assert code == 0, err
    assert out.startswith("ok:")

    # without the signing key the view serves no unsigned PDF
    refused = client.get("/rapport-charte/export.pdf", params={"debut": "2026-01-01", "fin": "2026-12-31"})
    assert refused.status_code == 503
    assert "clé de signature" in refused.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/rapport-charte/fichiers/../keys/x",
        "/rapport-charte/fichiers/..%2Fkeys%2Fsigning_ed25519.pem",
        "/rapport-charte/fichiers/%2E%2E",
        "/rapport-charte/fichiers/signing_ed25519.pem",
        "/rapport-charte/fichiers/rapport-charte-2026-01-01-2027-01-01.txt",
        "/rapport-charte/fichiers/rapport-charte-2025-01-01-2025-07-01.pdf",
        "/rapport-charte/fichiers/.rapport-charte.lock",
    ],
)
def test_the_report_files_route_serves_only_the_writers_files(
    ui_ledger: tuple[str, LedgerRows], charter_home: Path, path: str
) -> None:
    from charter_airflow.ui.app import create_app
    from charter_airflow.ui.scope import EVERYTHING, bind_scope
    from charter_airflow.ui.security import require_reader
    from charter_guardrails.core.settings import get_settings
    from fastapi.testclient import TestClient

    folder = get_settings().reports_dir / "charte"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("rapport-charte-2026-01-01-2027-01-01.txt", ".rapport-charte.lock", "signing_ed25519.pem"):
        (folder / name).write_text("x", encoding="utf-8")
    (charter_home / "keys" / "x").write_text("secret", encoding="utf-8")
    app = create_app()
    app.dependency_overrides[require_reader] = lambda: SimpleNamespace(get_name=lambda: "viewer")
    app.dependency_overrides[bind_scope] = lambda: EVERYTHING  # the stubbed reader sees all
    response = TestClient(app).get(path)
    assert response.status_code == 404
    assert "secret" not in response.text


def test_the_open_risks_list_each_engagement_without_a_valid_attestation(ui_ledger: tuple[str, LedgerRows]) -> None:
    from datetime import UTC, datetime, timedelta

    from charter_guardrails.core.engagements import EngagementKind, load_engagements
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting.attestations import record_attestation
    from charter_guardrails.reporting.charter_document import build_document
    from charter_guardrails.reporting.charter_document_html import render_html
    from charter_guardrails.reporting.charter_report import parse_period

    organisational = [e.id for e in load_engagements() if e.kind is EngagementKind.ORGANISATIONAL]
    assert len(organisational) >= 3
    attested, expired = organisational[0], organisational[1]
    today = datetime.now(UTC).date()
    with ledger_session() as session:
        for engagement, attested_on, expires_on in (
            (attested, today - timedelta(days=10), today + timedelta(days=365)),
            (expired, today - timedelta(days=400), today - timedelta(days=35)),
        ):
            record_attestation(
                session,
                engagement_id=engagement,
                statement="Revue annuelle tenue par le comité, compte rendu signé.",
                document_ref="CR-COMITE-2026-01",
                attested_by="Secrétariat du Comité",
                attested_on=attested_on,
                expires_on=expires_on,
            )
        session.commit()
    start, end = parse_period(None, None)
    with ledger_session() as session:
        doc = build_document(session, start, end)

    risks = {r["id"]: r for r in doc["open_risks"]["attestations"]}
    for engagement in organisational:
        if engagement == attested:
            assert engagement not in risks
        else:
            assert engagement in risks, f"{engagement} has no valid attestation but is not an open risk"
    assert risks[expired]["attestation"] == "expired"
    assert risks[expired]["expires_on"] == (today - timedelta(days=35)).isoformat()
    for engagement in organisational[2:]:
        assert risks[engagement]["attestation"] == "missing"
    needing = {e["id"] for e in doc["engagements"] if e["needs_attestation"]}
    assert set(risks) <= needing
    assert set(risks) == {
        e["id"] for e in doc["engagements"] if e["needs_attestation"] and not (e["attestation"] or {}).get("valid")
    }
    by_id = {e["id"]: e for e in doc["engagements"]}
    assert by_id[attested]["status"] == "attesté"
    assert by_id[expired]["status"] == "non évalué"

    html = render_html(doc)
    listed = html.split('id="attestations-manquantes"', 1)[1].split("</ul>", 1)[0]
    assert f"{by_id[expired]['principle_label']} {by_id[expired]['number']} : attestation expirée le " in listed
    assert f"{by_id[attested]['principle_label']} {by_id[attested]['number']} :" not in listed


def test_the_pdf_export_refuses_anonymous_requests(charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from charter_airflow.plugin import governance_app
    from fastapi.testclient import TestClient

    monkeypatch.setenv("CHARTER_LEDGER_URL", f"sqlite:///{charter_home / 'ledger.db'}")
    response = TestClient(governance_app.get_app()).get("/rapport-charte/export.pdf")
    assert response.status_code == 401
