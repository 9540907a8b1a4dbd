"""The French model card ("fiche de transparence") and the AI label of a published model version.

Transparence 3 (explain the system in plain words) and 4 ("identifier par un logo explicite les
services numériques à base d'IA"): at publish, a model version gets

- ``model_card.md`` and ``model_card.html``: purpose, legal basis, data used (columns and period),
  pseudonymisation, how the model works, metrics, fairness per group, energy and CO₂, limits,
  the human recourse channel, the approver, overrides and the charter engagements satisfied;
- ``ai_label.svg``: an accessible badge "Service utilisant l'IA" (``role="img"``, ``<title>``,
  ``<desc>``) for the service's pages;
- ``ai_label.json``: the label's machine-readable metadata.

Only aggregates go in: metric values, group sizes and rates, column *names*. The HTML is rendered
by Jinja2 with autoescaping, and every text placed in Markdown or SVG is escaped.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from charter_guardrails.core.policy import ColumnRole, PersonalDataCategory, UseCasePolicy
from charter_guardrails.core.results import CheckResult, Verdict, _json_safe
from charter_guardrails.refresh.training import EnergyMeasurement

LABEL_TEXT = "Service utilisant l'IA"
LABEL_SCHEMA = "charter-ai-label/1"
TRANSPARENCE_4 = "identifier par un logo explicite les services numériques à base d'IA"
#: Engagements the card and the label serve by existing: they tell users an AI is used and what for (1), explain it (3), label it (4).
CARD_ENGAGEMENTS = ["transparence.1", "transparence.3", "transparence.4"]

PRINCIPLE_LABELS = {
    "transparence": "Transparence",
    "equite": "Équité",
    "maitrise_humaine": "Maîtrise humaine",
    "durabilite": "Durabilité",
    "surete": "Sûreté",
    "proportionnalite": "Proportionnalité",
}
METRIC_LABELS = {
    "accuracy": "Exactitude (part de bonnes réponses)",
    "f1_macro": "F1 macro (moyenne par catégorie)",
    "mae": "Erreur absolue moyenne",
    "r2": "R² (part de variance expliquée)",
    "selection_rate": "Taux de sélection",
    "count": "Effectif",
}
DECISION_LABELS = {
    "published": "publiée",
    "approved": "approuvée",
    "overridden": "publiée avec dérogation",
    "rejected": "refusée",
    "blocked": "bloquée",
    "needs_approval": "en attente d'approbation",
}
VERDICT_LABELS = {"pass": "conforme", "warn": "avertissement", "fail": "échec"}
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


@dataclass(frozen=True)
class ModelCardPaths:
    """The four files of a model card."""

    markdown: Path
    html: Path
    badge_svg: Path
    label_json: Path

    def to_json_dict(self) -> dict[str, str]:
        return {
            "markdown": str(self.markdown),
            "html": str(self.html),
            "badge_svg": str(self.badge_svg),
            "label_json": str(self.label_json),
        }


def engagement_label(engagement: str) -> str:
    """``maitrise_humaine.6`` → ``Maîtrise humaine 6``."""
    principle, _, number = engagement.partition(".")
    return f"{PRINCIPLE_LABELS.get(principle, principle)} {number}".strip()


def _load_engagement_texts() -> dict[str, str]:
    """Engagement wordings from ``engagements.yaml`` when the project ships it; ids alone otherwise."""
    path = Path(__file__).with_name("engagements.yaml")
    if not path.exists():
        return {}
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return {
            f"{principle}.{item['number']}": str(item["text"])
            for principle, block in (data.get("principles") or {}).items()
            for item in block.get("engagements", [])
        }
    except Exception:  # noqa: BLE001 - the wording is a nicety; the card is complete without it
        return {}


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    if isinstance(value, float):
        if value != 0 and abs(value) < 10**-digits:
            return f"{value:.3g}".replace(".", ",")  # tiny energies stay readable instead of 0,0000
        return f"{value:.{digits}f}".replace(".", ",")
    return str(value)


def _fmt_date(value: str | None) -> str:
    if not value:
        return "inconnue"
    try:
        return datetime.fromisoformat(value).strftime("%d/%m/%Y")
    except ValueError:
        return value


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
    if policy.model.kind == "text_classifier":
        texts = {c.name for c in policy.training_dataset.columns_with_role(ColumnRole.FREE_TEXT)}
        others = [name for name in inputs if name not in texts]
        text = (
            f"Le modèle lit le texte ({', '.join(sorted(texts & set(inputs)))}) et le découpe en mots et en paires de mots, "
            "pondérés selon leur rareté (TF-IDF)."
            + (f" Il prend aussi en compte : {', '.join(others)}." if others else "")
            + f" Une régression logistique calcule, pour chaque valeur possible de « {policy.model.target} », un score à partir "
            "de ces indices, et propose la valeur au score le plus élevé."
        )
    else:
        text = (
            f"Le modèle additionne les réponses de nombreux petits arbres de décision (gradient boosting), chacun corrigeant "
            f"l'erreur des précédents, à partir de : {', '.join(inputs)}. Il prédit une valeur numérique de « {policy.model.target} »."
        )
    if policy.decision_support:
        text += " C'est une aide à la décision : un agent valide toujours la proposition et peut la corriger."
    return text


def _as_energy(energy: EnergyMeasurement | dict[str, Any] | None) -> EnergyMeasurement | None:
    if isinstance(energy, EnergyMeasurement):
        return energy
    return EnergyMeasurement.from_json_dict(energy) if energy else None


def _fairness_rows(fairness: Any) -> list[dict[str, Any]]:
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


def _normalise_overrides(overrides: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
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
        names = [r.check for r in checks] or ["fiche de transparence et étiquette IA"]
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
    policy: UseCasePolicy, period: dict[str, Any], fairness_rows: list[dict[str, Any]], overrides: list[dict[str, Any]]
) -> list[str]:
    limits = [
        f"Le modèle a appris sur les données du {_fmt_date(period.get('start'))} au {_fmt_date(period.get('end'))} ; "
        "un changement des usages ou du territoire peut dégrader ses résultats (une surveillance de dérive est en place)."
    ]
    small = [f"{r['column']} = {r['group']} ({r['count']} lignes)" for r in fairness_rows if not r.get("compared")]
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
            f"Les attributs sensibles ({', '.join(sensitive)}) ne sont pas des entrées du modèle ; ils servent seulement à vérifier l'équité."
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


def _badge_svg(policy: UseCasePolicy, version: int) -> str:
    title = html.escape(LABEL_TEXT)
    desc = html.escape(
        f"Ce service numérique utilise un système d'intelligence artificielle : {policy.title} (version {version}). "
        "Étiquette de la charte pour une IA éthique de la Métropole Aix-Marseille-Provence."
    )
    subtitle = html.escape("Charte IA éthique · Métropole AMP")
    # Dark blue on white and white on dark blue: contrast above 12:1 (WCAG AAA) at any size.
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="264" height="64" viewBox="0 0 264 64" role="img" aria-labelledby="ai-label-title ai-label-desc">
  <title id="ai-label-title">{title}</title>
  <desc id="ai-label-desc">{desc}</desc>
  <rect x="1" y="1" width="262" height="62" rx="10" fill="#ffffff" stroke="#1b2a4a" stroke-width="2"/>
  <circle cx="32" cy="32" r="22" fill="#1b2a4a"/>
  <text x="32" y="39" text-anchor="middle" font-family="Marianne, Arial, Helvetica, sans-serif" font-size="19" font-weight="700" fill="#ffffff">IA</text>
  <text x="64" y="29" font-family="Marianne, Arial, Helvetica, sans-serif" font-size="16" font-weight="700" fill="#1b2a4a">{title}</text>
  <text x="64" y="47" font-family="Marianne, Arial, Helvetica, sans-serif" font-size="11" fill="#1b2a4a">{subtitle}</text>
</svg>
"""


