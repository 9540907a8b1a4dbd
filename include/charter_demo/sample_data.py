"""Deterministic sample data for the two use cases, and the "bad" variants the scenarios need.

Everything is generated from a fixed seed (Faker ``fr_FR`` and ``random.Random``), into the
data folder, never committed. Dates are relative to ``as_of`` (default: today, UTC) so that
the retention rules keep their meaning.

Files, per use case folder:

``training.csv``, ``inference_batch.csv``
    clean data, in the French dialect the policy declares.
``training__pii_leak.csv``
    an undeclared column carries personal data (phones, e-mails).
``training__corrupted.csv``
    ``training.csv`` with a few bytes altered after registration (integrity incident).
``training__quality_failure.csv``
    nulls in required columns, values outside their sets and ranges, duplicate ids.
``training__biased.csv`` (citizen_requests)
    arrondissements and age bands far from the population, a missing group, skewed labels.
``inference_batch__drifted.csv``
    a batch whose feature distributions moved away from training.

With ``canaries`` (:class:`Canaries`), one row in ``canaries.every`` of every citizen file carries
known personal values in its free text, and the undeclared columns of the ``__pii_leak`` variants
carry them too (SIRET and IBAN included). A test then proves that none of them leaves the input
files: not in logs, XCom, the ledger, reports, model cards, alerts or exceptions.

The rows come from :mod:`charter_demo.sample_rows`, the canaries from :mod:`charter_demo.canaries`,
the writing and the damaged variants from :mod:`charter_demo.sample_files`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from charter_guardrails.core.policy import UseCasePolicy

from charter_demo.canaries import Canaries, canary_or
from charter_demo.sample_files import (
    GeneratedFile,
    corrupt_copy,
    quality_failures_citizen,
    quality_failures_waste,
    write_csv,
)
from charter_demo.sample_rows import (
    ARRONDISSEMENT_WEIGHTS,
    ARRONDISSEMENTS,
    CATEGORIES,
    CATEGORY_WEIGHTS,
    CITIZEN_HEADER,
    COMMUNES,
    FLUX,
    WASTE_HEADER,
    CitizenFaker,
    citizen_rows,
    waste_rows,
)

__all__ = ["DEFAULT_SEED", "Canaries", "GeneratedFile", "generate"]

DEFAULT_SEED = 20260101
#: The words of the drifted inference batch's longer messages: a vocabulary training never saw.
_NEW_WORDS = [
    "trottinette",
    "borne",
    "recharge",
    "électrique",
    "application",
    "QR",
    "code",
    "compte",
    "appli",
    "trotinettes",
]


@dataclass
class _Output:
    """Writes each file in its use case's CSV dialect and keeps what was written, in order."""

    data_dir: Path
    policies: dict[str, UseCasePolicy]
    files: list[GeneratedFile] = field(default_factory=list)

    def add(self, use_case: str, name: str, header: list[str], data: list[list[object]], description: str) -> None:
        dialect = self.policies[use_case].training_dataset.csv
        path = self.data_dir / use_case / name
        count = write_csv(path, header, data, encoding=dialect.encoding, decimal=dialect.decimal)
        self.files.append(GeneratedFile(use_case, name, path, count, description))


def generate(
    data_dir: Path,
    policies: dict[str, UseCasePolicy],
    *,
    seed: int = DEFAULT_SEED,
    rows: int = 4000,
    as_of: datetime | None = None,
    canaries: Canaries | None = None,
) -> list[GeneratedFile]:
    """Write every sample file; return what was written.

    :param canaries: known personal values to seed into the files (see :class:`Canaries`).
    """
    # Midnight UTC: the files are the same all day, and no generated timestamp lies in the future
    # (the suites refuse dates after now, so noon made the clean data fail every morning).
    as_of = as_of or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    out = _Output(data_dir, policies)
    if "citizen_requests" in policies:
        _citizen_files(out, rows, seed, as_of, canaries)
        _citizen_biased_and_drifted(out, rows, seed, as_of, canaries)
    if "waste_tonnage" in policies:
        _waste_files(out, rows, seed, as_of, canaries)
    for use_case in policies:
        src = data_dir / use_case / "training.csv"
        if src.exists():
            out.files.append(corrupt_copy(src, data_dir / use_case / "training__corrupted.csv", use_case, seed))
    return out.files


