"""Evaluation of the scanner on a labelled French table (``make eval-pii``).

The table (Faker ``fr_FR``, fixed seed) has personal columns (names, NIR, SIREN, SIRET, VAT, IBAN,
phones, e-mails, addresses, CNI, plates), a free-text column with embedded personal data, and
tricky non-personal columns (order numbers, 14-digit numbers that fail Luhn, 9-digit file numbers,
dates, amounts, postcodes alone, commune codes, EAN bar codes, rates). Every cell's entities are
known, so the evaluation reports:

- column level, in sampling and exhaustive mode: precision and recall of "this column holds
  personal data", and whether the expected entity type was named;
- cell level, in exhaustive mode: recall per (column, entity).

Targets: column recall ≥ 0.99, column precision ≥ 0.95, cell recall ≥ 0.99 for the
identifiers NIR, SIRET, IBAN, phone and e-mail.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

SEED = 20260404
IDENTIFIERS = ("FR_NIR", "FR_SIRET", "FR_IBAN", "FR_PHONE", "EMAIL_ADDRESS")
TARGETS = {"column_recall": 0.99, "column_precision": 0.95, "identifier_cell_recall": 0.99}
_SIV = "ABCDEFGHJKLMNPQRSTVWXYZ"


@dataclass
class LabelledTable:
    frame: pd.DataFrame
    #: column → the entity types its cells hold (empty: not personal data)
    column_labels: dict[str, set[str]]
    #: column → per row, the entity types the cell holds (for cell-level recall)
    cell_labels: dict[str, list[set[str]]] = field(default_factory=dict)


def _nir(rng: random.Random) -> str:
    from stdnum.fr import nir

    dept = rng.choice(["13", "83", "84", "06", "75", "69", "2A", "2B", "971"[:2]])
    body = (
        f"{rng.choice('12')}{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}"
        f"{dept}{rng.randint(1, 990):03d}{rng.randint(1, 999):03d}"
    )
    number = body + nir.calc_check_digits(body)
    style = rng.random()
    if style < 0.5:
        return f"{number[0]} {number[1:3]} {number[3:5]} {number[5:7]} {number[7:10]} {number[10:13]} {number[13:]}"
    if style < 0.7:
        return number
    sep = rng.choice(".-")
    return sep.join([number[0], number[1:3], number[3:5], number[5:7], number[7:10], number[10:13], number[13:]])


def _phone(rng: random.Random, fake: Any) -> str:
    if rng.random() < 0.6:
        return str(fake.phone_number())
    digits = [rng.choice("12345679")] + [str(rng.randint(0, 9)) for _ in range(8)]
    pairs = ["".join(digits[i : i + 2]) for i in range(1, 9, 2)]
    return rng.choice(
        [f"0{digits[0]} " + " ".join(pairs), f"0{digits[0]}." + ".".join(pairs), f"0033 {digits[0]} " + " ".join(pairs)]
    )


def _plate(rng: random.Random) -> str:
    letters = lambda: "".join(rng.choice(_SIV) for _ in range(2))  # noqa: E731
    first = letters()
    while first == "SS":
        first = letters()
    return f"{first}{rng.choice('- ')}{rng.randint(1, 999):03d}{rng.choice('- ')}{letters()}"


def _cni(rng: random.Random) -> str:
    if rng.random() < 0.5:  # old format: YYMM + department office + sequence
        return (
            f"{rng.randint(90, 99):02d}{rng.randint(1, 12):02d}"
            f"{rng.choice(['13', '83', '84', '06'])}{rng.randint(0, 9)}{rng.randint(0, 99999):05d}"
        )
    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    while True:
        value = "".join(rng.choice(alphabet) for _ in range(9))
        if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            return value


def _vat(rng: random.Random, fake: Any) -> str:
    """A valid French VAT number (Faker's ``vat_id`` has random keys): the key that stdnum accepts."""
    from stdnum.fr import tva

    siren = str(fake.siren()).replace(" ", "")
    key = next(f"{k:02d}" for k in range(100) if tva.is_valid(f"FR{k:02d}{siren}"))
    return f"FR{key}{siren}" if rng.random() < 0.5 else f"FR {key} {siren[:3]} {siren[3:6]} {siren[6:]}"


def _spaced(iban: str, rng: random.Random) -> str:
    return iban if rng.random() < 0.5 else " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def _not_luhn(rng: random.Random, length: int) -> str:
    from stdnum import luhn

    while True:
        value = "".join(str(rng.randint(0, 9)) for _ in range(length))
        if not luhn.is_valid(value):
            return value


def _message(rng: random.Random, fake: Any) -> tuple[str, set[str]]:
    """A citizen message with 0-3 embedded entities, and their labels."""
    parts = [
        rng.choice(
            [
                "Bonjour, le lampadaire est en panne devant chez moi.",
                "La collecte n'est pas passée cette semaine.",
                "Un nid-de-poule abîme les voitures dans notre rue.",
                "Le bus ne respecte pas les horaires le matin.",
                "Merci de nettoyer les dépôts sauvages près du marché.",
                "L'aire de jeux du square est dangereuse.",
            ]
        )
    ]
    labels: set[str] = set()
    if rng.random() < 0.35:
        parts.append(f"Je m'appelle {fake.first_name()} {fake.last_name()}.")
        labels.add("PERSON")
    if rng.random() < 0.3:
        parts.append(f"Rappelez-moi au {_phone(rng, fake)}.")
        labels.add("FR_PHONE")
    if rng.random() < 0.2:
        parts.append(f"Mon courriel : {fake.email()}.")
        labels.add("EMAIL_ADDRESS")
    if rng.random() < 0.08:
        parts.append(f"Mon numéro de sécurité sociale est {_nir(rng)}.")
        labels.add("FR_NIR")
    if rng.random() < 0.05:
        parts.append(f"Pour le remboursement, mon IBAN est {fake.iban()}.")
        labels.add("FR_IBAN")
    if rng.random() < 0.05:
        parts.append(f"La voiture {_plate(rng)} est garée sur le trottoir.")
        labels.add("FR_LICENSE_PLATE")
    rng.shuffle(parts)
    return " ".join(parts), labels


#: The personal columns of the labelled table other than ``message`` (labelled per message), in table order.
_PERSONAL_COLUMNS: dict[str, frozenset[str]] = {
    "nom_complet": frozenset({"PERSON"}),
    "nir": frozenset({"FR_NIR"}),
    "siren_entreprise": frozenset({"FR_SIREN"}),
    "siret": frozenset({"FR_SIRET"}),
    "numero_tva": frozenset({"FR_VAT"}),
    "iban": frozenset({"FR_IBAN"}),
    "telephone": frozenset({"FR_PHONE"}),
    "email": frozenset({"EMAIL_ADDRESS"}),
    "adresse": frozenset({"LOCATION"}),
    "numero_cni": frozenset({"FR_ID_CARD"}),
    "plaque_immatriculation": frozenset({"FR_LICENSE_PLATE"}),
}


def make_labelled_table(rows: int = 10_000, seed: int = SEED) -> LabelledTable:
    """The labelled table, ≥ 20 columns; deterministic for a seed."""
    import pandas as pd
    from faker import Faker

    fake = Faker("fr_FR")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    messages = [_message(rng, fake) for _ in range(rows)]
    data: dict[str, list[Any]] = {
        # personal data
        "nom_complet": [fake.name() for _ in range(rows)],
        "nir": [_nir(rng) for _ in range(rows)],
        "siren_entreprise": [fake.siren() for _ in range(rows)],
        "siret": [fake.siret() for _ in range(rows)],
        "numero_tva": [_vat(rng, fake) for _ in range(rows)],
        "iban": [_spaced(fake.iban(), rng) for _ in range(rows)],
        "telephone": [_phone(rng, fake) for _ in range(rows)],
        "email": [fake.email() for _ in range(rows)],
        "adresse": [fake.address().replace("\n", ", ") for _ in range(rows)],
        "numero_cni": [_cni(rng) for _ in range(rows)],
        "plaque_immatriculation": [_plate(rng) for _ in range(rows)],
        "message": [m for m, _ in messages],
        # tricky non-personal data
        "numero_commande": [f"CMD-{rng.randint(2019, 2026)}-{rng.randint(0, 9999999):07d}" for _ in range(rows)],
        "reference_14": [_not_luhn(rng, 14) for _ in range(rows)],
        "numero_dossier": ["".join(str(rng.randint(0, 9)) for _ in range(9)) for _ in range(rows)],
        "date_demande": [fake.date_between("-3y").strftime(rng.choice(["%Y-%m-%d", "%d/%m/%Y"])) for _ in range(rows)],
        "montant_eur": [f"{rng.uniform(1, 99999):,.2f}".replace(",", " ").replace(".", ",") for _ in range(rows)],
        "code_postal": [f"{rng.choice(['13', '83', '84', '06', '75'])}{rng.randint(0, 999):03d}" for _ in range(rows)],
        "code_commune": [
            rng.choice(["13055", "13001", "13005", "2A004", "2B033", "83137", "84007"]) for _ in range(rows)
        ],
        "code_barre_ean": [fake.ean13() for _ in range(rows)],
        "taux_tva": [rng.choice(["0,055", "0,1", "0,2", "0,021"]) for _ in range(rows)],
        "quantite": [str(rng.randint(0, 5000)) for _ in range(rows)],
        "categorie": [rng.choice(["voirie", "proprete", "eclairage", "dechets", "transports"]) for _ in range(rows)],
        "heure_passage": [f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}" for _ in range(rows)],
    }
    column_labels = {name: set(labels) for name, labels in _PERSONAL_COLUMNS.items()}
    column_labels["message"] = set().union(*(labels for _, labels in messages))
    column_labels.update({name: set() for name in data if name not in column_labels})
    cells = {
        name: [set(labels) for _ in range(rows)]
        for name, labels in column_labels.items()
        if labels and name != "message"
    }
    cells["message"] = [labels for _, labels in messages]
    return LabelledTable(pd.DataFrame(data), column_labels, cells)


def _prf(truth: dict[str, bool], predicted: dict[str, bool]) -> dict[str, float]:
    tp = sum(truth[c] and predicted[c] for c in truth)
    fp = sum(not truth[c] and predicted[c] for c in truth)
    fn = sum(truth[c] and not predicted[c] for c in truth)
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def evaluate(rows: int = 10_000, seed: int = SEED, min_score: float = 0.5) -> dict[str, Any]:
    """Column-level metrics in both modes and cell-level recall in exhaustive mode."""
    from charter_guardrails.checks.privacy.report import ScanOptions
    from charter_guardrails.checks.privacy.scanner import column_kind, detect_values, scan_frame

    table = make_labelled_table(rows, seed)
    frame = table.frame
    truth = {c: bool(labels) for c, labels in table.column_labels.items()}
    out: dict[str, Any] = {"rows": len(frame), "columns": frame.shape[1], "seed": seed, "modes": {}}
    for mode in ("sampling", "exhaustive"):
        started = time.monotonic()
        report = scan_frame(frame, ScanOptions(mode=mode, min_score=min_score))  # type: ignore[arg-type]
        predicted = {c.name: bool(c.findings) for c in report.columns}
        typed = {c.name: bool(table.column_labels[c.name] & c.entity_types()) for c in report.columns if truth[c.name]}
        out["modes"][mode] = {
            **_prf(truth, predicted),
            "seconds": round(time.monotonic() - started, 2),
            "scanned_rows": report.scanned_rows,
            "entity_type_named": sum(typed.values()) / len(typed),
            "false_positive_columns": sorted(c for c in truth if predicted[c] and not truth[c]),
            "missed_columns": sorted(c for c in truth if truth[c] and not predicted[c]),
            "found": {c.name: sorted(c.entity_types()) for c in report.columns},
        }
    cell: dict[str, dict[str, float]] = {}
    for name, labels in table.cell_labels.items():
        values = [str(v) for v in frame[name]]
        distinct = sorted(set(values))
        hits = detect_values(distinct, column_kind(name, distinct), name)
        found = {
            v: {h.entity_type for h in hs if not h.suspect and h.score >= min_score}
            for v, hs in zip(distinct, hits, strict=True)
        }
        for entity in sorted(set().union(*labels)):
            relevant = [i for i, cell_labels in enumerate(labels) if entity in cell_labels]
            detected = sum(entity in found[values[i]] for i in relevant)
            cell.setdefault(name, {})[entity] = detected / len(relevant) if relevant else 1.0
    out["cell_recall"] = cell
    ident = [r for col in cell.values() for e, r in col.items() if e in IDENTIFIERS]
    exhaustive = out["modes"]["exhaustive"]
    out["summary"] = {
        "column_recall": min(m["recall"] for m in out["modes"].values()),
        "column_precision": min(m["precision"] for m in out["modes"].values()),
        "identifier_cell_recall": min(ident) if ident else 1.0,
        "exhaustive_seconds": exhaustive["seconds"],
    }
    out["targets_met"] = {k: out["summary"][k] >= v for k, v in TARGETS.items()}
    return out


def format_evaluation(result: dict[str, Any]) -> str:
    lines = [
        f"labelled table: {result['rows']} rows x {result['columns']} columns (Faker fr_FR, seed {result['seed']})",
        "",
    ]
    lines.append(
        f"{'mode':<11} {'precision':>9} {'recall':>7} {'types':>6} "
        f"{'TP':>3} {'FP':>3} {'FN':>3} {'rows':>6} {'seconds':>8}"
    )
    for mode, m in result["modes"].items():
        lines.append(
            f"{mode:<11} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['entity_type_named']:>6.2f} "
            f"{m['tp']:>3} {m['fp']:>3} {m['fn']:>3} {m['scanned_rows']:>6} {m['seconds']:>8.1f}"
        )
        if m["false_positive_columns"] or m["missed_columns"]:
            lines.append(f"            false positives: {m['false_positive_columns']}, missed: {m['missed_columns']}")
    lines += ["", "cell-level recall (exhaustive):"]
    for column, entities in result["cell_recall"].items():
        for entity, recall in entities.items():
            flag = " (identifier)" if entity in IDENTIFIERS else ""
            lines.append(f"  {column:<24} {entity:<18} {recall:.4f}{flag}")
    lines += ["", "targets:"]
    for key, target in TARGETS.items():
        lines.append(
            f"  {key:<24} {result['summary'][key]:.4f}  (target >= {target})  "
            f"{'OK' if result['targets_met'][key] else 'MISSED'}"
        )
    return "\n".join(lines)