def _md(value: Any) -> str:
    """Text safe in a Markdown table cell (no pipe, no newline, no inline HTML)."""
    return html.escape(_fmt(value), quote=False).replace("|", "\\|").replace("\n", " ")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build_model_card_context(
    policy: UseCasePolicy,
    *,
    version: int,
    run_id: str | None,
    metrics: dict[str, Any],
    fairness: Any,
    energy: EnergyMeasurement | dict[str, Any] | None,
    approver: str | None,
    decision: str,
    overrides: list[dict[str, Any]],
    results: list[CheckResult | dict[str, Any]],
    data_period: dict[str, Any],
    generated_at: datetime | None = None,
) -> dict[str, Any]:
    """Everything the card shows, as plain JSON-safe data (the templates only lay it out). See :func:`write_model_card`."""
    measured = _as_energy(energy)
    fairness_rows = _fairness_rows(fairness)
    checked = [_as_result(r) for r in results]
    overrides = _normalise_overrides(overrides)
    overridden = {str(o["check"]) for o in overrides}
    dataset = policy.training_dataset
    inputs = [
        c.name
        for c in dataset.columns_with_role(ColumnRole.FEATURE, ColumnRole.FREE_TEXT)
        if c.name != policy.model.target
    ]
    columns = [
        {
            "name": c.name,
            "role": ROLE_LABELS.get(c.role, c.role.value),
            "type": c.type.value,
            "personal_data": "aucune" if c.personal_data is PersonalDataCategory.NONE else c.personal_data.value,
            "pseudonymised": c.pseudonymise,
        }
        for c in dataset.columns
    ]
    pseudonymised = [c for c in dataset.columns if c.pseudonymise]
    if pseudonymised:
        pseudo = [
            f"{c.name} : "
            + (
                "valeurs remplacées par un hachage à clé secrète (HMAC)"
                if c.role is not ColumnRole.FREE_TEXT
                else "noms, téléphones, courriels, NIR et autres données détectées masqués avant l'entraînement"
            )
            for c in pseudonymised
        ]
    elif dataset.personal_data:
        pseudo = ["Données personnelles déclarées sans pseudonymisation : voir la déclaration du cas d'usage."]
    else:
        pseudo = [
            "Aucune donnée personnelle : le jeu de données est déclaré non personnel et vérifié à chaque exécution."
        ]
    flat = _flatten(metrics)
    metric_rows = [{"name": name, "label": _metric_label(name), "value": value} for name, value in flat.items()]
    engagements = _engagement_rows(checked, overridden)
    generated = (generated_at or datetime.now(UTC)).astimezone(UTC)
    fairness_metrics = sorted(
        {k for row in fairness_rows for k in row if k not in ("column", "group", "compared", "count")}
    )
    return _json_safe(
        {
            "use_case": policy.id,
            "title": policy.title,
            "version": version,
            "run_id": run_id,
            "generated_at": generated.isoformat(timespec="seconds"),
            "decision": decision,
            "decision_label": DECISION_LABELS.get(decision, decision),
            "approver": approver,
            "purpose": policy.purpose.strip(),
            "legal_basis": LEGAL_BASIS_LABELS.get(policy.legal_basis.value, policy.legal_basis.value),
            "legal_basis_detail": policy.legal_basis_detail,
            "owner": {"name": policy.owner.name, "email": policy.owner.email},
            "dpo": {"name": policy.dpo.name, "email": policy.dpo.email},
            "decision_support": policy.decision_support,
            "human_recourse": (
                {
                    "name": policy.human_recourse.name,
                    "email": policy.human_recourse.email,
                    "role": policy.human_recourse.role,
                }
                if policy.human_recourse
                else None
            ),
            "dataset": {
                "id": dataset.id,
                "personal_data": dataset.personal_data,
                "data_subjects": list(dataset.data_subjects),
                "retention_days": dataset.retention.days if dataset.retention else None,
            },
            "columns": columns,
            "model_inputs": inputs,
            "target": policy.model.target,
            "data_period": {
                "column": data_period.get("column"),
                "start": data_period.get("start"),
                "end": data_period.get("end"),
                "start_label": _fmt_date(data_period.get("start")),
                "end_label": _fmt_date(data_period.get("end")),
            },
            "pseudonymisation": pseudo,
            "model_kind": policy.model.kind,
            "how_it_works": _how_it_works(policy, inputs),
            "primary_metric": policy.model.metric,
            "primary_metric_label": METRIC_LABELS.get(policy.model.metric, policy.model.metric),
            "metrics": metric_rows,
            "fairness": fairness_rows,
            "fairness_metrics": fairness_metrics,
            "fairness_positive_label": policy.equity.positive_label,
            "fairness_limit": policy.equity.max_metric_difference,
            "energy": (
                {
                    "kwh": measured.kwh,
                    "wh": measured.kwh * 1000,
                    "gco2e": measured.gco2e,
                    "duration_s": measured.duration_s,
                    "method": measured.method,
                    "country_iso_code": measured.country_iso_code,
                }
                if measured
                else None
            ),
            "limits": _limits(policy, data_period, fairness_rows, overrides),
            "overrides": overrides,
            "checks": [
                {
                    "check": r.check,
                    "verdict": r.verdict.value,
                    "verdict_label": VERDICT_LABELS[r.verdict.value],
                    "summary": r.summary,
                    "engagements": [engagement_label(e) for e in r.engagements],
                    "overridden": r.check in overridden,
                }
                for r in checked
            ],
            "engagements": engagements,
            "engagements_satisfied": [e["id"] for e in engagements if e["satisfied"]],
        }
    )


