"""Canaries: known personal values seeded into the sample data (see :mod:`charter_demo.sample_data`).

With canaries, one row in ``Canaries.every`` of every citizen file carries known personal values in
its free text, and the undeclared columns of the ``__pii_leak`` variants carry them too (SIRET and
IBAN included). A test then proves that none of them leaves the input files.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

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
        # A self-check of this generator (the checksums above), not a validation of input.
        assert nir.is_valid(nir_value) and siret.is_valid(siret_value) and iban.is_valid(iban_value)  # noqa: S101, PT018
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


def canary_or(canaries: Canaries | None, row: int, value: str) -> str:
    """The canary contact on the rows that carry one (``value`` is drawn anyway: the other rows stay the same)."""
    return canaries.contact(row) if canaries is not None and canaries.carries(row) else value
