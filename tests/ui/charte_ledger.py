"""A realistic ledger for the UI tests, written through the library's own functions (as the guardrail
tasks do): a blocked refresh of ``citizen_requests`` with failing CheckResults, masked PII findings,
a manifest verification that failed, an open integrity incident; a published ``waste_tonnage`` run
with a production model, its card and AI label, and an approval.

One evidence string carries a raw phone number on purpose: a check must never do that, and the UI
must mask it anyway (defence in depth); the tests assert it never reaches a page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

LEAKED_PHONE = "06 12 34 56 78"
BLOCKED_DAG = "citizen_requests_refresh"
BLOCKED_RUN = "manual__2026-11-28T09:00:00+00:00"
PUBLISHED_DAG = "waste_tonnage_refresh"
PUBLISHED_RUN = "scheduled__2026-11-27T06:00:00+00:00"


@dataclass(frozen=True)
class LedgerRows:
    blocked_run_pk: int
    published_run_pk: int
    incident_id: int
    pii_incident_id: int
    model_id: int


def populate_ledger(url: str, reports_dir: Path) -> LedgerRows:
    from charter_guardrails.checks.integrity.outcome import CHUNK_ROWS_CHANGED, DATA_CHANGED
    from charter_guardrails.checks.privacy.verdict import FORBIDDEN_COLUMN, PII_NOT_ALLOWED
    from charter_guardrails.core.engagements import engagements_of
    from charter_guardrails.core.messages import joined
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.core.results import CheckResult, Severity, Verdict
    from charter_guardrails.incidents.incident import BreachType, IncidentDraft, raise_incident
    from charter_guardrails.ledger.audit import append_event
    from charter_guardrails.ledger.models import Approval, Manifest, ManifestVerification, ModelVersion, PiiFinding
    from charter_guardrails.ledger.store import (
        ensure_dataset,
        finish_check_run,
        get_or_create_check_run,
        ledger_session,
        record_check_result,
    )

    citizen = load_policy("citizen_requests")
    waste = load_policy("waste_tonnage")
    with ledger_session(url) as session:
        dataset = ensure_dataset(
            session,
            use_case=citizen.id,
            name="training",
            format="csv",
            location="citizen_requests/training.csv",
            personal_data=True,
        )
        manifest = Manifest(
            dataset_id=dataset.id,
            run_id="registration",
            file_name="training.csv",
            size_bytes=1_234_567,
            row_count=5000,
            algorithm="sha256",
            chunk_size=1 << 20,
            merkle_root="ab" * 32,
            schema_fingerprint="cd" * 32,
            document={"chunks": 2},
            signature="c2ln",
            key_id="k1",
        )
        session.add(manifest)
        session.flush()
        append_event(
            session, actor="charter-guardrails", action="manifest.registered", subject=manifest, use_case=citizen.id
        )
        session.add(
            ManifestVerification(
                manifest_id=manifest.id,
                dataset_id=dataset.id,
                run_id=BLOCKED_RUN,
                outcome="mismatch",
                details={"first_bad_chunk": 1, "rows": "1024-2047"},
            )
        )

        run = get_or_create_check_run(session, use_case=citizen.id, dag_id=BLOCKED_DAG, run_id=BLOCKED_RUN)
        results = [
            CheckResult(
                check="integrity",
                verdict=Verdict.FAIL,
                severity=Severity.CRITICAL,
                engagements=engagements_of("integrity"),
                dataset="training",
                message=DATA_CHANGED(
                    dataset="citizen_requests.training",
                    file="training.csv",
                    manifest_id=manifest.id,
                    change=CHUNK_ROWS_CHANGED(
                        chunk=1, first_byte=1048576, last_byte=2097151, first_row=1024, last_row=2047
                    ),
                ),
                metrics={"chunks": 2, "mismatched_chunks": 1},
                evidence={
                    "outcome": "data_changed",
                    "file": "training.csv",
                    "manifest_id": manifest.id,
                    "expected_root": "ab" * 8,
                    "changed_chunks": [1],
                    "changed_chunk_count": 1,
                    "first_changed_chunk": 1,
                    "ranges": [{"chunk": 1, "bytes": [1048576, 2097151], "lines": [1025, 2048], "rows": [1024, 2047]}],
                    "actual_root": "ef" * 8,
                },
            ),
            CheckResult(
                check="personal_data",
                verdict=Verdict.FAIL,
                severity=Severity.ERROR,
                engagements=engagements_of("personal_data"),
                dataset="training",
                message=PII_NOT_ALLOWED(
                    count=1, columns=joined([FORBIDDEN_COLUMN(column="channel", entities=joined(["FR_PHONE"], "/"))])
                ),
                metrics={"rows_scanned": 5000, "findings": 37},
                evidence={
                    "mode": "exhaustive",
                    "guarantee": "every row scanned",
                    "min_score": 0.5,
                    "dataset_personal_data": True,
                    "columns": [
                        {
                            "column": "channel",
                            "declared": True,
                            "allowed": [],
                            "found": ["FR_PHONE"],
                            "forbidden": ["FR_PHONE"],
                            "forbidden_rows": 37,
                            "ok": False,
                            # a check that leaked a raw value into its evidence: the view must mask it
                            "reason": f"exemple non masqué par erreur : {LEAKED_PHONE}",
                            "warning": None,
                        }
                    ],
                    "declared_columns_absent": [],
                },
            ),
            CheckResult(
                check="quality",
                verdict=Verdict.PASS,
                engagements=engagements_of("quality"),
                dataset="training",
                summary="Les 14 attentes de la suite citizen_requests.training passent.",
                metrics={"success_percent": 100.0},
                report_path="data_docs/citizen_requests/index.html",
            ),
            # Evidence shaped as the project's checks write it: CheckResult validates it against the catalogue's models.
            CheckResult(
                check="representativeness",
                verdict=Verdict.WARN,
                severity=Severity.WARNING,
                engagements=engagements_of("representativeness"),
                dataset="training",
                summary="Le 15e arrondissement est sous-représenté de 6,1 points.",
                metrics={"max_abs_gap_pp": 6.1},
                evidence={
                    "group_columns": [
                        {
                            "column": "arrondissement",
                            "rows_with_group": 5000,
                            "rows_without_group": 0,
                            "reference": "arrondissements_marseille.csv",
                            "reference_source": "Source: INSEE, recensement de la population",
                            "reasons": ["arrondissement=13015: 2,0 % des lignes contre 8,1 % de la population"],
                            "groups": {
                                "13001": {"count": 250, "share": 0.05, "reference_share": 0.047, "gap_pp": 0.3},
                                "13003": {"count": 200, "share": 0.04, "reference_share": 0.05, "gap_pp": -1.0},
                                "13008": {"count": 600, "share": 0.12, "reference_share": 0.09, "gap_pp": 3.0},
                                "13013": {"count": 550, "share": 0.11, "reference_share": 0.106, "gap_pp": 0.4},
                                "13015": {"count": 100, "share": 0.02, "reference_share": 0.081, "gap_pp": -6.1},
                            },
                        }
                    ],
                    "data_gaps": [],
                    "absent_columns": [],
                    "reasons": ["arrondissement=13015: 2,0 % des lignes contre 8,1 % de la population"],
                },
            ),
            CheckResult(
                check="fairness",
                verdict=Verdict.PASS,
                engagements=engagements_of("fairness"),
                dataset="training",
                summary="Écart d'exactitude entre tranches d'âge : 0,04 (seuil 0,2).",
                metrics={"max_difference": 0.04, "limit": 0.2},
                evidence={
                    "positive_label": None,
                    "max_metric_difference": 0.2,
                    "breaches": [],
                    "small_groups_left_out": {},
                    "not_measurable": [],
                    "holdout_rows": 1250,
                    "table": [
                        {"column": "age_band", "group": "18-29", "accuracy": 0.84, "count": 310, "compared": True},
                        {"column": "age_band", "group": "30-59", "accuracy": 0.86, "count": 640, "compared": True},
                        {"column": "age_band", "group": "60+", "accuracy": 0.82, "count": 300, "compared": True},
                    ],
                },
            ),
            CheckResult(
                check="drift",
                verdict=Verdict.FAIL,
                severity=Severity.ERROR,
                engagements=engagements_of("drift"),
                dataset="inference",
                summary="1 variable sur 2 dérive : channel (Jensen-Shannon 0,41 > 0,1).",
                metrics={"features": 2, "drifted_features": 1},
                evidence={
                    "features": {
                        "channel": {
                            "js_distance": 0.41,
                            "chi2_pvalue": 1e-9,
                            "batch_n": 800,
                            "kind": "categorical",
                            "drifted": True,
                            "reasons": ["Jensen-Shannon 0.410 > 0.1"],
                        },
                        "message": {
                            "length_psi": 0.03,
                            "oov_share": 0.12,
                            "reference_oov_share": 0.1,
                            "batch_n": 800,
                            "kind": "text",
                            "drifted": False,
                            "reasons": [],
                        },
                    },
                    "drifted": ["channel"],
                    "missing_features": [],
                    "thresholds": {
                        "psi_max": 0.2,
                        "ks_pvalue_min": 0.01,
                        "chi2_pvalue_min": 0.01,
                        "js_max": 0.1,
                        "text_length_psi_max": 0.2,
                        "vocabulary_oov_max": 0.3,
                        "max_drifted_features": 1,
                    },
                },
            ),
            CheckResult(
                check="footprint",
                verdict=Verdict.PASS,
                engagements=engagements_of("footprint"),
                summary="Le réentraînement vaut son empreinte : 12 Wh, 0,7 gCO2e pour un gain d'exactitude de +0,02.",
                metrics={"gain": 0.02, "kwh": 0.012, "gco2e": 0.7, "gain_per_kwh": 1.6},
                evidence={
                    "metric": "accuracy",
                    "gain_unit": "accuracy points (positive = better)",
                    "energy_method": "codecarbon (hors ligne, FRA)",
                    "country_iso_code": "FRA",
                    "problems": [],
                },
            ),
        ]
        rows = {r.check: record_check_result(session, run, r) for r in results}
        session.add(
            PiiFinding(
                check_result_id=rows["personal_data"].id,
                column="channel",
                entity_type="FR_PHONE",
                count=37,
                share=0.0074,
                mean_score=0.82,
                max_score=0.95,
                masked_examples=["06 ** ** ** 78", "07 ** ** ** 12"],
                allowed=False,
            )
        )
        finish_check_run(
            session,
            run,
            decision="blocked",
            blocked_by=["integrity", "personal_data", "drift"],
            reports={"data_docs": "data_docs/citizen_requests/index.html"},
        )
        incident, _ = raise_incident(
            session,
            citizen,
            IncidentDraft(
                breach_type=BreachType.INTEGRITY,
                severity="high",
                dataset="training",
                run_id=BLOCKED_RUN,
                title="Corruption du jeu d'entraînement citizen_requests/training",
                nature=(
                    "Le contenu du fichier diffère de son manifeste signé : 1 bloc sur 2 modifié (lignes 1024 à 2047)."
                ),
                facts={"manifest_id": manifest.id, "mismatched_chunks": 1},
                likely_consequences="Un modèle entraîné sur des données altérées.",
                measures_taken=["Entraînement bloqué", "Jeu de données mis en quarantaine"],
                approx_records=1024,
            ),
        )
        pii_incident, _ = raise_incident(
            session,
            citizen,
            IncidentDraft(
                breach_type=BreachType.CONFIDENTIALITY,
                severity="medium",
                dataset="training",
                run_id=BLOCKED_RUN,
                title="Numéros de téléphone dans une colonne sans données personnelles autorisées",
                nature=(
                    "37 numéros de téléphone détectés dans la colonne channel "
                    "(données de contact non prévues par la finalité)."
                ),
                facts={"column": "channel", "entity_type": "FR_PHONE", "count": 37},
                likely_consequences="Exposition de coordonnées d'usagers.",
                measures_taken=["Entraînement bloqué"],
                approx_records=37,
            ),
        )

        published = get_or_create_check_run(session, use_case=waste.id, dag_id=PUBLISHED_DAG, run_id=PUBLISHED_RUN)
        record_check_result(
            session,
            published,
            CheckResult(
                check="declaration",
                verdict=Verdict.PASS,
                engagements=engagements_of("declaration"),
                summary="Déclaration complète.",
            ),
        )
        record_check_result(
            session,
            published,
            CheckResult(
                check="integrity",
                verdict=Verdict.PASS,
                engagements=engagements_of("integrity"),
                dataset="tonnage",
                summary="Le fichier correspond à son manifeste signé.",
            ),
        )
        finish_check_run(session, published, decision="published")
        approval = Approval(
            use_case=waste.id,
            run_id=PUBLISHED_RUN,
            decision="approve",
            actor="claire.martin",
            justification="Gain de MAE de 4 %.",
        )
        session.add(approval)
        append_event(
            session,
            actor="claire.martin",
            action="approval.recorded",
            subject=approval,
            use_case=waste.id,
            run_id=PUBLISHED_RUN,
        )
        card_dir = reports_dir.parent / "models" / waste.id / "v3"  # where model_card.write_model_card puts them
        card_dir.mkdir(parents=True, exist_ok=True)
        (card_dir / "model_card.md").write_text(
            "# Fiche modèle — waste_tonnage v3\n\nFinalité : prévoir le tonnage hebdomadaire.\n", encoding="utf-8"
        )
        (card_dir / "model_card.html").write_text("<html><body><h1>Fiche modèle</h1></body></html>", encoding="utf-8")
        (card_dir / "ai_label.json").write_text(
            json.dumps({"système": "waste_tonnage", "niveau": "aide à la décision"}), encoding="utf-8"
        )
        (card_dir / "ai_label.svg").write_text(
            '<svg xmlns="http://www.w3.org/2000/svg" width="264" height="64" role="img"><title>Service utilisant '
            'l\'IA</title><rect width="264" height="64" fill="#0b3d6e"/></svg>',
            encoding="utf-8",
        )
        model = ModelVersion(
            use_case=waste.id,
            version=3,
            run_id=PUBLISHED_RUN,
            status="production",
            metrics={"mae": 12.4},
            card_path=str(card_dir / "model_card.md"),
            approved_by="claire.martin",
        )
        session.add(model)
        append_event(
            session,
            actor="claire.martin",
            action="model.published",
            subject=model,
            use_case=waste.id,
            run_id=PUBLISHED_RUN,
        )
        docs = reports_dir / "data_docs" / "citizen_requests"
        docs.mkdir(parents=True, exist_ok=True)
        (docs / "index.html").write_text("<html><body><h1>Data Docs</h1></body></html>", encoding="utf-8")
        return LedgerRows(
            blocked_run_pk=run.id,
            published_run_pk=published.id,
            incident_id=incident.id,
            pii_incident_id=pii_incident.id,
            model_id=model.id,
        )