def _markdown(ctx: dict[str, Any]) -> str:
    lines = [
        f"# Fiche de transparence — {_md(ctx['title'])}",
        "",
        f"**{LABEL_TEXT}.** ![{LABEL_TEXT}](ai_label.svg)",
        "",
        "| | |",
        "|---|---|",
        f"| Cas d'usage | `{_md(ctx['use_case'])}` |",
        f"| Version | {ctx['version']} |",
        f"| Décision | {_md(ctx['decision_label'])} |",
        f"| Approuvée par | {_md(ctx['approver'] or 'non renseigné')} |",
        f"| Exécution | `{_md(ctx['run_id'] or '—')}` |",
        f"| Fiche générée le | {_md(ctx['generated_at'])} |",
        "",
        "## Finalité",
        "",
        _md(ctx["purpose"]),
        "",
        "## Base légale",
        "",
        _md(ctx["legal_basis"]) + (f" — {_md(ctx['legal_basis_detail'])}" if ctx["legal_basis_detail"] else ""),
        "",
        f"Responsable : {_md(ctx['owner']['name'])} ({_md(ctx['owner']['email'])}). Délégué à la protection des données : "
        f"{_md(ctx['dpo']['name'])} ({_md(ctx['dpo']['email'])}).",
        "",
        "## Données utilisées",
        "",
        f"Jeu de données `{_md(ctx['dataset']['id'])}`, période du {ctx['data_period']['start_label']} au {ctx['data_period']['end_label']}"
        + (f" (colonne `{_md(ctx['data_period']['column'])}`)" if ctx["data_period"]["column"] else "")
        + "."
        + (
            f" Conservation : {ctx['dataset']['retention_days']} jours ; les lignes plus anciennes sont exclues."
            if ctx["dataset"]["retention_days"]
            else ""
        ),
        "",
        "| Colonne | Usage | Type | Donnée personnelle | Pseudonymisée |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| `{_md(c['name'])}` | {_md(c['role'])} | {_md(c['type'])} | {_md(c['personal_data'])} | {_fmt(c['pseudonymised'])} |"
        for c in ctx["columns"]
    ]
    lines += ["", "Les colonnes non déclarées sont supprimées avant l'entraînement.", "", "## Pseudonymisation", ""] + [
        f"- {_md(p)}" for p in ctx["pseudonymisation"]
    ]
    lines += [
        "",
        "## Fonctionnement du modèle",
        "",
        _md(ctx["how_it_works"]),
        "",
        "## Performances",
        "",
        f"Mesure principale : {_md(ctx['primary_metric_label'])}, sur un échantillon d'évaluation mis de côté.",
        "",
        "| Mesure | Valeur |",
        "|---|---|",
    ]
    lines += [f"| {_md(m['label'])} (`{_md(m['name'])}`) | {_md(m['value'])} |" for m in ctx["metrics"]]
    lines += ["", "## Équité entre groupes", ""]
    if ctx["fairness"]:
        metrics = ctx["fairness_metrics"]
        if ctx["fairness_positive_label"]:
            lines += [
                f"Taux de sélection : part des demandes orientées vers « {_md(ctx['fairness_positive_label'])} ». "
                f"Écart maximal admis entre groupes : {_fmt(ctx['fairness_limit'], 2)}.",
                "",
            ]
        lines += [
            "| Attribut | Groupe | Effectif | "
            + " | ".join(_md(METRIC_LABELS.get(m, m)) for m in metrics)
            + " | Comparé |",
            "|---|---|---|" + "---|" * len(metrics) + "---|",
        ]
        lines += [
            f"| {_md(r['column'])} | {_md(r['group'])} | {_md(r.get('count'))} | "
            + " | ".join(_md(r.get(m)) for m in metrics)
            + f" | {'oui' if r.get('compared') else 'non (groupe trop petit)'} |"
            for r in ctx["fairness"]
        ]
    else:
        lines.append("Aucun groupe de population n'est déclaré pour ce cas d'usage.")
    e = ctx["energy"]
    lines += ["", "## Énergie et CO₂", ""]
    if e:
        lines += [
            f"Entraînement : {_fmt(e['wh'], 4)} Wh ({_fmt(e['kwh'], 8)} kWh), {_fmt(e['gco2e'], 6)} g CO₂e, en {_fmt(e['duration_s'], 1)} s.",
            f"Méthode : {_md(e['method'])}.",
        ]
    else:
        lines.append("Énergie de l'entraînement non mesurée.")
    lines += ["", "## Limites", ""] + [f"- {_md(limit)}" for limit in ctx["limits"]]
    lines += ["", "## Recours humain", ""]
    recourse = ctx["human_recourse"]
    if recourse:
        lines.append(
            f"Pour contester une décision prise avec l'aide de ce système : {_md(recourse['name'])} — {_md(recourse['email'])}."
        )
    else:
        lines.append(
            f"Ce système n'est pas une aide à la décision individuelle. Contact : {_md(ctx['owner']['name'])} — {_md(ctx['owner']['email'])}."
        )
    lines += ["", "## Dérogations", ""]
    lines += [
        f"- **{_md(o['check'])}** par {_md(o['actor'])} : {_md(o['justification'])}" for o in ctx["overrides"]
    ] or ["Aucune dérogation."]
    lines += ["", "## Contrôles exécutés", "", "| Contrôle | Verdict | Engagements | Résumé |", "|---|---|---|---|"]
    lines += [
        f"| {_md(c['check'])} | {_md(c['verdict_label'])}{' (dérogation)' if c['overridden'] else ''} | {_md(', '.join(c['engagements']))} | {_md(c['summary'])} |"
        for c in ctx["checks"]
    ]
    lines += ["", "## Engagements de la charte", "", "| Engagement | Statut | Contrôles |", "|---|---|---|"]
    lines += [
        f"| {_md(g['label'])}{(' — ' + _md(g['text'])) if g['text'] else ''} | {_md(g['status'])} | {_md(', '.join(g['checks']))} |"
        for g in ctx["engagements"]
    ]
    lines += [
        "",
        "## Étiquette IA",
        "",
        f"Transparence 4 : « {TRANSPARENCE_4} ». Le badge `ai_label.svg` et ses métadonnées `ai_label.json` accompagnent cette fiche.",
        "",
    ]
    return "\n".join(lines)


