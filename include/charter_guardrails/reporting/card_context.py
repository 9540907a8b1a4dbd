"""What a model card shows, as plain JSON-safe data: the templates ``model_card.md`` and ``.html`` lay it out.

Only aggregates go in: metric values, group sizes and rates, column *names*.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from charter_guardrails.core.engagements import load_engagements
from charter_guardrails.core.json_values import json_safe
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import ColumnRole, Dataset, PersonalDataCategory
from charter_guardrails.core.results import CheckResult, Verdict
from charter_guardrails.refresh.energy import EnergyMeasurement
from charter_guardrails.reporting.rendering import fmt_date
from charter_guardrails.reporting.vocabulary import decision_label, engagement_label, verdict_label

#: Engagements the card and the label serve by existing: the card explains how the model works
#: (Transparence 3) to the agents who use it (Maîtrise humaine 4), the badge labels the service (Transparence 4).
CARD_ENGAGEMENTS = ["transparence.3", "transparence.4", "maitrise_humaine.4"]

METRIC_LABELS = {
    "accuracy": "Exactitude (part de bonnes réponses)",
    "f1_macro": "F1 macro (moyenne par catégorie)",
    "mae": "Erreur absolue moyenne",
    "r2": "R² (part de variance expliquée)",
    "selection_rate": "Taux de sélection",
    "count": "Effectif",
}
LEGAL_BASIS_LABELS = {
    "consent": "consentement (RGPD art. 6(1)(a))",
    "contract": "contrat (RGPD art. 6(1)(b))",
    "legal_obligation": "obligation légale (RGPD art. 6(1)(c))",
    "vital_interests": "intérêts vitaux (RGPD art. 6(1)(d))",
    "public_task": "mission d'intérêt public (RGPD art. 6(1)(e))",
    "legitimate_interests": "intérêts légitimes (RGPD art. 6(1)(f))",
}
ROLE_LABELS = {
    ColumnRole.FEATURE: "entrée du modèle",
    ColumnRole.FREE_TEXT: "entrée du modèle (texte libre)",
    ColumnRole.LABEL: "étiquette à prédire",
    ColumnRole.SENSITIVE_ATTRIBUTE: "mesure de l'équité uniquement (jamais une entrée)",
    ColumnRole.IDENTIFIER: "identifiant (exclu de l'entraînement)",
    ColumnRole.TIMESTAMP: "date (conservation et période, jamais une entrée)",
}
#: Keys of a fairness row that are not metrics.
_FAIRNESS_KEYS = ("column", "group", "compared", "count")


def _load_engagement_texts() -> dict[str, str]:
    """Each engagement's wording, by id, from the charter's engagements file."""
    return {e.id: e.text for e in load_engagements()}


def _flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, (int, float)) or value is None:
            out[name] = value
    return out


def _metric_label(name: str) -> str:
    head, _, tail = name.rpartition(".")
    base = tail if head else name
    label = METRIC_LABELS.get(base.removeprefix("baseline_"), base)
    if base.startswith("baseline_"):
        label += " — prédicteur naïf"
    return f"{head} · {label}" if head else label


def _how_it_works(policy: UseCasePolicy, inputs: list[str]) -> str:
    if policy.model.trainer:
        what = "une classe" if policy.model.kind == "text_classifier" else "une valeur numérique"
        text = (
            f"Le modèle est construit par la fonction d'entraînement de l'équipe ({policy.model.trainer}), "
            f"à partir des seules colonnes déclarées : {', '.join(inputs)}. Il prédit {what} de "
            f"« {policy.model.target} »; il est évalué, mesuré et publié comme les modèles intégrés."
        )
    elif policy.model.kind == "text_classifier":
        texts = {c.name for c in policy.training_dataset.columns_with_role(ColumnRole.FREE_TEXT)}
        others = [name for name in inputs if name not in texts]
        read = ", ".join(sorted(texts & set(inputs)))
        text = (
            f"Le modèle lit le texte ({read}) et le découpe en mots et en paires de mots, "
            "pondérés selon leur rareté (TF-IDF)."
            + (f" Il prend aussi en compte : {', '.join(others)}." if others else "")
            + f" Une régression logistique calcule, pour chaque valeur possible de « {policy.model.target} », "
            "un score à partir de ces indices, et propose la valeur au score le plus élevé."
        )
    else:
        text = (
            "Le modèle additionne les réponses de nombreux petits arbres de décision (gradient boosting), "
            f"chacun corrigeant l'erreur des précédents, à partir de : {', '.join(inputs)}. "
            f"Il prédit une valeur numérique de « {policy.model.target} »."
        )
    if policy.decision_support:
        text += " C'est une aide à la décision : un agent valide toujours la proposition et peut la corriger."
    return text


def _as_energy(energy: EnergyMeasurement | dict[str, Any] | None) -> EnergyMeasurement | None:
    if isinstance(energy, EnergyMeasurement):
        return energy
    return EnergyMeasurement.from_json_dict(energy) if energy else None


def fairness_rows(fairness: Any) -> list[dict[str, Any]]:
    """Accept the table itself, an EvaluationReport, the fairness CheckResult or its evidence dict."""
    if fairness is None:
        return []
    if hasattr(fairness, "fairness_table"):
        return list(fairness.fairness_table())
    if isinstance(fairness, CheckResult):
        fairness = fairness.evidence
    if isinstance(fairness, dict):
        if "evidence" in fairness and isinstance(fairness["evidence"], dict):
            fairness = fairness["evidence"]
        return [dict(r) for r in fairness.get("table", [])]
    return [dict(r) for r in fairness]


def normalise_overrides(overrides: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """One ``{check, justification, actor}`` per overridden check; ``checks: [...]`` is expanded."""
    out: list[dict[str, Any]] = []
    for override in overrides or []:
        checks = override.get("checks")
        names = [str(c) for c in checks] if isinstance(checks, (list, tuple)) else [str(override.get("check"))]
        for name in names:
            out.append({"check": name, "justification": override.get("justification"), "actor": override.get("actor")})
    return out


def _as_result(value: CheckResult | dict[str, Any]) -> CheckResult:
    return value if isinstance(value, CheckResult) else CheckResult.from_json_dict(value)


def _engagement_rows(results: list[CheckResult], overridden: set[str]) -> list[dict[str, Any]]:
    texts = _load_engagement_texts()
    by_engagement: dict[str, list[CheckResult]] = {}
    for result in results:
        for engagement in result.engagements:
            by_engagement.setdefault(engagement, []).append(result)
    rows = []
    for engagement in sorted({*by_engagement, *CARD_ENGAGEMENTS}):
        checks = by_engagement.get(engagement, [])
        failing = [r.check for r in checks if r.verdict is Verdict.FAIL and r.check not in overridden]
        derogated = [r.check for r in checks if r.verdict is Verdict.FAIL and r.check in overridden]
        if failing:
            status = "non satisfait"
        elif derogated:
            status = "satisfait avec dérogation"
        else:
            status = "satisfait"
        names: list[str] = [r.check for r in checks] or ["fiche de transparence et étiquette IA"]
        rows.append(
            {
                "id": engagement,
                "label": engagement_label(engagement),
                "text": texts.get(engagement, ""),
                "status": status,
                "checks": names,
                "satisfied": not failing,
            }
        )
    return rows


def _limits(
    policy: UseCasePolicy, period: dict[str, Any], fairness: list[dict[str, Any]], overrides: list[dict[str, Any]]
) -> list[str]:
    limits = [
        f"Le modèle a appris sur les données du {fmt_date(period.get('start'))} au {fmt_date(period.get('end'))} ; "
        "un changement des usages ou du territoire peut dégrader ses résultats "
        "(une surveillance de dérive est en place)."
    ]
    small = [f"{r['column']} = {r['group']} ({r['count']} lignes)" for r in fairness if not r.get("compared")]
    if small:
        limits.append(
            "L'équité n'a pas pu être mesurée pour les groupes trop petits dans l'échantillon d'évaluation : "
            + ", ".join(small)
            + "."
        )
    if not policy.equity.groups:
        limits.append(
            "Aucun groupe de population n'est déclaré pour ce cas d'usage : l'équité entre groupes n'est pas mesurée."
        )
    sensitive = [c.name for c in policy.training_dataset.columns_with_role(ColumnRole.SENSITIVE_ATTRIBUTE)]
    if sensitive:
        limits.append(
            f"Les attributs sensibles ({', '.join(sensitive)}) ne sont pas des entrées du modèle ; "
            "ils servent seulement à vérifier l'équité."
        )
    if policy.decision_support:
        limits.append("Les propositions peuvent être fausses : elles ne remplacent pas l'examen de l'agent.")
    else:
        limits.append(
            "Les prévisions sont des estimations : elles orientent la planification et ne décident pas seules."
        )
    if overrides:
        limits.append(
            f"Cette version a été publiée avec {len(overrides)} dérogation(s) justifiée(s) ; voir ci-dessous."
        )
    return limits


def _columns(dataset: Dataset) -> list[dict[str, Any]]:
    return [
        {
            "name": c.name,
            "role": ROLE_LABELS.get(c.role, c.role.value),
            "type": c.type.value,
            "personal_data": "aucune" if c.personal_data is PersonalDataCategory.NONE else c.personal_data.value,
            "pseudonymised": c.pseudonymise,
        }
        for c in dataset.columns
    ]


def _pseudonymisation(dataset: Dataset) -> list[str]:
    pseudonymised = [c for c in dataset.columns if c.pseudonymise]
    if pseudonymised:
        return [
            f"{c.name} : "
            + (
                "valeurs remplacées par un hachage à clé secrète (HMAC)"
                if c.role is not ColumnRole.FREE_TEXT
                else "noms, téléphones, courriels, NIR et autres données détectées masqués avant l'entraînement"
            )
            for c in pseudonymised
        ]
    if dataset.personal_data:
        return ["Données personnelles déclarées sans pseudonymisation : voir la déclaration du cas d'usage."]
    return ["Aucune donnée personnelle : le jeu de données est déclaré non personnel et vérifié à chaque exécution."]


def _energy(energy: EnergyMeasurement | dict[str, Any] | None) -> dict[str, Any] | None:
    measured = _as_energy(energy)
    if measured is None:
        return None
    return {
        "kwh": measured.kwh,
        "wh": measured.kwh * 1000,
        "gco2e": measured.gco2e,
        "duration_s": measured.duration_s,
        "method": measured.method,
        "country_iso_code": measured.country_iso_code,
    }


def _check_rows(checked: list[CheckResult], overridden: set[str]) -> list[dict[str, Any]]:
    return [
        {
            "check": r.check,
            "verdict": r.verdict.value,
            "verdict_label": verdict_label(r.verdict),
            "summary": r.summary_in("fr"),
            "engagements": [engagement_label(e) for e in r.engagements],
            "overridden": r.check in overridden,
        }
        for r in checked
    ]


def _policy_context(policy: UseCasePolicy) -> dict[str, Any]:
    """The declaration part of the card: who, what for, on which legal basis, who to turn to."""
    dataset = policy.training_dataset
    recourse = policy.human_recourse
    return {
        "use_case": policy.id,
        "title": policy.title,
        "purpose": policy.purpose.strip(),
        "legal_basis": LEGAL_BASIS_LABELS.get(policy.legal_basis.value, policy.legal_basis.value),
        "legal_basis_detail": policy.legal_basis_detail,
        "owner": {"name": policy.owner.name, "email": policy.owner.email},
        "dpo": {"name": policy.dpo.name, "email": policy.dpo.email},
        "decision_support": policy.decision_support,
        "human_recourse": {"name": recourse.name, "email": recourse.email, "role": recourse.role} if recourse else None,
        "dataset": {
            "id": dataset.id,
            "personal_data": dataset.personal_data,
            "data_subjects": list(dataset.data_subjects),
            "retention_days": dataset.retention.days if dataset.retention else None,
        },
        "columns": _columns(dataset),
        "target": policy.model.target,
        "pseudonymisation": _pseudonymisation(dataset),
        "model_kind": policy.model.kind,
        "primary_metric": policy.model.metric,
        "primary_metric_label": METRIC_LABELS.get(policy.model.metric, policy.model.metric),
        "fairness_positive_label": policy.equity.positive_label,
        "fairness_limit": policy.equity.max_metric_difference,
    }


def _model_inputs(policy: UseCasePolicy) -> list[str]:
    roles = (ColumnRole.FEATURE, ColumnRole.FREE_TEXT)
    return [c.name for c in policy.training_dataset.columns_with_role(*roles) if c.name != policy.model.target]


@dataclass(frozen=True, kw_only=True)
class ModelCardFacts:
    """What the card of one model version states.

    :param version: the model version number (``ModelVersion.version``).
    :param run_id: the Airflow run that produced it.
    :param metrics: named numbers, flat or nested (e.g. candidate, production and baseline scores, gain).
    :param fairness: the fairness table (rows of :meth:`EvaluationReport.fairness_table`), the
        :class:`~charter_guardrails.refresh.evaluation.EvaluationReport`, the ``fairness`` CheckResult or its
        evidence dict (its ``table``); ``None`` or ``{}`` when there is none.
    :param energy: the training's :class:`~charter_guardrails.refresh.energy.EnergyMeasurement`, its JSON dict,
        or ``None``/``{}`` if unmeasured.
    :param approver: who approved (name or e-mail), ``None`` when not recorded.
    :param decision: ``published``, ``approved``, ``overridden``… (shown in French).
    :param overrides: ``{check, justification, actor}`` per overridden guardrail (``checks: [...]`` for several).
    :param results: every :class:`CheckResult` of the run (or their JSON dicts); their engagements
        are listed with a status (satisfied, satisfied with an override, not satisfied).
    :param data_period: ``{"column", "start", "end"}`` (ISO 8601), e.g. :attr:`TrainedModel.data_period`.
    :param generated_at: the card's timestamp (UTC now by default).
    """

    version: int
    run_id: str | None
    metrics: dict[str, Any]
    fairness: Any
    energy: EnergyMeasurement | dict[str, Any] | None
    approver: str | None
    decision: str
    overrides: list[dict[str, Any]]
    results: list[CheckResult | dict[str, Any]]
    data_period: dict[str, Any]
    generated_at: datetime | None = None


def build_model_card_context(policy: UseCasePolicy, facts: ModelCardFacts) -> dict[str, Any]:
    """Everything the card shows, as plain JSON-safe data (the templates only lay it out)."""
    fairness, data_period, results = facts.fairness, facts.data_period, facts.results
    table = fairness_rows(fairness)
    overrides = normalise_overrides(facts.overrides)
    overridden = {str(o["check"]) for o in overrides}
    inputs = _model_inputs(policy)
    engagements = _engagement_rows([_as_result(r) for r in results], overridden)
    period = {key: data_period.get(key) for key in ("column", "start", "end")}
    context: dict[str, Any] = json_safe(
        {
            **_policy_context(policy),
            "version": facts.version,
            "run_id": facts.run_id,
            "generated_at": (facts.generated_at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds"),
            "decision": facts.decision,
            "decision_label": decision_label(facts.decision),
            "approver": facts.approver,
            "model_inputs": inputs,
            "data_period": {**period, "start_label": fmt_date(period["start"]), "end_label": fmt_date(period["end"])},
            "how_it_works": _how_it_works(policy, inputs),
            "metrics": [{"name": n, "label": _metric_label(n), "value": v} for n, v in _flatten(facts.metrics).items()],
            "fairness": table,
            "fairness_metrics": sorted({k for row in table for k in row if k not in _FAIRNESS_KEYS}),
            "energy": _energy(facts.energy),
            "limits": _limits(policy, data_period, table, overrides),
            "overrides": overrides,
            "checks": _check_rows([_as_result(r) for r in results], overridden),
            "engagements": engagements,
            "engagements_satisfied": [e["id"] for e in engagements if e["satisfied"]],
        }
    )
    return context
