"""What the DPO's documents say from the software and the ledger, not from the policy's declarations.

:func:`security_measures` describes the technical measures (GDPR Art. 32) as the code applies them to the use
case: signed Merkle manifests and incident alerting, keyed pseudonymisation of the columns the policy marks,
the signed audit chain, the view's access control and four-eyes approval, and encryption only where the
configuration shows it (the software itself encrypts no file at rest: that is left to the person in charge of
security). :func:`ledger_history` summarises what the ledger recorded for a use case: counts and verdicts of
checks, incidents, drift and fairness results, personal-data findings by entity type; never a summary, an
evidence string or a masked example, which could carry a personal value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.settings import get_settings
from charter_guardrails.ledger.models import (
    Approval,
    CheckResultRecord,
    CheckRun,
    DatasetRecord,
    Incident,
    Manifest,
    ManifestVerification,
    ModelVersion,
    PiiFinding,
)
from charter_guardrails.reporting.dpo_fields import human_only, software

_TLS_MODES = {"require", "verify-ca", "verify-full"}
RSSI = "le RSSI"


def _ledger_transport(url: str) -> str:
    """How the ledger's connection is protected, read from its URL (never printed: it may hold a password)."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return "registre SQLite local : aucune connexion réseau"
    mode = (parse_qs(parts.query).get("sslmode") or [""])[0]
    if mode in _TLS_MODES:
        return f"connexion au registre PostgreSQL chiffrée par TLS (sslmode={mode})"
    return "connexion au registre PostgreSQL sans TLS imposé par la configuration (sslmode absent ou permissif)"


def _pseudonymised_columns(policy: UseCasePolicy) -> list[str]:
    return [f"{d.id}.{c.name}" for d in policy.datasets for c in d.columns if c.pseudonymise]


def _manifest_counts(session: Session, use_case: str) -> tuple[int, int, int]:
    """Manifests registered for the use case's datasets, verifications, and verifications that found a change."""
    datasets = select(DatasetRecord.id).where(DatasetRecord.use_case == use_case)
    manifests = session.scalar(select(func.count(Manifest.id)).where(Manifest.dataset_id.in_(datasets))) or 0
    outcomes = Counter(
        session.scalars(select(ManifestVerification.outcome).where(ManifestVerification.dataset_id.in_(datasets)))
    )
    return manifests, sum(outcomes.values()), sum(n for outcome, n in outcomes.items() if outcome != "ok")


