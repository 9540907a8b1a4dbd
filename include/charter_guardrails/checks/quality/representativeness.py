"""Representativeness of training data, before any model exists (Équité 2; AI Act Art. 10(3)-(4)).

For each group column declared in ``policy.equity.groups`` (an arrondissement, a commune, an age band):

- the share of each group against a reference distribution shipped in ``include/reference/``
  (CSV ``group;population;share`` whose ``#`` comment lines name the source);
- the size of each group against ``min_group_size``;
- a group of the reference that is absent from the data is a *data gap* (AI Act Art. 10(2)(h));
- the base rate of the positive label per group and the disparate-impact ratio (four-fifths rule).

Base rates on small groups are noisy: with 90 rows a true rate of 22 % reads anywhere between 14 %
and 31 %. The verdict therefore uses the *most favourable* ratio compatible with the data: the
Wilson 95 % intervals of every group are allowed to move towards each other. It fails only when
even that ratio is below ``min_disparate_impact``; the point estimate is reported beside it. (The
most favourable ratio is the smallest upper bound over the groups divided by the largest lower bound.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.quality.group_counts import FrameGroups, GroupCounts, GroupSource, TableGroups
from charter_guardrails.core.catalogue import CATALOGUE, CheckName
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.messages import Message, Template
from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import GroupSpec
from charter_guardrails.core.results import CheckResult, Severity, Verdict
from charter_guardrails.core.settings import get_settings

if TYPE_CHECKING:
    import pandas as pd

Z95 = 1.959964

GROUP_ABSENT = Template(
    "%(column)s=%(group)s: absent from the data (data gap, AI Act Art. 10(2)(h)); "
    "%(expected).1f%% of the reference population"
)
GROUP_SHARE_GAP = Template(
    "%(column)s=%(group)s: %(share).1f%% of rows vs %(expected).1f%% of the population "
    "(%(gap)+.1f pp, limit ±%(limit)g pp)"
)
GROUP_NOT_IN_REFERENCE = Template("%(column)s=%(group)s: %(count)s rows in a group the reference does not know")
GROUP_TOO_SMALL = Template("%(column)s=%(group)s: %(count)s rows, fewer than the minimum %(minimum)s")
DISPARATE_IMPACT = Template(
    "%(column)s: base rate of %(label)s is %(lowest_rate).1f%% in %(lowest)s vs %(highest_rate).1f%% in "
    "%(highest)s: disparate impact %(point).2f (at best %(favourable).2f) < %(threshold)s (four-fifths rule)"
)
GROUP_COLUMN_ABSENT = Template("group column %(column)s is absent from the data")
NO_EQUITY_GROUPS = Template("use case %(use_case)s declares no equity groups: nothing to compare")
REPRESENTATIVE = Template("training data is representative of the declared groups (%(columns)s)")
NOT_REPRESENTATIVE = Template(
    "training data is NOT representative of the declared groups (%(columns)s): %(problems)s problem(s) — %(reasons)s"
)
MORE_PROBLEMS = Template("… %(count)s more")


@dataclass(frozen=True)
class ReferenceDistribution:
    path: Path
    #: The ``#`` comment lines: what the numbers are and where they come from.
    source: str
    shares: dict[str, float]
    population: dict[str, int]


def load_reference(name: str, reference_dir: Path | None = None) -> ReferenceDistribution:
    """Read ``include/reference/<name>``: ``#`` comments naming the source, then ``group;population;share``."""
    root = (reference_dir or get_settings().reference_dir).resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise ConfigError(f"reference {name!r} leaves the reference folder {root}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{path}: reference distribution not found (equity.groups[].reference)") from None
    comments = [line.lstrip("#").strip() for line in lines if line.startswith("#")]
    rows = [line for line in lines if line.strip() and not line.startswith("#")]
    if not comments or not any("source" in c.lower() for c in comments):
        raise ConfigError(f"{path}: a reference distribution must name its source in a '# Source: ...' comment line")
    if not rows or [h.strip() for h in rows[0].split(";")] != ["group", "population", "share"]:
        raise ConfigError(f"{path}: the header must be 'group;population;share'")
    shares: dict[str, float] = {}
    population: dict[str, int] = {}
    for number, line in enumerate(rows[1:], start=2):
        parts = [p.strip() for p in line.split(";")]
        try:
            group, pop, share = parts[0], int(parts[1]), float(parts[2])
        except (IndexError, ValueError):
            raise ConfigError(f"{path}: data line {number}: expected group;population;share") from None
        shares[group], population[group] = share, pop
    total = sum(shares.values())
    if not 0.98 <= total <= 1.02:
        raise ConfigError(f"{path}: shares sum to {total:.4f}, expected 1")
    return ReferenceDistribution(path=path, source=" ".join(comments), shares=shares, population=population)


