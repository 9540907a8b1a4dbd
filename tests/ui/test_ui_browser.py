"""The Charte IA view on a real ``airflow api-server`` (simple auth manager, users ``admin`` and ``viewer``).

One server for the whole scenario, to keep the tier lean on shared machines:

1. security, on every route enumerated from the app: anonymous → 401, a forged JWT → 401/403, the
   ``viewer`` (token from ``POST /auth/token``) reads every page and gets 403 on every action, a
   cookie POST without a valid CSRF token or from another Origin → 403; the JSON API resolves an
   incident with a Bearer token;
2. headless Chromium: log into Airflow, open "Charte IA", see the blocked run and its reasons,
   open the incident, acknowledge it, see the audit log; screenshots in ``artifacts/ui/``;
3. the ledger: both decisions are in the signed audit chain, with who and why.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import jwt
from charte_ledger import BLOCKED_DAG, BLOCKED_RUN, LEAKED_PHONE, LedgerRows
from charte_server import ApiServer, app_routes, browser_login, fill_path

PREFIX = "/charte"
ACK_COMMENT = "Pris en charge par le RSSI : fichier mis en quarantaine, restauration en cours."
RESOLVE_COMMENT = "Colonne channel purgée et source corrigée ; DPO informé."


def test_charte_ia_on_a_real_api_server(
    ui_server: ApiServer, ui_ledger: tuple[str, LedgerRows], browser: Any, artifacts: Path
) -> None:
    _, rows = ui_ledger
    _check_api_security(ui_server, rows)
    _browse(ui_server, rows, browser, artifacts)

    from charter_guardrails.ledger.audit import verify_chain
    from charter_guardrails.ledger.models import AuditEvent, Incident
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        events = {
            (e.action, e.subject_id): e
            for e in session.scalars(select(AuditEvent).where(AuditEvent.action.like("incident.%")))
        }
        acknowledged = events[("incident.acknowledged", str(rows.incident_id))]
        assert acknowledged.actor == "admin"
        assert acknowledged.payload["comment"] == ACK_COMMENT
        resolved = events[("incident.resolved", str(rows.pii_incident_id))]
        assert resolved.actor == "admin"
        assert resolved.payload["comment"] == RESOLVE_COMMENT
        assert sorted(action for action, _ in events) == [
            "incident.acknowledged",
            "incident.art33_decision",
            "incident.raised",
            "incident.raised",
            "incident.resolved",
        ]
        incident = session.get(Incident, rows.incident_id)
        assert incident is not None
        assert incident.status == "acknowledged"
        assert incident.acknowledged_by == "admin"
        chain = verify_chain(session)
        assert chain.ok, chain.to_json_dict()


def _check_api_security(ui_server: ApiServer, rows: LedgerRows) -> None:
    """Anonymous, forged, read-only and cookie-without-CSRF requests are refused on every route; the API acts with a
    token."""
    from charter_airflow.ui.security import require_governance

    routes = app_routes()
    values = {
        "run_pk": rows.blocked_run_pk,
        "incident_id": rows.incident_id,
        "model_id": rows.model_id,
        "path": "data_docs/citizen_requests/index.html",
        "name": "ai_label.svg",
        "use_case": "waste_tonnage",
    }
    query = {"/ti": {"dag_id": BLOCKED_DAG, "run_id": BLOCKED_RUN, "task_id": "check_integrity"}}
    admin, viewer = ui_server.token("admin"), ui_server.token("viewer")
    forged = jwt.encode(
        {"sub": "admin", "role": "ADMIN", "aud": "apache-airflow", "exp": 4102444800},
        "not-the-secret-" * 8,
        algorithm="HS512",
    )
    with httpx.Client(base_url=ui_server.base_url + PREFIX, timeout=60) as client:
        # A signed export first, so that its signature file is there to be read.
        export = client.get("/rapport-charte/export.pdf", headers={"Authorization": f"Bearer {admin}"})
        assert export.status_code == 200, export.text[:300]
        signature = re.search(r"/fichiers/([^>]+)>", export.headers["link"])
        assert signature is not None, export.headers["link"]
        values["file_name"] = signature.group(1)
        for method, path, route in routes:
            url = fill_path(path, values, query)
            anonymous = client.request(method, url)
            assert anonymous.status_code == 401, f"anonymous {method} {url} -> {anonymous.status_code}"
            bad = client.request(method, url, headers={"Authorization": f"Bearer {forged}"})
            assert bad.status_code in (401, 403), f"forged token {method} {url} -> {bad.status_code}"
            as_viewer = client.request(
                method,
                url,
                headers={"Authorization": f"Bearer {viewer}"},
                **({"json": {"comment": "lecture seule"}} if method == "POST" and "/api/" in path else {}),
            )
            if method == "POST" or any(d.call is require_governance for d in route.dependant.dependencies):
                assert as_viewer.status_code == 403, f"viewer {method} {url} -> {as_viewer.status_code}"
            else:
                assert as_viewer.status_code == 200, (
                    f"viewer {method} {url} -> {as_viewer.status_code}: {as_viewer.text[:300]}"
                )

        # Report files are served from CHARTER_REPORTS_DIR only: no way out to the keys or the ledger.
        # (both targets exist: CHARTER_HOME/keys/signing_ed25519.pem and CHARTER_HOME/ledger.db)
        for escape in ("..%2Fkeys%2Fsigning_ed25519.pem", "%2E%2E%2Fledger.db", "%2Fetc%2Fpasswd"):
            response = client.get(f"/rapports/{escape}", headers={"Authorization": f"Bearer {admin}"})
            assert response.status_code == 404, f"/rapports/{escape} -> {response.status_code}"
        assert (
            client.get(
                f"/modeles/{rows.model_id}/fichiers/..%2F..%2F..%2Fledger.db",
                headers={"Authorization": f"Bearer {admin}"},
            ).status_code
            == 404
        )

        # The viewer sees the incident but is offered no action.
        page = client.get(f"/incidents/{rows.incident_id}", headers={"Authorization": f"Bearer {viewer}"}).text
        assert "Prendre en compte" not in page
        assert "lecture seule" in page

        # Cookie sessions (the UI) need the page's CSRF token, and a foreign Origin is refused even with it.
        cookies = {"_token": admin}
        no_token = client.post(
            f"/incidents/{rows.incident_id}/acquitter", data={"comment": "sans jeton"}, cookies=cookies
        )
        assert no_token.status_code == 403
        assert "CSRF" in no_token.text
        page = client.get(f"/incidents/{rows.incident_id}", cookies=cookies).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, "the incident page carries a CSRF token for an operator"
        foreign = client.post(
            f"/incidents/{rows.incident_id}/acquitter",
            data={"comment": "x", "csrf_token": token.group(1)},
            cookies=cookies,
            headers={"Origin": "https://attaquant.example"},
        )
        assert foreign.status_code == 403
        tampered = client.post(
            f"/incidents/{rows.incident_id}/acquitter",
            data={"comment": "x", "csrf_token": _tampered(token.group(1))},
            cookies=cookies,
        )
        assert tampered.status_code == 403
        incident = client.get(f"/api/incidents/{rows.incident_id}", headers={"Authorization": f"Bearer {admin}"}).json()
        assert incident["status"] == "open", "refused requests changed nothing"

        # The JSON API for security officers' tools: bearer token, no CSRF token needed (no ambient credential).
        feed = client.get(
            "/api/incidents", params={"status": "open"}, headers={"Authorization": f"Bearer {viewer}"}
        ).json()
        assert sorted(i["id"] for i in feed) == sorted([rows.incident_id, rows.pii_incident_id])
        assert all(i["time_left"]["seconds"] > 71 * 3600 and i["dpo_contact"] and i["nature"] for i in feed)
        decided = client.post(
            f"/api/incidents/{rows.pii_incident_id}/art33",
            json={
                "decision": "not_required",
                "rationale": "Colonne purgée avant tout usage du modèle : risque improbable pour les usagers.",
            },
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert decided.status_code == 200, decided.text
        done = client.post(
            f"/api/incidents/{rows.pii_incident_id}/resolve",
            json={"comment": RESOLVE_COMMENT},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert done.status_code == 200
        assert done.json()["status"] == "resolved"
        assert done.json()["resolved_by"] == "admin"
        again = client.post(
            f"/api/incidents/{rows.pii_incident_id}/acknowledge", json={}, headers={"Authorization": f"Bearer {admin}"}
        )
        assert again.status_code == 409


def _english_summaries() -> list[str]:
    """The English summaries of the results stored with a message: none of them may reach a French page."""
    from charter_guardrails.ledger.models import CheckResultRecord
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        english = list(
            session.scalars(select(CheckResultRecord.summary).where(CheckResultRecord.message_id.is_not(None)))
        )
    assert len(english) >= 2, "the ledger holds results stored with a message id"
    return english


def _report_fits_1280_pixels(ui_server: ApiServer, page: Any, artifacts: Path) -> None:
    """The charter report page on a 1280-pixel screen: no sideways scroll, the status column fully visible."""
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{ui_server.base_url}{PREFIX}/rapport-charte")
    page.locator("#engagements").wait_for()
    layout = page.evaluate(
        """() => {
          const table = document.querySelector('#engagements');
          const headers = [...table.querySelectorAll('tr:first-child th')].map(th => th.textContent.trim());
          const col = headers.indexOf('Statut');
          const cells = [...table.querySelectorAll('tr.engagement')]
            .map(tr => tr.children[col].getBoundingClientRect());
          return {scrollWidth: document.documentElement.scrollWidth, col,
                  cells: cells.map(r => ({left: r.left, right: r.right, width: r.width}))};
        }"""
    )
    page.screenshot(path=str(artifacts / "05b-rapport-charte-1280.png"), full_page=True)
    assert layout["col"] >= 0
    assert layout["scrollWidth"] <= 1280, "the report page scrolls sideways on a 1280-pixel screen"
    assert len(layout["cells"]) == 21
    for cell in layout["cells"]:
        assert cell["width"] > 60
        assert 0 <= cell["left"] < cell["right"] <= 1280


def _browse(ui_server: ApiServer, rows: LedgerRows, browser: Any, artifacts: Path) -> None:
    """Log in, open Charte IA, see the blocked run and its reasons, acknowledge the incident, check the audit chain."""
    page = browser_login(browser, ui_server.base_url)

    # The "Rapport charte" tab of a task instance: Airflow embeds the page in an iframe sandboxed with
    # "allow-forms" only (opaque origin). Reproduce that frame on Airflow's origin and check that the
    # report loads with the user's session; requests from inside such a frame carry no cookie, so the
    # page offers no link that would land on a 401.
    run_id = BLOCKED_RUN.replace("+", "%2B")
    tab = (
        f'<iframe title="tab" sandbox="allow-forms" style="width:1300px;height:900px" '
        f'src="/charte/ti?dag_id=citizen_requests_refresh&run_id={run_id}&task_id=check_integrity"></iframe>'
    )
    page.route(
        f"{ui_server.base_url}/__ti_tab__", lambda route: route.fulfill(status=200, content_type="text/html", body=tab)
    )
    page.goto(f"{ui_server.base_url}/__ti_tab__")
    ti_frame = page.frame_locator("iframe[title='tab']")
    ti_frame.locator("#raisons").wait_for()
    assert "integrity" in ti_frame.locator("#raisons").inner_text()
    assert ti_frame.locator("#onglet").is_visible()
    assert ti_frame.locator("a").count() == 0
    page.unroute(f"{ui_server.base_url}/__ti_tab__")
    page.goto(f"{ui_server.base_url}/")

    # "Charte IA" is in Airflow's navigation; the view opens in the UI's plugin frame.
    page.get_by_role("link", name="Charte IA").click()
    page.wait_for_url("**/plugin/charte-ia/**")
    frame = page.frame_locator("iframe[title='Charte IA']")
    overview = frame.locator("#cas-citizen_requests")
    overview.get_by_text("bloqué", exact=True).wait_for()
    assert "Sûreté" in overview.inner_text()
    assert "Corruption du jeu d'entraînement" in overview.inner_text()
    page.screenshot(path=str(artifacts / "01-vue-ensemble.png"))

    # The blocked run and its reasons, with the group-shares and drift charts.
    overview.get_by_role("link", name=f"citizen_requests_refresh · {BLOCKED_RUN}").click()
    reasons = frame.locator("#raisons")
    reasons.wait_for()
    text = reasons.inner_text()
    assert "integrity" in text
    assert "personal_data" in text
    assert "ne correspond plus à son manifeste signé" in text
    body = frame.locator("body").inner_text()
    english = _english_summaries()
    assert "bloc 1 modifié (octets 1048576–2097151, lignes 1024–2047)" in body, "summaries read in French"
    assert [s for s in english if s in body] == [], "no English summary in the view"
    assert LEAKED_PHONE not in body, "personal values are masked"
    assert "06 ** ** ** 78" in body, "personal values are masked"
    charts = frame.locator("svg.chart")
    assert charts.count() >= 2
    frame.locator("#raisons").screenshot(path=str(artifacts / "02a-raisons-du-blocage.png"))
    charts.first.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "02-rapport-execution-graphique.png"))

    # The incident: every GDPR Art. 33 field and the time left, then the acknowledgement.
    frame.get_by_role(
        "link", name=f"n°{rows.incident_id} — Corruption du jeu d'entraînement citizen_requests/training"
    ).click()
    frame.get_by_text("Champs de l'article 33-3 du RGPD").wait_for()
    detail = frame.locator("main").inner_text()
    for field in (
        "Nature de la violation",
        "Catégories de personnes concernées",
        "Contact du DPO",
        "Conséquences probables",
        "Mesures prises ou proposées",
        "restantes",
    ):
        assert field in detail, field
    frame.locator("#commentaire-acquitter").fill(ACK_COMMENT)
    frame.locator("#acquitter").click()
    frame.locator("#confirmation").wait_for()
    assert "pris en compte" in frame.locator("h2").first.inner_text()
    assert ACK_COMMENT in frame.locator("main").inner_text()
    page.screenshot(path=str(artifacts / "03-incident-pris-en-compte.png"))

    # The audit log shows the event and a verified chain.
    frame.get_by_role("link", name="Journal d'audit").click()
    frame.locator("#chaine").wait_for()
    assert "Chaîne d'audit vérifiée" in frame.locator("#chaine").inner_text()
    assert "incident.acknowledged" in frame.locator("table").inner_text()
    page.screenshot(path=str(artifacts / "04-journal-audit.png"))

    # The charter report lists the 21 engagements, and downloads as JSON with the same session.
    frame.get_by_role("link", name="Rapport de la charte").click()
    frame.locator("#engagements").wait_for()
    assert frame.locator("tr.engagement").count() == 21
    report_text = frame.locator("body").inner_text()
    assert [s for s in english if s in report_text] == [], "no English summary in the charter report"
    document = page.request.get(f"{ui_server.base_url}/charte/rapport-charte/export.html")
    assert document.ok
    assert "Données personnelles non autorisées par la politique" in document.text(), "failures read in French"
    assert [s for s in english if s in document.text()] == [], "no English summary in the committee's document"
    page.screenshot(path=str(artifacts / "05-rapport-charte.png"))
    exported = page.request.get(f"{ui_server.base_url}/charte/rapport-charte/export.json")
    assert exported.ok
    assert "attachment" in exported.headers["content-disposition"]
    report = json.loads(exported.text())
    assert len(report["engagements"]) == 21
    surete2 = next(e for e in report["engagements"] if e["id"] == "surete.2")
    assert surete2["evidence"]["fail"] == 1
    assert surete2["evidence"]["incidents"] == 1

    # The production model's card and AI label.
    frame.get_by_role("link", name="Modèles").click()
    frame.get_by_role("link", name="v3").click()
    frame.get_by_text("Étiquette IA", exact=True).wait_for()
    assert "prévoir le tonnage hebdomadaire" in frame.locator("main").inner_text()
    badge = frame.locator("img[alt='Étiquette IA']")
    loaded = badge.evaluate(
        "img => img.complete ? img.naturalWidth > 0 : new Promise(done => {"
        " img.onload = () => done(img.naturalWidth > 0); img.onerror = () => done(false); })"
    )
    badge_url = f"{ui_server.base_url}{badge.get_attribute('src')}"
    assert loaded, f"AI label badge not displayed: {badge_url} -> {page.request.get(badge_url).status}"
    page.screenshot(path=str(artifacts / "06-fiche-modele.png"))
    _report_fits_1280_pixels(ui_server, page, artifacts)
    page.close()


def _tampered(token: str) -> str:
    """The token with its last hex digit changed (always a different one: "...00" stays "...00" 1 time in 256)."""
    return token[:-1] + ("1" if token[-1] == "0" else "0")