def security_measures(policy: UseCasePolicy, session: Session, chain_head: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The technical measures the software applies to ``policy``'s use case, with their state in the ledger."""
    manifests, verifications, changed = _manifest_counts(session, policy.id)
    columns = _pseudonymised_columns(policy)
    kinds = sorted({d.kind.value for d in policy.incidents.destinations})
    verified = {True: "vérifiée", False: "NON vérifiée", None: "non vérifiable ici"}[chain_head.get("verified")]
    return [
        software(
            "Intégrité des jeux de données",
            "Manifestes Merkle (SHA-256) signés Ed25519 de chaque fichier livré, vérifiés avant usage ; un écart "
            f"bloque l'exécution et ouvre un incident. Journal : {manifests} manifeste(s), {verifications} "
            f"vérification(s) dont {changed} écart(s).",
            manifests=manifests,
            verifications=verifications,
            mismatches=changed,
        ),
        software(
            "Alerte en cas d'incident",
            "Chaque incident est enregistré avec ses champs de l'art. 33 et son alerte dans la même transaction, "
            f"envoyé aux {len(policy.alert_recipients)} destinataire(s) d'alerte de la politique"
            + (f" et aux destinations {', '.join(kinds)}" if kinds else "")
            + f" ; escalade sans prise en compte sous {policy.incidents.ack_within_hours:g} h.",
        ),
        software(
            "Pseudonymisation par clé",
            "HMAC-SHA256 avec une clé propre au cas d'usage (dérivée par HKDF) avant l'entraînement ; les colonnes "
            "non déclarées sont écartées ; entités détectées dans le texte libre remplacées par des jetons. "
            + (f"Colonnes pseudonymisées : {', '.join(columns)}." if columns else "Aucune colonne pseudonymisée."),
            columns=columns,
        ),
        software(
            "Journal d'audit",
            "Chaîne d'événements SHA-256 dont chaque tête est signée Ed25519 et ancrée hors de la base ; "
            + (f"tête n° {chain_head['seq']} {verified}." if chain_head.get("seq") is not None else "chaîne vide."),
        ),
        software(
            "Contrôle d'accès",
            "Vue de gouvernance derrière le gestionnaire d'authentification d'Airflow : lecture des exécutions pour "
            "consulter, modification pour agir, configuration pour la gouvernance ; publication d'un modèle "
            f"approuvée par l'un des {len(policy.approvers)} approbateur(s), jamais par l'auteur du déclenchement.",
        ),
        software("Chiffrement des échanges", _ledger_transport(get_settings().ledger_url) + "."),
        human_only(
            "Chiffrement au repos (disques, sauvegardes)",
            RSSI,
            "le logiciel ne chiffre pas les fichiers qu'il écrit ; les clés sont des fichiers lisibles par leur seul "
            "propriétaire (0600)",
        ),
    ]


def _numbers(values: Mapping[str, Any] | None) -> dict[str, float | int]:
    """The numeric metrics of a result only: a string metric could carry anything."""
    return {str(k): v for k, v in (values or {}).items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _check_history(session: Session, use_case: str) -> dict[str, dict[str, Any]]:
    rows = session.execute(
        select(
            CheckResultRecord.check, CheckResultRecord.verdict, CheckResultRecord.created_at, CheckResultRecord.metrics
        )
        .join(CheckRun, CheckResultRecord.check_run_id == CheckRun.id)
        .where(CheckRun.use_case == use_case)
        .order_by(CheckResultRecord.created_at, CheckResultRecord.id)
    ).all()
    checks: dict[str, dict[str, Any]] = {}
    for check, verdict, at, metrics in rows:
        item = checks.setdefault(check, {"results": 0, "verdicts": {"pass": 0, "warn": 0, "fail": 0}})
        item["results"] += 1
        item["verdicts"][verdict] = item["verdicts"].get(verdict, 0) + 1
        item["last"] = {"verdict": verdict, "at": at.isoformat(timespec="seconds"), "metrics": _numbers(metrics)}
    return dict(sorted(checks.items()))


def _incident_history(session: Session, use_case: str) -> dict[str, Any]:
    rows = session.execute(
        select(Incident.breach_type, Incident.severity, Incident.status).where(Incident.use_case == use_case)
    ).all()
    return {
        "total": len(rows),
        "open": sum(1 for _, _, s in rows if s != "resolved"),
        "by_breach_type": dict(Counter(b for b, _, _ in rows)),
        "by_severity": dict(Counter(s for _, s, _ in rows)),
    }


def _pii_history(session: Session, use_case: str) -> dict[str, Any]:
    """Findings per entity type: how many values, and how many where the policy does not allow them."""
    rows = session.execute(
        select(PiiFinding.entity_type, PiiFinding.count, PiiFinding.allowed)
        .join(CheckResultRecord, PiiFinding.check_result_id == CheckResultRecord.id)
        .join(CheckRun, CheckResultRecord.check_run_id == CheckRun.id)
        .where(CheckRun.use_case == use_case)
    ).all()
    by_entity: dict[str, dict[str, int]] = {}
    for entity, count, allowed in rows:
        item = by_entity.setdefault(entity, {"findings": 0, "values": 0, "not_allowed": 0})
        item["findings"] += 1
        item["values"] += int(count)
        item["not_allowed"] += 0 if allowed else int(count)
    return dict(sorted(by_entity.items()))


def ledger_history(session: Session, use_case: str) -> dict[str, Any]:
    """What the ledger recorded for ``use_case``: counts and verdicts, never a personal value."""
    decisions = Counter(
        d or "running" for d in session.scalars(select(CheckRun.decision).where(CheckRun.use_case == use_case))
    )
    approvals = Counter(session.scalars(select(Approval.decision).where(Approval.use_case == use_case)))
    models = session.execute(
        select(ModelVersion.version, ModelVersion.status, ModelVersion.suspended).where(
            ModelVersion.use_case == use_case
        )
    ).all()
    return {
        "runs": sum(decisions.values()),
        "decisions": dict(decisions),
        "checks": _check_history(session, use_case),
        "incidents": _incident_history(session, use_case),
        "personal_data_findings": _pii_history(session, use_case),
        "approvals": dict(approvals),
        "model_versions": len(models),
        "production_version": max((v for v, s, susp in models if s == "production" and not susp), default=None),
    }


__all__ = ["RSSI", "ledger_history", "security_measures"]