HTML_TEMPLATE = """<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fiche de transparence — {{ c.title }} (version {{ c.version }})</title>
<style>
 body { font-family: Marianne, Arial, Helvetica, sans-serif; color: #1b2a4a; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
 table { border-collapse: collapse; margin: .5rem 0 1rem; } th, td { border: 1px solid #c8cdd6; padding: .3rem .6rem; text-align: left; vertical-align: top; }
 th { background: #eef1f6; } .fail { color: #a4161a; font-weight: 700; } .warn { color: #7a4b00; } code { background: #eef1f6; padding: 0 .2rem; }
 header { display: flex; gap: 1rem; align-items: center; }
</style>
</head>
<body>
<header>
 <img src="ai_label.svg" width="264" height="64" alt="{{ label_text }} — {{ c.title }}">
 <h1>Fiche de transparence — {{ c.title }}</h1>
</header>
<table>
 <tr><th scope="row">Cas d'usage</th><td><code>{{ c.use_case }}</code></td></tr>
 <tr><th scope="row">Version</th><td>{{ c.version }}</td></tr>
 <tr><th scope="row">Décision</th><td>{{ c.decision_label }}</td></tr>
 <tr><th scope="row">Approuvée par</th><td>{{ c.approver or "non renseigné" }}</td></tr>
 <tr><th scope="row">Exécution</th><td><code>{{ c.run_id or "—" }}</code></td></tr>
 <tr><th scope="row">Fiche générée le</th><td>{{ c.generated_at }}</td></tr>
</table>
<section><h2>Finalité</h2><p>{{ c.purpose }}</p></section>
<section><h2>Base légale</h2><p>{{ c.legal_basis }}{% if c.legal_basis_detail %} — {{ c.legal_basis_detail }}{% endif %}</p>
<p>Responsable : {{ c.owner.name }} ({{ c.owner.email }}). Délégué à la protection des données : {{ c.dpo.name }} ({{ c.dpo.email }}).</p></section>
<section><h2>Données utilisées</h2>
<p>Jeu de données <code>{{ c.dataset.id }}</code>, période du {{ c.data_period.start_label }} au {{ c.data_period.end_label }}{% if c.data_period.column %} (colonne <code>{{ c.data_period.column }}</code>){% endif %}.
{% if c.dataset.retention_days %}Conservation : {{ c.dataset.retention_days }} jours ; les lignes plus anciennes sont exclues. {% endif %}Les colonnes non déclarées sont supprimées avant l'entraînement.</p>
<table><thead><tr><th scope="col">Colonne</th><th scope="col">Usage</th><th scope="col">Type</th><th scope="col">Donnée personnelle</th><th scope="col">Pseudonymisée</th></tr></thead>
<tbody>{% for col in c.columns %}<tr><td><code>{{ col.name }}</code></td><td>{{ col.role }}</td><td>{{ col.type }}</td><td>{{ col.personal_data }}</td><td>{{ "oui" if col.pseudonymised else "non" }}</td></tr>{% endfor %}</tbody></table>
</section>
<section><h2>Pseudonymisation</h2><ul>{% for p in c.pseudonymisation %}<li>{{ p }}</li>{% endfor %}</ul></section>
<section><h2>Fonctionnement du modèle</h2><p>{{ c.how_it_works }}</p></section>
<section><h2>Performances</h2><p>Mesure principale : {{ c.primary_metric_label }}, sur un échantillon d'évaluation mis de côté.</p>
<table><thead><tr><th scope="col">Mesure</th><th scope="col">Valeur</th></tr></thead>
<tbody>{% for m in c.metrics %}<tr><td>{{ m.label }} (<code>{{ m.name }}</code>)</td><td>{{ m.value | num }}</td></tr>{% endfor %}</tbody></table></section>
<section><h2>Équité entre groupes</h2>
{% if c.fairness %}
{% if c.fairness_positive_label %}<p>Taux de sélection : part des demandes orientées vers « {{ c.fairness_positive_label }} ». Écart maximal admis entre groupes : {{ c.fairness_limit | num(2) }}.</p>{% endif %}
<table><thead><tr><th scope="col">Attribut</th><th scope="col">Groupe</th><th scope="col">Effectif</th>{% for m in c.fairness_metrics %}<th scope="col">{{ metric_labels.get(m, m) }}</th>{% endfor %}<th scope="col">Comparé</th></tr></thead>
<tbody>{% for r in c.fairness %}<tr><td>{{ r.column }}</td><td>{{ r.group }}</td><td>{{ r.count | num }}</td>{% for m in c.fairness_metrics %}<td>{{ r.get(m) | num }}</td>{% endfor %}<td>{{ "oui" if r.compared else "non (groupe trop petit)" }}</td></tr>{% endfor %}</tbody></table>
{% else %}<p>Aucun groupe de population n'est déclaré pour ce cas d'usage.</p>{% endif %}
</section>
<section><h2>Énergie et CO₂</h2>
{% if c.energy %}<p>Entraînement : {{ c.energy.wh | num(4) }} Wh ({{ c.energy.kwh | num(8) }} kWh), {{ c.energy.gco2e | num(6) }} g CO₂e, en {{ c.energy.duration_s | num(1) }} s.</p>
<p>Méthode : {{ c.energy.method }}.</p>{% else %}<p>Énergie de l'entraînement non mesurée.</p>{% endif %}</section>
<section><h2>Limites</h2><ul>{% for l in c.limits %}<li>{{ l }}</li>{% endfor %}</ul></section>
<section><h2>Recours humain</h2>
{% if c.human_recourse %}<p>Pour contester une décision prise avec l'aide de ce système : {{ c.human_recourse.name }} — <a href="mailto:{{ c.human_recourse.email }}">{{ c.human_recourse.email }}</a>.</p>
{% else %}<p>Ce système n'est pas une aide à la décision individuelle. Contact : {{ c.owner.name }} — <a href="mailto:{{ c.owner.email }}">{{ c.owner.email }}</a>.</p>{% endif %}
</section>
<section><h2>Dérogations</h2>
{% if c.overrides %}<ul>{% for o in c.overrides %}<li><strong>{{ o.check }}</strong> par {{ o.actor }} : {{ o.justification }}</li>{% endfor %}</ul>{% else %}<p>Aucune dérogation.</p>{% endif %}
</section>
<section><h2>Contrôles exécutés</h2>
<table><thead><tr><th scope="col">Contrôle</th><th scope="col">Verdict</th><th scope="col">Engagements</th><th scope="col">Résumé</th></tr></thead>
<tbody>{% for k in c.checks %}<tr><td>{{ k.check }}</td><td class="{{ k.verdict }}">{{ k.verdict_label }}{% if k.overridden %} (dérogation){% endif %}</td><td>{{ k.engagements | join(", ") }}</td><td>{{ k.summary }}</td></tr>{% endfor %}</tbody></table>
</section>
<section><h2>Engagements de la charte</h2>
<table><thead><tr><th scope="col">Engagement</th><th scope="col">Statut</th><th scope="col">Contrôles</th></tr></thead>
<tbody>{% for g in c.engagements %}<tr><td>{{ g.label }}{% if g.text %} — {{ g.text }}{% endif %}</td><td>{{ g.status }}</td><td>{{ g.checks | join(", ") }}</td></tr>{% endfor %}</tbody></table>
</section>
<section><h2>Étiquette IA</h2>
<p>Transparence 4 : « {{ transparence_4 }} ». Le badge <a href="ai_label.svg">ai_label.svg</a> et ses métadonnées <a href="ai_label.json">ai_label.json</a> accompagnent cette fiche.</p>
</section>
</body>
</html>
"""


