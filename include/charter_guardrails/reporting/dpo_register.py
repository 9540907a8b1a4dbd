"""The entry of a use case in the register of processing activities (GDPR Art. 30(1)), drafted for the DPO.

The entry follows the article's points: (a) the controller, its representative, joint controllers and the DPO,
(b) the purposes and the legal basis, (c) the categories of data subjects and of personal data, (d) the
recipients and the processors' contracts, (e) the transfers outside the EU, (f) the retention of each dataset,
(g) the security measures. Each value comes from the policy with its key path, from the software (the
technical measures as the code applies them) or is marked missing: the register is a legal record, so
nothing is guessed. The entry is written as HTML, JSON and PDF by :mod:`~charter_guardrails.reporting.dpo_files`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import PersonalDataCategory
from charter_guardrails.reporting.charter_document import chain_section
from charter_guardrails.reporting.dpo_facts import security_measures
from charter_guardrails.reporting.dpo_fields import (
    completeness,
    display,
    human_only,
    now_iso,
    policy_field,
    policy_items,
    section,
    software,
)

DOCUMENT_FORMAT = "dpo-register-entry/1"
KIND = "registre"
DPO = "le DPO"


def _controller(p: dict[str, Any]) -> list[dict[str, Any]]:
    fields = [policy_field(p, "Référence de la fiche", "processing.entry_ref")]
    if p["processing"]["controller"] is None:
        fields.append(policy_field(p, "Responsable du traitement", "processing.controller"))
    else:
        fields += [
            policy_field(p, "Responsable du traitement", "processing.controller.organisation"),
            policy_field(p, "Représentant", "processing.controller.representative"),
            policy_field(p, "Adresse", "processing.controller.address"),
        ]
    fields += policy_items(p, "Responsable conjoint", "processing.joint_controllers")
    fields += [
        policy_field(p, "Délégué à la protection des données", "dpo"),
        policy_field(p, "Service chargé de la mise en œuvre", "owner"),
    ]
    return fields


def _purposes(p: dict[str, Any]) -> list[dict[str, Any]]:
    fields = [policy_field(p, "Finalité", "purpose"), policy_field(p, "Base légale", "legal_basis")]
    fields.append(policy_field(p, "Précision de la base légale", "legal_basis_detail"))
    if p["objective"] is not None:
        fields.append(policy_field(p, "Objectif mesurable", "objective.statement"))
    fields.append(policy_field(p, "Aide à la décision", "decision_support"))
    return fields


def _categories(policy: UseCasePolicy, p: dict[str, Any]) -> list[dict[str, Any]]:
    """Per dataset: whether it holds personal data, its data subjects, and each personal column's category."""
    fields: list[dict[str, Any]] = []
    for i, dataset in enumerate(policy.datasets):
        base = f"datasets[{i}]"
        fields.append(policy_field(p, f"Jeu « {dataset.id} » : données personnelles", f"{base}.personal_data"))
        if not dataset.personal_data:
            continue
        fields.append(policy_field(p, f"Jeu « {dataset.id} » : personnes concernées", f"{base}.data_subjects"))
        for j, column in enumerate(dataset.columns):
            if column.personal_data is not PersonalDataCategory.NONE:
                path = f"{base}.columns[{j}].personal_data"
                label = f"Jeu « {dataset.id} », colonne « {column.name} »"
                fields.append(policy_field(p, label, path, text=f"{display(column.personal_data.value)}"))
    fields += policy_items(p, "Source des données", "processing.data_sources")
    return fields


def _recipients(policy: UseCasePolicy, p: dict[str, Any]) -> list[dict[str, Any]]:
    fields = policy_items(p, "Destinataire", "processing.recipients")
    fields += policy_items(p, "Contrat de sous-traitance", "processing.processor_contracts")
    uncovered = policy.processing.processors_without_contract()
    if uncovered and policy.processing.processor_contracts is not None:
        fields.append(
            software("Sous-traitants sans contrat déclaré", ", ".join(uncovered) + " : contrat art. 28 à déclarer")
        )
    if policy.sourcing is not None and policy.sourcing.provider is not None:
        fields.append(policy_field(p, "Prestataire du système", "sourcing.provider"))
    return fields


def _retention(policy: UseCasePolicy, p: dict[str, Any]) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = []
    for i, dataset in enumerate(policy.datasets):
        if not dataset.personal_data:
            continue
        base = f"datasets[{i}].retention"
        if dataset.retention is None:
            fields.append(policy_field(p, f"Jeu « {dataset.id} » : durée de conservation", base))
            continue
        fields.append(
            policy_field(
                p, f"Jeu « {dataset.id} » : durée (jours)", f"{base}.days", text=f"{dataset.retention.days} jours"
            )
        )
        fields.append(policy_field(p, f"Jeu « {dataset.id} » : à compter de la colonne", f"{base}.date_column"))
    if not fields:
        fields.append(software("Durée de conservation", "sans objet : aucun jeu n'est déclaré personnel"))
    return fields


def build_register_entry(policy: UseCasePolicy, session: Session, *, now: Any = None) -> dict[str, Any]:
    """The Art. 30 register entry of ``policy``'s use case, JSON-safe.

    ``sections`` lists the points (a) to (g), each with its fields (see :mod:`.dpo_fields`); ``completeness``
    names the policy keys still to declare and counts the fields a person has to fill; ``chain_head`` is the
    audit chain's head the files are signed with.
    """
    p = policy.model_dump(mode="json")
    _, chain_head = chain_section(session)
    measures = security_measures(policy, session, chain_head)
    measures += policy_items(p, "Mesure organisationnelle", "processing.organisational_measures")
    sections = [
        section("a", "Responsable du traitement et délégué", _controller(p), article="art. 30-1-a"),
        section("b", "Finalités et base légale", _purposes(p), article="art. 30-1-b"),
        section("c", "Personnes concernées et catégories de données", _categories(policy, p), article="art. 30-1-c"),
        section("d", "Destinataires", _recipients(policy, p), article="art. 30-1-d"),
        section(
            "e",
            "Transferts hors de l'Union européenne",
            policy_items(p, "Transfert", "processing.transfers"),
            article="art. 30-1-e",
        ),
        section("f", "Délais d'effacement", _retention(policy, p), article="art. 30-1-f"),
        section("g", "Mesures de sécurité", measures, article="art. 30-1-g et 32"),
        section(
            "validation",
            "Validation",
            [
                human_only("Date de création ou de mise à jour de la fiche", DPO),
                human_only("Validation de la fiche par le DPO", DPO),
            ],
        ),
    ]
    doc: dict[str, Any] = {
        "document_format": DOCUMENT_FORMAT,
        "kind": KIND,
        "title": f"Registre des activités de traitement — {policy.title}",
        "use_case": policy.id,
        "use_case_title": policy.title,
        "generated_at": now_iso(now),
        "sections": sections,
        "chain_head": chain_head,
    }
    doc["completeness"] = completeness(doc)
    return doc


__all__ = ["DOCUMENT_FORMAT", "KIND", "build_register_entry"]
