"""A draft data protection impact assessment (AIPD, GDPR Art. 35) of a use case, on the CNIL's PIA method.

The CNIL's method has four parts: (1) the context (the processing, its data, their lifecycle and supports),
(2) the fundamental principles (necessity and proportionality, the data subjects' rights), (3) the risks to
the data subjects (illegitimate access, unwanted modification, disappearance of data: their sources, impacts,
likelihood and severity) and (4) the measures. The draft is pre-filled from the policy (each value with its key
path) and from the ledger's history (checks run and their verdicts, incidents, drift and fairness results:
counts and verdicts only). Everything that is a judgement (likelihood, severity, sources and impacts of risks,
the DPO's opinion, the data subjects' views, the validation) is marked for a person to fill and left empty.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from charter_guardrails.core.catalogue import CheckName
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.reporting.charter_document import chain_section
from charter_guardrails.reporting.dpo_facts import RSSI, ledger_history, security_measures
from charter_guardrails.reporting.dpo_fields import (
    BREACH_TYPE_LABELS,
    completeness,
    counts_text,
    human_only,
    ledger,
    now_iso,
    policy_field,
    policy_items,
    section,
    software,
)
from charter_guardrails.reporting.vocabulary import DECISION_LABELS, VERDICT_LABELS

DOCUMENT_FORMAT = "dpo-aipd-draft/1"
KIND = "aipd"
DPO = "le DPO"
CONTROLLER = "le responsable du traitement"
LIFECYCLE = (
    "Livraison d'un fichier → vérification d'intégrité (manifeste signé) → recherche de données personnelles → "
    "qualité, représentativité et proportionnalité → copie pseudonymisée et minimisée → entraînement → "
    "performance, équité et empreinte → revue humaine (quatre yeux) → publication du modèle et de sa fiche ; "
    "chaque lot d'inférence passe les mêmes contrôles et celui de la dérive."
)
RISKS = (
    ("acces", "Accès illégitime à des données", ("confidentiality",), (CheckName.PERSONAL_DATA,)),
    ("modification", "Modification non désirée de données", ("integrity",), (CheckName.INTEGRITY, CheckName.DRIFT)),
    ("disparition", "Disparition de données", ("availability",), (CheckName.INTEGRITY,)),
)


def _context(policy: UseCasePolicy, p: dict[str, Any]) -> list[dict[str, Any]]:
    processing = [
        policy_field(p, label, path)
        for label, path in (
            ("Traitement", "title"),
            ("Finalité", "purpose"),
            ("Service responsable", "owner"),
            ("Délégué à la protection des données", "dpo"),
            ("Nature de la tâche", "task_nature"),
            ("Type de modèle", "model.kind"),
            ("Métrique de succès", "model.metric"),
        )
    ]
    if policy.human_recourse is not None or policy.decision_support:
        processing.append(policy_field(p, "Recours humain", "human_recourse"))
    else:
        text = "sans objet : le système n'aide à aucune décision sur une personne"
        processing.append(policy_field(p, "Recours humain", "decision_support", text=text))
    if policy.sourcing is not None:
        processing.append(policy_field(p, "Origine du système", "sourcing.origin"))
    data: list[dict[str, Any]] = []
    for i, dataset in enumerate(policy.datasets):
        base, name = f"datasets[{i}]", f"Jeu « {dataset.id} »"
        data += [
            policy_field(p, f"{name} : rôle", f"{base}.role"),
            policy_field(p, f"{name} : données personnelles", f"{base}.personal_data"),
        ]
        if dataset.max_rows is not None:
            data.append(policy_field(p, f"{name} : nombre de lignes au plus", f"{base}.max_rows"))
        if dataset.personal_data:
            data.append(policy_field(p, f"{name} : personnes concernées", f"{base}.data_subjects"))
            data.append(policy_field(p, f"{name} : conservation", f"{base}.retention"))
    data += policy_items(p, "Source des données", "processing.data_sources")
    lifecycle = [
        software("Cycle de vie des données", LIFECYCLE),
        software(
            "Supports logiciels",
            "Apache Airflow (orchestration), registre des contrôles (base SQL), fichiers du dossier de données, "
            "des modèles et des rapports.",
        ),
        human_only("Supports matériels et hébergement", RSSI),
    ]
    return [
        section("1.1", "Présentation du traitement", processing),
        section("1.2", "Données, cycle de vie et supports", data + lifecycle),
    ]


def _check_field(label: str, history: dict[str, Any], check: CheckName) -> dict[str, Any]:
    item = history["checks"].get(check.value)
    if item is None:
        return ledger(label, None, "aucun contrôle enregistré")
    last = item["last"]
    latest = VERDICT_LABELS.get(last["verdict"], last["verdict"])
    text = f"{item['results']} résultat(s) ({counts_text(item['verdicts'])}) ; dernier : {latest} le {last['at'][:10]}"
    return ledger(label, {"results": item["results"], "verdicts": item["verdicts"], "last": last}, text)


def _principles(policy: UseCasePolicy, p: dict[str, Any], history: dict[str, Any]) -> list[dict[str, Any]]:
    necessity = [
        policy_field(p, "Finalité", "purpose"),
        policy_field(p, "Base légale", "legal_basis"),
        policy_field(p, "Précision de la base légale", "legal_basis_detail"),
        _check_field("Minimisation : contrôles de proportionnalité", history, CheckName.PROPORTIONALITY),
        policy_field(p, "Exactitude : part minimale d'attentes de qualité réussies (%)", "quality.min_success_percent"),
        _check_field("Exactitude : contrôles de qualité", history, CheckName.QUALITY),
        _check_field("Données personnelles trouvées : contrôles", history, CheckName.PERSONAL_DATA),
        human_only("Appréciation de la nécessité et de la proportionnalité", DPO),
    ]
    for i, dataset in enumerate(policy.datasets):
        if dataset.personal_data:
            necessity.append(policy_field(p, f"Conservation du jeu « {dataset.id} »", f"datasets[{i}].retention"))
    recourse = (
        policy_field(p, "Recours contre une décision", "human_recourse")
        if policy.human_recourse is not None or policy.decision_support
        else policy_field(p, "Recours contre une décision", "decision_support", text="sans objet : aucune décision")
    )
    rights = [
        recourse,
        human_only("Information des personnes", CONTROLLER),
        human_only("Droits d'accès et de portabilité", CONTROLLER),
        human_only("Droits de rectification et d'effacement", CONTROLLER),
        human_only("Droits de limitation et d'opposition", CONTROLLER),
        *policy_items(p, "Contrat de sous-traitance", "processing.processor_contracts"),
        *policy_items(p, "Transfert hors UE", "processing.transfers"),
    ]
    return [
        section("2.1", "Nécessité et proportionnalité", necessity),
        section("2.2", "Droits des personnes concernées", rights),
    ]


def _risks(history: dict[str, Any]) -> list[dict[str, Any]]:
    incidents = history["incidents"]["by_breach_type"]
    risks = []
    for risk_id, title, breach_types, checks in RISKS:
        observed = {b: incidents.get(b, 0) for b in breach_types}
        text = ", ".join(f"{BREACH_TYPE_LABELS.get(b, b)} : {n}" for b, n in observed.items())
        fields = [ledger("Incidents enregistrés", observed, text)]
        fields += [_check_field(f"Contrôles « {c.value} »", history, c) for c in checks]
        if risk_id == "acces":
            not_allowed = sum(e["not_allowed"] for e in history["personal_data_findings"].values())
            fields.append(ledger("Valeurs personnelles trouvées hors autorisation", not_allowed, str(not_allowed)))
        fields += [
            human_only("Sources de risque", DPO),
            human_only("Impacts sur les personnes", DPO),
            human_only("Vraisemblance", DPO, "négligeable, limitée, importante ou maximale"),
            human_only("Gravité", DPO, "négligeable, limitée, importante ou maximale"),
        ]
        risks.append(section(risk_id, title, fields))
    return risks


def _measures(
    policy: UseCasePolicy, session: Session, p: dict[str, Any], history: dict[str, Any], chain_head: dict[str, Any]
) -> list[dict[str, Any]]:
    controls = [_check_field(f"Contrôle « {c} »", history, CheckName(c)) for c in history["checks"]]
    decisions = history["decisions"]
    controls.append(
        ledger(
            "Exécutions et décisions",
            {"runs": history["runs"], "decisions": decisions},
            f"{history['runs']} exécution(s) ({counts_text(decisions, DECISION_LABELS)})",
        )
    )
    incidents = history["incidents"]
    controls.append(ledger("Incidents", incidents, f"{incidents['total']} dont {incidents['open']} non résolu(s)"))
    return [
        section("4.1", "Mesures techniques", security_measures(policy, session, chain_head)),
        section(
            "4.2",
            "Mesures organisationnelles",
            policy_items(p, "Mesure organisationnelle", "processing.organisational_measures"),
        ),
        section(
            "4.3",
            "Contrôles exécutés (journal)",
            [
                _check_field("Équité", history, CheckName.FAIRNESS),
                _check_field("Dérive", history, CheckName.DRIFT),
                *controls,
            ],
        ),
        section("4.4", "Plan d'action", [human_only("Mesures complémentaires et échéances", CONTROLLER)]),
    ]


def build_aipd(policy: UseCasePolicy, session: Session, *, now: Any = None) -> dict[str, Any]:
    """The draft AIPD of ``policy``'s use case, JSON-safe: four parts of sections of fields (see :mod:`.dpo_fields`),
    then the validation; ``ledger_history`` holds the ledger's counts the fields quote."""
    p = policy.model_dump(mode="json")
    _, chain_head = chain_section(session)
    history = ledger_history(session, policy.id)
    parts = [
        {"id": "1", "title": "Contexte", "sections": _context(policy, p)},
        {"id": "2", "title": "Principes fondamentaux", "sections": _principles(policy, p, history)},
        {"id": "3", "title": "Risques", "sections": _risks(history)},
        {"id": "4", "title": "Mesures", "sections": _measures(policy, session, p, history, chain_head)},
        {
            "id": "5",
            "title": "Validation",
            "sections": [
                section(
                    "5.1",
                    "Avis et validation",
                    [
                        human_only("Avis du DPO", DPO),
                        human_only("Avis des personnes concernées ou de leurs représentants", CONTROLLER),
                        human_only("Décision du responsable du traitement", CONTROLLER),
                    ],
                )
            ],
        },
    ]
    doc: dict[str, Any] = {
        "document_format": DOCUMENT_FORMAT,
        "kind": KIND,
        "title": f"Analyse d'impact (AIPD), projet — {policy.title}",
        "use_case": policy.id,
        "use_case_title": policy.title,
        "generated_at": now_iso(now),
        "parts": parts,
        "ledger_history": history,
        "chain_head": chain_head,
    }
    doc["completeness"] = completeness(doc)
    return doc


__all__ = ["DOCUMENT_FORMAT", "KIND", "build_aipd"]
