"""End to end in headless Chromium: log into Airflow, open "Charte IA", see the blocked run and its
reasons, open the incident, acknowledge it, and find the acknowledgement in the audit chain.

Screenshots go to ``artifacts/ui/`` (git-ignored).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from charte_ledger import BLOCKED_RUN, LEAKED_PHONE, LedgerRows
from charte_server import USERS, ApiServer

COMMENT = "Pris en charge par le RSSI : fichier mis en quarantaine, restauration en cours."


def test_governance_view_in_chromium(ui_server: ApiServer, ui_ledger: tuple[str, LedgerRows], browser: Any, artifacts: Path) -> None:
    _, rows = ui_ledger
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="fr-FR")
    page.set_default_timeout(30_000)

    # Log in through Airflow's own login form (simple auth manager): the UI then holds the JWT cookie.
    page.goto(f"{ui_server.base_url}/auth/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(USERS["admin"][1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/" not in url)

    # The "Rapport charte" tab of a task instance: Airflow embeds the page in an iframe sandboxed with
    # "allow-forms" only (opaque origin). Reproduce that frame on Airflow's origin and check that the
    # report loads with the user's session; requests from inside such a frame carry no cookie, so the
    # page offers no link that would land on a 401.
    run_id = BLOCKED_RUN.replace("+", "%2B")
    tab = (f'<iframe title="tab" sandbox="allow-forms" style="width:1300px;height:900px" '
           f'src="/charte/ti?dag_id=citizen_requests_refresh&run_id={run_id}&task_id=check_integrity"></iframe>')
    page.route(f"{ui_server.base_url}/__ti_tab__", lambda route: route.fulfill(status=200, content_type="text/html", body=tab))
    page.goto(f"{ui_server.base_url}/__ti_tab__")
    ti_frame = page.frame_locator("iframe[title='tab']")
    ti_frame.locator("#raisons").wait_for()
    assert "integrity" in ti_frame.locator("#raisons").inner_text() and ti_frame.locator("#onglet").is_visible()
    assert ti_frame.locator("a").count() == 0
    page.unroute(f"{ui_server.base_url}/__ti_tab__")
    page.goto(f"{ui_server.base_url}/")

    # "Charte IA" is in Airflow's navigation; the view opens in the UI's plugin frame.
    page.get_by_role("link", name="Charte IA").click()
    page.wait_for_url("**/plugin/charte-ia/**")
    frame = page.frame_locator("iframe[title='Charte IA']")
    overview = frame.locator("#cas-citizen_requests")
    overview.get_by_text("bloqué", exact=True).wait_for()
    assert "Sûreté" in overview.inner_text() and "Corruption du jeu d'entraînement" in overview.inner_text()
    page.screenshot(path=str(artifacts / "01-vue-ensemble.png"))

    # The blocked run and its reasons, with the group-shares and drift charts.
    overview.get_by_role("link", name=f"citizen_requests_refresh · {BLOCKED_RUN}").click()
    reasons = frame.locator("#raisons")
    reasons.wait_for()
    text = reasons.inner_text()
    assert "integrity" in text and "personal_data" in text and "ne correspond plus à son manifeste signé" in text
    body = frame.locator("body").inner_text()
    assert LEAKED_PHONE not in body and "06 ** ** ** 78" in body, "personal values are masked"
    charts = frame.locator("svg.chart")
    assert charts.count() >= 2
    frame.locator("#raisons").screenshot(path=str(artifacts / "02a-raisons-du-blocage.png"))
    charts.first.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "02-rapport-execution-graphique.png"))

    # The incident: every GDPR Art. 33 field and the time left, then the acknowledgement.
    frame.get_by_role("link", name="n°1 — Corruption du jeu d'entraînement citizen_requests/training").click()
    frame.get_by_text("Champs de l'article 33-3 du RGPD").wait_for()
    detail = frame.locator("main").inner_text()
    for field in ("Nature de la violation", "Catégories de personnes concernées", "Contact du DPO", "Conséquences probables",
                  "Mesures prises ou proposées", "restantes"):
        assert field in detail, field
    frame.locator("#commentaire-acquitter").fill(COMMENT)
    frame.locator("#acquitter").click()
    frame.locator("#confirmation").wait_for()
    assert "pris en compte" in frame.locator("h2").first.inner_text()
    assert COMMENT in frame.locator("main").inner_text()
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
    page.screenshot(path=str(artifacts / "05-rapport-charte.png"))
    exported = page.request.get(f"{ui_server.base_url}/charte/rapport-charte/export.json")
    assert exported.ok and "attachment" in exported.headers["content-disposition"]
    report = json.loads(exported.text())
    assert len(report["engagements"]) == 21
    surete2 = next(e for e in report["engagements"] if e["id"] == "surete.2")
    assert surete2["evidence"]["fail"] == 1 and surete2["evidence"]["incidents"] == 1

    # The production model's card and AI label.
    frame.get_by_role("link", name="Modèles").click()
    frame.get_by_role("link", name="v3").click()
    frame.get_by_text("Étiquette IA", exact=True).wait_for()
    assert "prévoir le tonnage hebdomadaire" in frame.locator("main").inner_text()
    badge = frame.locator("img[alt='Étiquette IA']")
    loaded = badge.evaluate("img => img.complete ? img.naturalWidth > 0 : new Promise(done => {"
                            " img.onload = () => done(img.naturalWidth > 0); img.onerror = () => done(false); })")
    badge_url = f"{ui_server.base_url}{badge.get_attribute('src')}"
    assert loaded, f"AI label badge not displayed: {badge_url} -> {page.request.get(badge_url).status}"
    page.screenshot(path=str(artifacts / "06-fiche-modele.png"))
    page.close()

    # The acknowledgement is in the signed audit chain, with who and why.
    from charter_guardrails.ledger.audit import verify_chain
    from charter_guardrails.ledger.models import AuditEvent, Incident
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "incident.acknowledged")).one()
        assert event.actor == "admin" and event.subject_id == str(rows.incident_id) and event.payload["comment"] == COMMENT
        incident = session.get(Incident, rows.incident_id)
        assert incident is not None and incident.status == "acknowledged" and incident.acknowledged_by == "admin"
        chain = verify_chain(session)
        assert chain.ok, chain.to_json_dict()