def wilson(successes: int, n: int) -> tuple[float, float]:
    """Wilson score 95 % interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _group_report(policy: UseCasePolicy, spec: GroupSpec, counted: GroupCounts) -> tuple[dict[str, Any], list[Message]]:
    counts, total = counted.counts, sum(counted.counts.values())
    reference = load_reference(spec.reference) if spec.reference else None
    groups, reasons = _group_entries(spec, counts, total, reference)
    report: dict[str, Any] = {
        "column": spec.column,
        "rows_with_group": total,
        "rows_without_group": counted.missing,
        "reference": reference.path.name if reference else None,
        "reference_source": reference.source if reference else None,
        "groups": groups,
    }
    if counted.positives is not None and policy.equity.positive_label is not None:
        impact, impact_reasons = _disparate_impact(policy, spec, counts, groups, counted.positives)
        if impact is not None:
            report["disparate_impact"] = impact
        reasons.extend(impact_reasons)
    report["reasons"] = [reason.english for reason in reasons]
    return report, reasons


def _group_entries(
    spec: GroupSpec, counts: dict[str, int], total: int, reference: ReferenceDistribution | None
) -> tuple[dict[str, Any], list[Message]]:
    """Count, share and gap to the reference of every group seen in the data or in the reference."""
    reasons: list[Message] = []
    groups: dict[str, Any] = {}
    for group in sorted(set(counts) | set(reference.shares if reference else {})):
        count = counts.get(group, 0)
        share = count / total if total else 0.0
        entry: dict[str, Any] = {"count": count, "share": round(share, 4)}
        if reference is not None:
            if group in reference.shares:
                expected = reference.shares[group]
                gap = (share - expected) * 100
                entry.update({"reference_share": expected, "gap_pp": round(gap, 2)})
                if count == 0:
                    entry["data_gap"] = True
                    reasons.append(GROUP_ABSENT(column=spec.column, group=group, expected=100 * expected))
                elif abs(gap) > spec.max_share_gap_pp:
                    reasons.append(
                        GROUP_SHARE_GAP(
                            column=spec.column,
                            group=group,
                            share=100 * share,
                            expected=100 * expected,
                            gap=gap,
                            limit=spec.max_share_gap_pp,
                        )
                    )
            else:
                entry["not_in_reference"] = True
                reasons.append(GROUP_NOT_IN_REFERENCE(column=spec.column, group=group, count=count))
        if 0 < count < spec.min_group_size:
            reasons.append(GROUP_TOO_SMALL(column=spec.column, group=group, count=count, minimum=spec.min_group_size))
        groups[group] = entry
    return groups, reasons


def _disparate_impact(
    policy: UseCasePolicy,
    spec: GroupSpec,
    counts: dict[str, int],
    groups: dict[str, Any],
    positives: dict[str, int],
) -> tuple[dict[str, Any] | None, list[Message]]:
    """Base rate of the positive label per large-enough group (written into ``groups``) and the
    disparate-impact ratio, or None when fewer than two groups are large enough."""
    rates: dict[str, tuple[float, float, float, int]] = {}
    for group, count in counts.items():
        if count < spec.min_group_size:
            continue
        hits = positives.get(group, 0)
        low, high = wilson(hits, count)
        rates[group] = (hits / count, low, high, count)
        groups[group].update({"base_rate": round(hits / count, 4), "base_rate_ci95": [round(low, 4), round(high, 4)]})
    if len(rates) < 2:
        return None, []
    lowest = min(rates, key=lambda g: rates[g][0])
    highest = max(rates, key=lambda g: rates[g][0])
    point = rates[lowest][0] / rates[highest][0] if rates[highest][0] else 1.0
    # most favourable ratio compatible with the data (see the module doc)
    best_low = min(r[2] for r in rates.values())
    best_high = max(r[1] for r in rates.values())
    favourable = min(1.0, best_low / best_high) if best_high else 1.0
    impact = {
        "positive_label": policy.equity.positive_label,
        "point": round(point, 4),
        "favourable_bound": round(favourable, 4),
        "lowest_group": lowest,
        "highest_group": highest,
        "threshold": policy.equity.min_disparate_impact,
    }
    reasons: list[Message] = []
    if favourable < policy.equity.min_disparate_impact:
        reasons.append(
            DISPARATE_IMPACT(
                column=spec.column,
                label=repr(policy.equity.positive_label),
                lowest_rate=100 * rates[lowest][0],
                lowest=lowest,
                highest_rate=100 * rates[highest][0],
                highest=highest,
                point=point,
                favourable=favourable,
                threshold=policy.equity.min_disparate_impact,
            )
        )
    return impact, reasons


def check_representativeness(
    policy: UseCasePolicy, frame: pd.DataFrame | GroupSource, *, dataset: str | None = None
) -> CheckResult:
    """Group shares, sizes, data gaps and label base rates of a training frame, or of a table's counts
    (:class:`.group_counts.TableGroups`, counted in its database)."""
    source = frame if isinstance(frame, FrameGroups | TableGroups) else FrameGroups(frame)
    ds = policy.dataset(dataset) if dataset else policy.training_dataset
    if not policy.equity.groups:
        return CheckResult(
            check=CheckName.REPRESENTATIVENESS,
            verdict=Verdict.PASS,
            engagements=CATALOGUE[CheckName.REPRESENTATIVENESS].engagement_ids(),
            dataset=ds.id,
            message=NO_EQUITY_GROUPS(use_case=policy.id),
            metrics={"groups_checked": 0},
            evidence={},
        )
    label = policy.model.target if source.has(policy.model.target) else None
    reports: list[dict[str, Any]] = []
    reasons: list[Message] = []
    absent_columns = []
    for spec in policy.equity.groups:
        if not source.has(spec.column):
            absent_columns.append(spec.column)
            reasons.append(GROUP_COLUMN_ABSENT(column=spec.column))
            continue
        counted = source.groups(spec.column, label, policy.equity.positive_label)
        report, group_reasons = _group_report(policy, spec, counted)
        reports.append(report)
        reasons.extend(group_reasons)
    gaps = [f"{r['column']}={g}" for r in reports for g, e in r["groups"].items() if e.get("data_gap")]
    verdict = Verdict.FAIL if reasons else Verdict.PASS
    columns = [s.column for s in policy.equity.groups]
    if reasons:
        listed = reasons[:5] + ([MORE_PROBLEMS(count=len(reasons) - 5)] if len(reasons) > 5 else [])
        message = NOT_REPRESENTATIVE(columns=columns, problems=len(reasons), reasons=listed)
    else:
        message = REPRESENTATIVE(columns=columns)
    di = [r["disparate_impact"]["point"] for r in reports if "disparate_impact" in r]
    return CheckResult(
        check=CheckName.REPRESENTATIVENESS,
        verdict=verdict,
        severity=Severity.ERROR if reasons else Severity.INFO,
        engagements=CATALOGUE[CheckName.REPRESENTATIVENESS].engagement_ids(),
        dataset=ds.id,
        message=message,
        metrics={
            "rows": source.rows,
            "group_columns": len(reports),
            "problems": len(reasons),
            "data_gaps": len(gaps),
            "max_abs_gap_pp": max(
                (abs(e.get("gap_pp", 0.0)) for r in reports for e in r["groups"].values()), default=0.0
            ),
            "min_disparate_impact": min(di) if di else None,
        },
        evidence={
            "group_columns": reports,
            "data_gaps": gaps,
            "absent_columns": absent_columns,
            "reasons": [reason.english for reason in reasons],
        },
    )
