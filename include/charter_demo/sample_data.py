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
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from charter_guardrails.core.policy import UseCasePolicy

ARRONDISSEMENTS = [f"132{n:02d}" for n in range(1, 17)]
ARRONDISSEMENT_WEIGHTS = [40, 25, 47, 49, 45, 43, 35, 81, 76, 56, 58, 64, 92, 65, 78, 20]
AGE_BANDS = ["18-29", "30-44", "45-59", "60-74", "75+"]
AGE_WEIGHTS = [22, 25, 23, 19, 11]
CHANNELS = ["telephone", "web", "courriel", "guichet", "application"]
CHANNEL_WEIGHTS = [35, 30, 15, 8, 12]
CATEGORIES = {
    "voirie": [
        "Il y a un nid-de-poule énorme {lieu}",
        "La chaussée est défoncée {lieu}, c'est dangereux pour les vélos",
        "Un trottoir est effondré {lieu}",
        "Des plaques d'égout bougent {lieu}, merci d'intervenir",
    ],
    "proprete": [
        "Des dépôts sauvages s'accumulent {lieu}",
        "Les rues ne sont plus balayées {lieu} depuis des semaines",
        "Des tags recouvrent le mur {lieu}",
        "Il y a des déjections partout {lieu}",
    ],
    "eclairage": [
        "Le lampadaire est en panne {lieu}",
        "La rue est plongée dans le noir {lieu} le soir",
        "L'éclairage public clignote {lieu}",
        "Les lampadaires restent allumés en plein jour {lieu}",
    ],
    "eau_assainissement": [
        "Une fuite d'eau inonde la chaussée {lieu}",
        "Les égouts débordent {lieu} à chaque pluie",
        "L'eau du robinet est trouble {lieu}",
        "Une bouche d'incendie fuit {lieu}",
    ],
    "transports": [
        "Le bus 21 ne passe plus {lieu}",
        "L'abribus est cassé {lieu}",
        "Les horaires du tramway ne sont pas respectés {lieu}",
        "Le métro est souvent en retard {lieu}",
    ],
    "dechets": [
        "Le conteneur de tri n'a pas été vidé {lieu}",
        "La collecte des ordures n'est pas passée {lieu}",
        "Les bacs débordent {lieu} depuis lundi",
        "Je voudrais un rendez-vous pour les encombrants {lieu}",
    ],
    "espaces_verts": [
        "Un arbre menace de tomber {lieu}",
        "Les haies du parc ne sont plus taillées {lieu}",
        "L'aire de jeux est abîmée {lieu}",
        "Les pelouses du square sont desséchées {lieu}",
    ],
    "stationnement": [
        "Des voitures stationnent sur le trottoir {lieu}",
        "L'horodateur est en panne {lieu}",
        "Une voiture ventouse est garée {lieu} depuis un mois",
        "Il manque des places PMR {lieu}",
    ],
}
CATEGORY_WEIGHTS = [22, 18, 10, 10, 12, 14, 7, 7]
STREETS = [
    "rue de la République",
    "boulevard National",
    "avenue du Prado",
    "cours Julien",
    "rue Paradis",
    "chemin du Littoral",
    "boulevard Baille",
    "rue d'Aubagne",
    "avenue de la Capelette",
    "traverse des Pins",
]
COMMUNES = {  # INSEE code: population (approximate) for the Métropole's larger communes
    "13055": 870000,
    "13001": 147000,
    "13005": 47000,
    "13028": 31000,
    "13047": 44000,
    "13056": 31000,
    "13063": 37000,
    "13071": 25000,
    "13103": 20000,
    "13117": 21000,
    "13002": 9500,
    "13041": 24000,
}
FLUX = {"ordures_menageres": 4.8, "tri_selectif": 1.1, "verre": 0.45, "encombrants": 0.35}  # kg per inhabitant per week

DEFAULT_SEED = 20260101


@dataclass(frozen=True)
class GeneratedFile:
    use_case: str
    name: str
    path: Path
    rows: int
    description: str


def valid_nir(rng: random.Random) -> str:
    """A syntactically valid NIR with its key (97 - n mod 97), formatted with spaces."""
    sex = rng.choice("12")
    yy = f"{rng.randint(40, 99):02d}"
    mm = f"{rng.randint(1, 12):02d}"
    dept = rng.choice(["13", "83", "84", "06", "75", "69"])
    commune = f"{rng.randint(1, 120):03d}"
    order = f"{rng.randint(1, 999):03d}"
    body = sex + yy + mm + dept + commune + order
    key = 97 - int(body) % 97
    return f"{sex} {yy} {mm} {dept} {commune} {order} {key:02d}"