def _citizen_files(out: _Output, rows: int, seed: int, as_of: datetime, canaries: Canaries | None) -> None:
    """The clean citizen_requests files, and the leak and the quality failures derived from training."""
    uc = "citizen_requests"
    training = citizen_rows(rows, seed, as_of, canaries=canaries)
    out.add(uc, "training.csv", CITIZEN_HEADER, training, "clean training data")
    out.add(
        uc,
        "inference_batch.csv",
        CITIZEN_HEADER[:-1],
        citizen_rows(max(rows // 8, 200), seed + 1, as_of, id_prefix="INF", with_label=False, canaries=canaries),
        "clean inference batch",
    )
    leak_rng = CitizenFaker(seed + 2)
    out.add(
        uc,
        "training__pii_leak.csv",
        [*CITIZEN_HEADER, "telephone_usager"],
        [[*r, canary_or(canaries, i, leak_rng.phone())] for i, r in enumerate(training)],
        "undeclared column telephone_usager holds phone numbers",
    )
    out.add(
        uc,
        "training__quality_failure.csv",
        CITIZEN_HEADER,
        quality_failures_citizen(training, seed),
        "nulls in required columns, unknown arrondissements and channels, duplicate ids",
    )


def _skewed_label(rng: random.Random, arrondissement: str, age: str) -> str:
    if arrondissement in ("13213", "13214", "13215") and rng.random() < 0.8:
        return "proprete"
    return rng.choices(list(CATEGORIES), weights=CATEGORY_WEIGHTS)[0]


def _new_vocabulary(rng: random.Random) -> str:
    return " " + " ".join(rng.choice(_NEW_WORDS) for _ in range(rng.randint(8, 20)))


def _citizen_biased_and_drifted(out: _Output, rows: int, seed: int, as_of: datetime, canaries: Canaries | None) -> None:
    """The biased citizen_requests training set and the drifted inference batch."""
    uc = "citizen_requests"
    biased_arr = [
        0 if a == "13216" else (400 if a in ("13206", "13207", "13208") else w)
        for a, w in zip(ARRONDISSEMENTS, ARRONDISSEMENT_WEIGHTS, strict=True)
    ]
    out.add(
        uc,
        "training__biased.csv",
        CITIZEN_HEADER,
        citizen_rows(
            rows,
            seed + 3,
            as_of,
            arr_weights=biased_arr,
            age_weights=[5, 10, 25, 35, 25],
            category_for=_skewed_label,
            canaries=canaries,
        ),
        "16e arrondissement missing, 6e-8e over-represented, older age bands over-represented, "
        "label skewed by arrondissement",
    )
    out.add(
        uc,
        "inference_batch__drifted.csv",
        CITIZEN_HEADER[:-1],
        citizen_rows(
            max(rows // 8, 200),
            seed + 4,
            as_of,
            id_prefix="INF",
            with_label=False,
            channel_weights=[2, 5, 3, 2, 88],
            arr_weights=[1] * 12 + [60, 60, 60, 60],
            message_suffix=_new_vocabulary,
            canaries=canaries,
        ),
        "channel moved to the mobile app, northern arrondissements dominate, longer messages with new vocabulary",
    )


def _waste_files(out: _Output, rows: int, seed: int, as_of: datetime, canaries: Canaries | None) -> None:
    """The waste_tonnage files: clean, leak, quality failures and drifted batch."""
    uc = "waste_tonnage"
    weeks = max(rows // (len(COMMUNES) * len(FLUX)), 20)
    training = waste_rows(weeks, seed, as_of, start_offset_weeks=4)
    out.add(uc, "training.csv", WASTE_HEADER, training, "clean training data")
    out.add(
        uc,
        "inference_batch.csv",
        WASTE_HEADER[:-1],
        waste_rows(4, seed + 1, as_of, with_label=False),
        "clean inference batch",
    )
    fake = CitizenFaker(seed + 2)
    out.add(
        uc,
        "training__pii_leak.csv",
        [*WASTE_HEADER, "contact_agent"],
        [
            [*r, canary_or(canaries, i, f"{fake.fake.name()} <{fake.fake.email()}> {fake.phone()}")]
            for i, r in enumerate(training)
        ],
        "undeclared column contact_agent holds names, e-mails and phones in a non-personal dataset",
    )
    out.add(
        uc,
        "training__quality_failure.csv",
        WASTE_HEADER,
        quality_failures_waste(training, seed),
        "negative tonnages, unknown flux, missing population",
    )
    out.add(
        uc,
        "inference_batch__drifted.csv",
        WASTE_HEADER[:-1],
        waste_rows(4, seed + 4, as_of, rain_shift=45.0, population_factor=1.6, with_label=False),
        "heavy rain and inflated population figures",
    )
