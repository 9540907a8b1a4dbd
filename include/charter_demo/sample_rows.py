"""Rows of the two use cases: their vocabulary, the citizen-request faker and the row generators.

Every generator draws from its own seeded ``random.Random`` (and Faker ``fr_FR``), so a file depends
only on its seed, its size and ``as_of``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from charter_demo.canaries import Canaries

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
CITIZEN_HEADER = ["request_id", "received_at", "message", "arrondissement", "channel", "age_band", "category"]
WASTE_HEADER = ["commune", "week", "flux", "population", "jours_feries", "pluie_mm", "tonnage_t"]


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


class CitizenFaker:
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


def citizen_rows(
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
    gen = CitizenFaker(seed)
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


def waste_rows(
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