_CANARY_FIRST_NAMES = ["Zéphyrine", "Anatole", "Philomène", "Hippolyte", "Eudoxie", "Barnabé"]
_CANARY_LAST_NAMES = ["Quillebeuf", "Brindejonc", "Kervadec", "Marsouin", "Tréguilly", "Pellegrue"]
_CANARY_STREETS = [
    "impasse des Ormeaux-Cendrés",
    "allée des Tamaris-Bleus",
    "traverse des Genêts-Roux",
    "chemin des Arbousiers-Clairs",
]


def _rib_key(bank: str, branch: str, account: str) -> int:
    letters = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "12345678912345678923456789")
    b, g, a = (int(part.translate(letters)) for part in (bank, branch, account))
    return 97 - (89 * b + 15 * g + 3 * a) % 97


@dataclass(frozen=True)
class Canaries:
    """Known personal values seeded into the sample data, each valid (checksums from python-stdnum).

    :param every: one row in ``every`` carries a canary sentence.
    """

    first_name: str
    last_name: str
    email: str
    phone: str
    nir: str
    address: str
    siret: str
    iban: str
    every: int = 40

    @classmethod
    def from_seed(cls, seed: int, *, every: int = 40) -> Canaries:
        from stdnum import iban, luhn
        from stdnum.fr import nir, siret

        rng = random.Random(f"canaries-{seed}")
        first, last = rng.choice(_CANARY_FIRST_NAMES), rng.choice(_CANARY_LAST_NAMES)
        body = (
            rng.choice("12")
            + f"{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}13{rng.randint(1, 120):03d}{rng.randint(1, 999):03d}"
        )
        nir_value = f"{body}{97 - int(body) % 97:02d}"
        siren = f"{rng.randint(10_000_000, 99_999_999)}"
        siren += luhn.calc_check_digit(siren)
        siret_value = f"{siren}{rng.randint(1, 999):04d}"
        siret_value += luhn.calc_check_digit(siret_value)
        bank, branch, account = (
            f"{rng.randint(10000, 39999)}",
            f"{rng.randint(1, 99999):05d}",
            f"{rng.randint(0, 10**11 - 1):011d}",
        )
        bban = f"{bank}{branch}{account}{_rib_key(bank, branch, account):02d}"
        iban_value = "FR" + iban.calc_check_digits("FR00" + bban) + bban
        phone = rng.choice("67") + "".join(str(rng.randint(0, 9)) for _ in range(8))
        assert nir.is_valid(nir_value) and siret.is_valid(siret_value) and iban.is_valid(iban_value)
        return cls(
            first_name=first,
            last_name=last,
            email=f"{_ascii(first)}.{_ascii(last)}{rng.randint(10, 99)}@courriel-canari.fr".lower(),
            phone="+33 " + phone[0] + " " + " ".join(phone[i : i + 2] for i in range(1, 9, 2)),
            nir=" ".join(
                (
                    nir_value[0],
                    nir_value[1:3],
                    nir_value[3:5],
                    nir_value[5:7],
                    nir_value[7:10],
                    nir_value[10:13],
                    nir_value[13:],
                )
            ),
            address=f"{rng.randint(2, 98)} bis {rng.choice(_CANARY_STREETS)}",
            siret=f"{siret_value[:3]} {siret_value[3:6]} {siret_value[6:9]} {siret_value[9:]}",
            iban=" ".join(iban_value[i : i + 4] for i in range(0, len(iban_value), 4)),
            every=every,
        )

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def national_phone(self) -> str:
        """The phone number as ``06.47.29.18.53``: the same person written another way."""
        digits = "0" + "".join(c for c in self.phone[3:] if c.isdigit())
        return ".".join(digits[i : i + 2] for i in range(0, 10, 2))

    def values(self) -> dict[str, str]:
        return {
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "nir": self.nir,
            "address": self.address,
            "siret": self.siret,
            "iban": self.iban,
        }

    def carries(self, row: int) -> bool:
        return row % self.every == 0

    def free_text(self, row: int) -> str:
        """A sentence for a declared free-text column: only entity types a personal dataset allows there."""
        sentences = [
            f"Je suis {self.name}, merci de me rappeler au {self.phone}.",
            f"Vous pouvez m'écrire à {self.email}.",
            f"Mon numéro de sécurité sociale est le {self.nir}.",
            f"J'habite au {self.address}, 13012 Marseille.",
            f"Signé {self.name}, {self.address}, tél. {self.national_phone}.",
        ]
        return sentences[(row // self.every) % len(sentences)]

    def contact(self, row: int) -> str:
        """A value for an undeclared column: every kind, SIRET and IBAN included."""
        values = [
            f"{self.name} <{self.email}> {self.phone}",
            f"SIRET {self.siret}",
            f"IBAN {self.iban}",
            f"NIR {self.nir}",
            f"{self.address}, {self.national_phone}",
        ]
        return values[(row // self.every) % len(values)]


def _ascii(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _writer(path: Path, header: list[str], rows: Iterable[list[object]], *, encoding: str, decimal: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=";", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([_fmt(v, decimal) for v in row])
            count += 1
    tmp.replace(path)
    return count


def _fmt(value: object, decimal: str) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}".replace(".", decimal)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return value


class _CitizenFaker:
    def __init__(self, seed: int) -> None:
        from faker import Faker

        self.fake = Faker("fr_FR")
        self.fake.seed_instance(seed)
        self.rng = random.Random(seed)

    def phone(self) -> str:
        rng = self.rng
        digits = [rng.choice("67")] + [str(rng.randint(0, 9)) for _ in range(8)]
        style = rng.random()
        if style < 0.5:
            return "0" + digits[0] + " " + " ".join("".join(digits[i : i + 2]) for i in range(1, 9, 2))
        if style < 0.8:
            return "+33 " + digits[0] + " " + " ".join("".join(digits[i : i + 2]) for i in range(1, 9, 2))
        return "0" + "".join(digits)

    def message(self, category: str) -> str:
        rng, fake = self.rng, self.fake
        lieu = (
            f"au {rng.randint(1, 180)} {rng.choice(STREETS)}"
            if rng.random() < 0.7
            else rng.choice(["devant l'école", "près du marché", "dans ma rue", "au carrefour"])
        )
        text = rng.choice(CATEGORIES[category]).format(lieu=lieu) + "."
        extra = rng.random()
        if extra < 0.18:
            text += f" Je suis {fake.first_name()} {fake.last_name()}, merci de me rappeler au {self.phone()}."
        elif extra < 0.28:
            text += f" Vous pouvez m'écrire à {fake.email()}."
        elif extra < 0.31:
            text += f" Mon numéro de sécurité sociale est le {valid_nir(rng)}."
        elif extra < 0.36:
            text += (
                " Merci de faire vite, "
                + rng.choice(["c'est urgent", "ça dure depuis longtemps", "les enfants passent par là"])
                + "."
            )
        return text


def _citizen_rows(
    n: int,
    seed: int,
    as_of: datetime,
    *,
    arr_weights: list[int] | None = None,
    age_weights: list[int] | None = None,
    channel_weights: list[int] | None = None,
    category_for: Callable[[random.Random, str, str], str] | None = None,
    message_suffix: Callable[[random.Random], str] | None = None,
    id_prefix: str = "DEM",
    with_label: bool = True,
    canaries: Canaries | None = None,
) -> list[list[object]]:
    gen = _CitizenFaker(seed)
    rng = gen.rng
    rows: list[list[object]] = []
    for i in range(n):
        arrondissement = rng.choices(ARRONDISSEMENTS, weights=arr_weights or ARRONDISSEMENT_WEIGHTS)[0]
        age = rng.choices(AGE_BANDS, weights=age_weights or AGE_WEIGHTS)[0]
        category = (
            category_for(rng, arrondissement, age)
            if category_for
            else rng.choices(list(CATEGORIES), weights=CATEGORY_WEIGHTS)[0]
        )
        # 3 % of rows are older than the 365-day retention: the proportionality check excludes and counts them.
        age_days = rng.uniform(366, 500) if rng.random() < 0.03 else rng.uniform(0, 360)
        received = (as_of - timedelta(days=age_days)).replace(microsecond=0)
        message = gen.message(category) + (message_suffix(rng) if message_suffix else "")
        if canaries is not None and canaries.carries(i):
            message += " " + canaries.free_text(i)
        row: list[object] = [
            f"{id_prefix}-{seed % 1000:03d}-{i:07d}",
            received,
            message,
            arrondissement,
            rng.choices(CHANNELS, weights=channel_weights or CHANNEL_WEIGHTS)[0],
            age if rng.random() > 0.02 else None,
        ]
        if with_label:
            row.append(category)
        rows.append(row)
    return rows


CITIZEN_HEADER = ["request_id", "received_at", "message", "arrondissement", "channel", "age_band", "category"]
WASTE_HEADER = ["commune", "week", "flux", "population", "jours_feries", "pluie_mm", "tonnage_t"]


def _waste_rows(
    weeks: int,
    seed: int,
    as_of: datetime,
    *,
    rain_shift: float = 0.0,
    population_factor: float = 1.0,
    with_label: bool = True,
    start_offset_weeks: int = 0,
) -> list[list[object]]:
    rng = random.Random(seed)
    monday = (as_of - timedelta(days=as_of.weekday())).date()
    rows: list[list[object]] = []
    for w in range(weeks):
        week = monday - timedelta(weeks=weeks - w + start_offset_weeks)
        holidays = 1 if rng.random() < 0.12 else 0
        for commune, population in COMMUNES.items():
            rain = max(0.0, rng.gauss(12 + rain_shift, 9))
            pop = int(population * population_factor)
            for flux, per_inhabitant in FLUX.items():
                seasonal = 1 + 0.15 * (1 if week.month in (7, 8) else 0) - 0.05 * holidays
                tonnage = pop * per_inhabitant * seasonal * rng.uniform(0.9, 1.1) / 1000 - 0.01 * rain
                row: list[object] = [commune, week, flux, pop, holidays, rain]
                if with_label:
                    row.append(round(max(tonnage, 0.0), 3))
                rows.append(row)
    return rows


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
    out: list[GeneratedFile] = []

    def add(use_case: str, name: str, header: list[str], data: list[list[object]], description: str) -> None:
        dialect = policies[use_case].training_dataset.csv
        path = data_dir / use_case / name
        count = _writer(path, header, data, encoding=dialect.encoding, decimal=dialect.decimal)
        out.append(GeneratedFile(use_case, name, path, count, description))

    if "citizen_requests" in policies:
        uc = "citizen_requests"
        training = _citizen_rows(rows, seed, as_of, canaries=canaries)
        add(uc, "training.csv", CITIZEN_HEADER, training, "clean training data")
        add(
            uc,
            "inference_batch.csv",
            CITIZEN_HEADER[:-1],
            _citizen_rows(max(rows // 8, 200), seed + 1, as_of, id_prefix="INF", with_label=False, canaries=canaries),
            "clean inference batch",
        )
        leak_rng = _CitizenFaker(seed + 2)
        add(
            uc,
            "training__pii_leak.csv",
            [*CITIZEN_HEADER, "telephone_usager"],
            [[*r, _canary_or(canaries, i, leak_rng.phone())] for i, r in enumerate(training)],
            "undeclared column telephone_usager holds phone numbers",
        )
        add(
            uc,
            "training__quality_failure.csv",
            CITIZEN_HEADER,
            _quality_failures_citizen(training, seed),
            "nulls in required columns, unknown arrondissements and channels, duplicate ids",
        )

        def skewed_label(rng: random.Random, arrondissement: str, age: str) -> str:
            if arrondissement in ("13213", "13214", "13215") and rng.random() < 0.8:
                return "proprete"
            return rng.choices(list(CATEGORIES), weights=CATEGORY_WEIGHTS)[0]

        biased_arr = [
            0 if a == "13216" else (400 if a in ("13206", "13207", "13208") else w)
            for a, w in zip(ARRONDISSEMENTS, ARRONDISSEMENT_WEIGHTS, strict=True)
        ]
        add(
            uc,
            "training__biased.csv",
            CITIZEN_HEADER,
            _citizen_rows(
                rows,
                seed + 3,
                as_of,
                arr_weights=biased_arr,
                age_weights=[5, 10, 25, 35, 25],
                category_for=skewed_label,
                canaries=canaries,
            ),
            "16e arrondissement missing, 6e-8e over-represented, older age bands over-represented, label skewed by arrondissement",
        )
        add(
            uc,
            "inference_batch__drifted.csv",
            CITIZEN_HEADER[:-1],
            _citizen_rows(
                max(rows // 8, 200),
                seed + 4,
                as_of,
                id_prefix="INF",
                with_label=False,
                channel_weights=[2, 5, 3, 2, 88],
                arr_weights=[1] * 12 + [60, 60, 60, 60],
                message_suffix=lambda r: (
                    " "
                    + " ".join(
                        r.choice(
                            [
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
                        )
                        for _ in range(r.randint(8, 20))
                    )
                ),
                canaries=canaries,
            ),
            "channel moved to the mobile app, northern arrondissements dominate, longer messages with new vocabulary",
        )
    if "waste_tonnage" in policies:
        uc = "waste_tonnage"
        weeks = max(rows // (len(COMMUNES) * len(FLUX)), 20)
        training = _waste_rows(weeks, seed, as_of, start_offset_weeks=4)
        add(uc, "training.csv", WASTE_HEADER, training, "clean training data")
        add(
            uc,
            "inference_batch.csv",
            WASTE_HEADER[:-1],
            _waste_rows(4, seed + 1, as_of, with_label=False),
            "clean inference batch",
        )
        fake = _CitizenFaker(seed + 2)
        add(
            uc,
            "training__pii_leak.csv",
            [*WASTE_HEADER, "contact_agent"],
            [
                [*r, _canary_or(canaries, i, f"{fake.fake.name()} <{fake.fake.email()}> {fake.phone()}")]
                for i, r in enumerate(training)
            ],
            "undeclared column contact_agent holds names, e-mails and phones in a non-personal dataset",
        )
        bad = [list(r) for r in training]
        brng = random.Random(seed + 5)
        for r in brng.sample(bad, k=max(len(bad) // 20, 5)):
            r[6] = -abs(float(r[6]) if r[6] is not None else 1.0) - 1  # type: ignore[arg-type]
        for r in brng.sample(bad, k=max(len(bad) // 50, 3)):
            r[2] = "inconnu"
        for r in brng.sample(bad, k=max(len(bad) // 50, 3)):
            r[3] = None
        add(
            uc,
            "training__quality_failure.csv",
            WASTE_HEADER,
            bad,
            "negative tonnages, unknown flux, missing population",
        )
        add(
            uc,
            "inference_batch__drifted.csv",
            WASTE_HEADER[:-1],
            _waste_rows(4, seed + 4, as_of, rain_shift=45.0, population_factor=1.6, with_label=False),
            "heavy rain and inflated population figures",
        )
    for use_case in policies:
        src = data_dir / use_case / "training.csv"
        if src.exists():
            out.append(_corrupt_copy(src, data_dir / use_case / "training__corrupted.csv", use_case, seed))
    return out


def _canary_or(canaries: Canaries | None, row: int, value: str) -> str:
    """The canary contact on the rows that carry one (``value`` is drawn anyway: the other rows stay the same)."""
    return canaries.contact(row) if canaries is not None and canaries.carries(row) else value


def _quality_failures_citizen(training: list[list[object]], seed: int) -> list[list[object]]:
    rng = random.Random(seed + 6)
    bad = [list(r) for r in training]
    for r in rng.sample(bad, k=max(len(bad) // 25, 5)):
        r[6] = None  # missing label
    for r in rng.sample(bad, k=max(len(bad) // 25, 5)):
        r[3] = "13299"  # not an arrondissement
    for r in rng.sample(bad, k=max(len(bad) // 50, 3)):
        r[4] = "pigeon_voyageur"
    for i in rng.sample(range(1, len(bad)), k=max(len(bad) // 100, 2)):
        bad[i][0] = bad[i - 1][0]  # duplicate ids
    return bad


def _corrupt_copy(src: Path, dst: Path, use_case: str, seed: int) -> GeneratedFile:
    """Copy ``src`` and change a few digits in the middle: same size, different content."""
    data = bytearray(src.read_bytes())
    rng = random.Random(seed + 7)
    changed = 0
    positions = sorted(rng.sample(range(len(data) // 3, len(data) - 1), k=64))
    for pos in positions:
        if chr(data[pos]).isdigit() and changed < 3:
            data[pos] = ord(str((int(chr(data[pos])) + 1) % 10))
            changed += 1
    if changed == 0:
        data[len(data) // 2] ^= 0x01
    dst.write_bytes(bytes(data))
    rows = data.count(b"\n") - 1
    return GeneratedFile(use_case, dst.name, dst, rows, "training.csv with a few digits altered (same size)")