def _html(ctx: dict[str, Any]) -> str:
    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _fmt
    return env.from_string(HTML_TEMPLATE).render(
        c=ctx, label_text=LABEL_TEXT, transparence_4=TRANSPARENCE_4, metric_labels=METRIC_LABELS
    )


def write_model_card(
    policy: UseCasePolicy,
    *,
    version: int,
    run_id: str | None,
    metrics: dict[str, Any],
    fairness: Any,
    energy: EnergyMeasurement | dict[str, Any] | None,
    approver: str | None,
    decision: str,
    overrides: list[dict[str, Any]],
    results: list[CheckResult | dict[str, Any]],
    data_period: dict[str, Any],
    out_dir: Path,
    generated_at: datetime | None = None,
) -> ModelCardPaths:
    """Write the fiche de transparence (Markdown, HTML) and the AI label (SVG badge, JSON) of a model version.

    :param policy: the use case.
    :param version: the model version number (``ModelVersion.version``).
    :param run_id: the Airflow run that produced it.
    :param metrics: named numbers, flat or nested (e.g. candidate, production and baseline scores, gain).
    :param fairness: the fairness table (rows of :meth:`EvaluationReport.fairness_table`), the
        :class:`~charter_guardrails.refresh.evaluation.EvaluationReport`, the ``fairness`` CheckResult or its
        evidence dict (its ``table``); ``None`` or ``{}`` when there is none.
    :param energy: the training's :class:`~charter_guardrails.refresh.training.EnergyMeasurement`, its JSON dict, or ``None``/``{}`` if unmeasured.
    :param approver: who approved (name or e-mail), ``None`` when not recorded.
    :param decision: ``published``, ``approved``, ``overridden``… (shown in French).
    :param overrides: ``{check, justification, actor}`` per overridden guardrail (``checks: [...]`` for several).
    :param results: every :class:`CheckResult` of the run (or their JSON dicts); their engagements
        are listed with a status (satisfied, satisfied with an override, not satisfied).
    :param data_period: ``{"column", "start", "end"}`` (ISO 8601), e.g. :attr:`TrainedModel.data_period`.
    :param out_dir: the folder to write into (created); one folder per version keeps the badge link relative.
    :param generated_at: the card's timestamp (UTC now by default).
    :returns: the four paths.
    """
    ctx = build_model_card_context(
        policy,
        version=version,
        run_id=run_id,
        metrics=metrics,
        fairness=fairness,
        energy=energy,
        approver=approver,
        decision=decision,
        overrides=overrides,
        results=results,
        data_period=data_period,
        generated_at=generated_at,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = ModelCardPaths(
        markdown=out_dir / "model_card.md",
        html=out_dir / "model_card.html",
        badge_svg=out_dir / "ai_label.svg",
        label_json=out_dir / "ai_label.json",
    )
    svg = _badge_svg(policy, version)
    _write_text(paths.badge_svg, svg)
    _write_text(paths.markdown, _markdown(ctx))
    _write_text(paths.html, _html(ctx))
    label = {
        "schema": LABEL_SCHEMA,
        "label": LABEL_TEXT,
        "use_case": policy.id,
        "service": policy.title,
        "model_version": version,
        "run_id": run_id,
        "issued_at": ctx["generated_at"],
        "purpose": ctx["purpose"],
        "decision_support": policy.decision_support,
        "human_recourse": ctx["human_recourse"],
        "owner": ctx["owner"],
        "approved_by": approver,
        "decision": decision,
        "overridden_checks": sorted({o["check"] for o in ctx["overrides"]}),
        "charter": {"engagement": "transparence.4", "text": TRANSPARENCE_4},
        "engagements_satisfied": ctx["engagements_satisfied"],
        "energy": {"kwh": ctx["energy"]["kwh"], "gco2e": ctx["energy"]["gco2e"]} if ctx["energy"] else None,
        "model_card": {"markdown": paths.markdown.name, "html": paths.html.name},
        "badge": {
            "file": paths.badge_svg.name,
            "sha256": hashlib.sha256(svg.encode("utf-8")).hexdigest(),
            "alt": LABEL_TEXT,
        },
    }
    _write_text(paths.label_json, json.dumps(label, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return paths
