"""A labelled corpus of single values, French and foreign, for the scanner's agreement test.

Every value is built deterministically (fixed seed) with the checking libraries' own helpers
(python-stdnum's ``calc_check_digit(s)``, phonenumbers' example numbers, ``ipaddress``) or is a
published test number, and comes in three kinds:

- ``valid``: the entity, which both the scanner and Presidio's analyzer must find;
- ``weak``: the entity, valid, in a format that scores under the threshold without a context word
  (a card number as bare digits, a German tax id): both report it with that low score, neither
  counts it as found;
- ``bad``: the same format with a wrong check (checksum, issuer range, numbering plan, calendar):
  a *suspect* for the scanner, dropped by Presidio, found by neither;
- ``near``: a near miss (too short, wrong prefix, lower case where only upper case is written...)
  or an ordinary non-personal value (amounts, dates, times, references): found by neither.

``entity`` is the entity a ``valid`` or ``weak`` value holds and a ``bad`` one imitates (``None`` for
near misses).
"""

from __future__ import annotations

import datetime
import ipaddress
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

SEED = 20260612
#: National identifiers the corpus holds: the scan must enable them all.
NATIONAL_IDENTIFIERS = ("BE", "DE", "ES", "IT")
#: Regions whose example numbers are used (phonenumbers' metadata), with the number types.
PHONE_REGIONS = ("BE", "DE", "ES", "IT", "GB", "CH", "NL", "LU", "PT", "US", "CA", "MA", "DZ", "TN", "SN", "RE", "GP")
#: IBAN BBAN structures (stdnum's registry) of countries whose BBAN has no national check of its own.
BBAN_FORMATS = {
    "DE": "8n10n",
    "NL": "4a10n",
    "GB": "4a6n8n",
    "CH": "5n12c",
    "AT": "5n11n",
    "LU": "3n13c",
    "PT": "4n4n11n2n",
    "IT": "1a5n5n12c",
    "PL": "8n16n",
    "IE": "4a6n8n",
    "DK": "4n9n1n",
    "SE": "3n16n1n",
    "GR": "3n4n16c",
}
#: IBANs with national check digits that stdnum verifies (its documentation's examples).
PUBLISHED_IBANS = ("BE71096123456769", "BE62510007547061", "ES7712341234161234567890", "NO9386011117947")
#: (first digits, length) of card numbers to build, one per issuer range of the recognizer.
CARD_PREFIXES = (
    ("4", 16),
    ("4", 19),
    ("51", 16),
    ("55", 16),
    ("2221", 16),
    ("2720", 16),
    ("34", 15),
    ("37", 15),
    ("6011", 16),
    ("65", 16),
    ("3530", 16),
    ("36", 16),
    ("62", 17),
)


@dataclass(frozen=True)
class CorpusValue:
    value: str
    kind: str  # valid | weak | bad | near
    entity: str | None

    @property
    def expected(self) -> set[str]:
        """The entities the scan must find in the value."""
        return {self.entity} if self.kind == "valid" and self.entity else set()


def valid(value: str, entity: str) -> CorpusValue:
    return CorpusValue(value, "valid", entity)


def weak(value: str, entity: str) -> CorpusValue:
    return CorpusValue(value, "weak", entity)


def bad(value: str, entity: str) -> CorpusValue:
    return CorpusValue(value, "bad", entity)


def near(*values: str) -> list[CorpusValue]:
    return [CorpusValue(v, "near", None) for v in values]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _bban(rng: random.Random, structure: str) -> str:
    alphabet = {"n": "0123456789", "a": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "c": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    return "".join(
        "".join(rng.choice(alphabet[kind]) for _ in range(int(size)))
        for size, kind in re.findall(r"(\d+)([nac])", structure)
    )


def _grouped(value: str, rng: random.Random, size: int = 4) -> str:
    return value if rng.random() < 0.5 else " ".join(value[i : i + size] for i in range(0, len(value), size))


def _wrong_digit(value: str, rng: random.Random) -> str:
    """``value`` with one digit changed (not the first two characters: issuer and country prefixes stay)."""
    places = [i for i, c in enumerate(value) if c.isdigit() and i > 1]
    i = rng.choice(places)
    return value[:i] + str((int(value[i]) + rng.randint(1, 9)) % 10) + value[i + 1 :]


def ibans(rng: random.Random) -> list[CorpusValue]:
    from stdnum import iban

    out = [valid(v, "IBAN_CODE") for v in PUBLISHED_IBANS]
    for country, structure in BBAN_FORMATS.items():
        for _ in range(3):
            bban = _bban(rng, structure)
            number = country + iban.calc_check_digits(country + "00" + bban) + bban
            out += [valid(_grouped(number, rng), "IBAN_CODE"), bad(_wrong_digit(number, rng), "IBAN_CODE")]
        out += near(number[:12], number.lower())  # too short for any BBAN; IBANs are written in upper case
    return out


def _card_groups(number: str) -> str:
    """As printed: 4-6-5 for American Express, groups of four for the others."""
    if len(number) == 15:
        return f"{number[:4]} {number[4:10]} {number[10:]}"
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def cards(rng: random.Random) -> list[CorpusValue]:
    from stdnum import luhn

    out: list[CorpusValue] = []
    for prefix, length in CARD_PREFIXES:
        for _ in range(3):
            body = prefix + _digits(rng, length - len(prefix) - 1)
            number = body + luhn.calc_check_digit(body)
            out += [valid(_card_groups(number), "CREDIT_CARD"), weak(number, "CREDIT_CARD")]
            out.append(bad(body + str((int(luhn.calc_check_digit(body)) + 1) % 10), "CREDIT_CARD"))
    for length in (16, 15):  # right length and Luhn, in no issuer range
        body = "7" + _digits(rng, length - 2)
        out += near(body + luhn.calc_check_digit(body))
    body = "4" + _digits(rng, 11)
    out += near(body + luhn.calc_check_digit(body))  # 13 digits, the length of an EAN-13 code
    return out


def ips(rng: random.Random) -> list[CorpusValue]:
    out: list[CorpusValue] = []
    for _ in range(15):
        v4 = ipaddress.IPv4Address(rng.getrandbits(32))
        v6 = ipaddress.IPv6Address(rng.getrandbits(128) >> rng.choice((0, 16, 64)))
        out += [valid(str(v4), "IP_ADDRESS"), valid(v6.compressed, "IP_ADDRESS"), valid(v6.exploded, "IP_ADDRESS")]
        a, b, c = (rng.randint(0, 255) for _ in range(3))
        out.append(bad(f"{rng.randint(256, 999)}.{a}.{b}.{c}", "IP_ADDRESS"))
    out += [bad(v, "IP_ADDRESS") for v in ("01.2.3.4", "10.0.0.256", "1:2:3:4:5:6:7::8")]
    return out + near("1.2.3", "12:30:45", "00:1A:2B:3C:4D:5E", "1.2.3.4.5", "v1.2", "1::2::3")


def phones(rng: random.Random) -> list[CorpusValue]:
    import phonenumbers
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    out: list[CorpusValue] = []
    for region in PHONE_REGIONS:
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
            written = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
            out += [
                valid(written, "PHONE_NUMBER"),
                valid(e164, "PHONE_NUMBER"),
                valid("00" + written[1:], "PHONE_NUMBER"),
            ]
            longer = f"{written} {_digits(rng, 4)}"
            if not phonenumbers.is_valid_number(phonenumbers.parse(longer, "FR")):
                out.append(bad(longer, "PHONE_NUMBER"))  # too long for the region's plan
    out += [bad(v, "PHONE_NUMBER") for v in ("+44 6 12 34 56 78", "+1 000 000 0000")]
    return out + near("+32 12", "32 470 12 34 56", "+12 %", "+999")


def _be_nn(rng: random.Random, born: datetime.date) -> str:
    body = f"{born:%y%m%d}{rng.randint(1, 997):03d}"
    check = 97 - int(("2" if born.year >= 2000 else "") + body) % 97
    return body + f"{check:02d}"


def _idnr(rng: random.Random) -> str:
    """A German tax id: ten digits, one of them twice, the first not 0, and the mod 11,10 digit."""
    from stdnum.iso7064 import mod_11_10

    digits = rng.sample("0123456789", 9)
    body = [*digits, rng.choice(digits)]
    while body[0] == "0":
        rng.shuffle(body)
    text = "".join(body)
    return text + mod_11_10.calc_check_digit(text)


def _fiscal_code(rng: random.Random, born: datetime.date) -> str:
    from stdnum.it import codicefiscale

    letters = "".join(rng.choice("BCDFGHLMNPRSTVZ") for _ in range(6))
    day = born.day + (40 if rng.random() < 0.5 else 0)
    body = f"{letters}{born:%y}{'ABCDEHLMPRST'[born.month - 1]}{day:02d}{rng.choice('ADFHLZ')}{rng.randint(1, 999):03d}"
    return body + codicefiscale.calc_check_digit(body)


def nationals(rng: random.Random, today: datetime.date) -> list[CorpusValue]:
    from stdnum.be import bis, nn
    from stdnum.es import dni, nie

    def born() -> datetime.date:
        return today - datetime.timedelta(days=rng.randint(20 * 365, 80 * 365))

    def belgian(number: str) -> bool:
        return bool(nn.is_valid(number) or bis.is_valid(number))

    makers: dict[str, Callable[[], str]] = {
        "BE_NATIONAL_NUMBER": lambda: _be_nn(rng, born()),
        "ES_NIF": lambda: (n := _digits(rng, 8)) + dni.calc_check_digit(n),
        "ES_NIE": lambda: (n := rng.choice("XYZ") + _digits(rng, 7)) + nie.calc_check_digit(n),
        "IT_FISCAL_CODE": lambda: _fiscal_code(rng, born()),
    }
    out: list[CorpusValue] = []
    for entity, make in makers.items():
        for _ in range(8):
            value = make()
            out.append(valid(value, entity))
            wrong = _wrong_digit(value, rng) if entity.startswith("BE") else value[:-1] + "AB"[value[-1] == "A"]
            if not belgian(wrong):  # one changed BE number in about 97 is valid for the other century
                out.append(bad(wrong, entity))
    # a DE tax id alone scores under the threshold: it needs a context word
    out += [weak(v, "DE_TAX_ID") for v in (_idnr(rng) for _ in range(8)) if not belgian(v)]
    return out + near("1234567Z", "X123456L", "RSSMRA85T10A56S", "85.07.30-033")


def birth_dates(rng: random.Random, today: datetime.date) -> list[CorpusValue]:
    formats = ("né le {:%d/%m/%Y}", "née le {:%d.%m.%Y}", "date de naissance : {:%Y-%m-%d}", "DOB {:%d/%m/%Y}")
    out = [
        valid(rng.choice(formats).format(today - datetime.timedelta(days=rng.randint(1, 90 * 365))), "DATE_OF_BIRTH")
        for _ in range(10)
    ]
    out += [bad(v, "DATE_OF_BIRTH") for v in ("né le 31/02/1985", "née le 12/13/1990", f"né le 01/01/{today.year + 1}")]
    return out + near("livré le 12/03/2024", "né en 1985", "12/03/1985", "donné le 02/05/2021", "né le 01/01/1850")


def french(rng: random.Random) -> list[CorpusValue]:
    from stdnum import iban, luhn
    from stdnum.fr import nir

    out: list[CorpusValue] = []
    for _ in range(10):
        birth = f"{rng.choice('12')}{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}"
        body = f"{birth}13{rng.randint(1, 990):03d}{rng.randint(1, 999):03d}"
        number = body + nir.calc_check_digits(body)
        out += [valid(number, "FR_NIR"), bad(body + f"{(int(number[-2:]) + 1) % 97:02d}", "FR_NIR")]
        siren = (b := _digits(rng, 8)) + luhn.calc_check_digit(b)
        siret = (b := siren + _digits(rng, 4)) + luhn.calc_check_digit(b)
        out.append(valid(siret, "FR_SIRET"))
        pairs = " ".join(_digits(rng, 2) for _ in range(4))
        out += [valid(f"0{rng.choice('67')} {pairs}", "FR_PHONE"), valid(f"+33 {rng.choice('67')} {pairs}", "FR_PHONE")]
        bban = _digits(rng, 23)
        fr_iban = "FR" + iban.calc_check_digits("FR00" + bban) + bban
        out += [valid(_grouped(fr_iban, rng), "FR_IBAN"), bad(_wrong_digit(fr_iban, rng), "FR_IBAN")]
        out += near(
            f"{rng.randint(1, 99999):,.2f}".replace(",", " ").replace(".", ","),
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
            f"CMD-{rng.randint(2019, 2026)}-{_digits(rng, 7)}",
            f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2000, 2025)}",
        )
    return out


def make_corpus(seed: int = SEED, today: datetime.date | None = None) -> list[CorpusValue]:
    """The corpus: about 600 distinct values, deterministic for a seed and a day."""
    rng = random.Random(seed)
    today = today or datetime.date.today()
    values = [
        *ibans(rng),
        *cards(rng),
        *ips(rng),
        *phones(rng),
        *nationals(rng, today),
        *birth_dates(rng, today),
        *french(rng),
    ]
    # some regions share one example number between mobile and fixed lines: each value once
    return list({v.value: v for v in reversed(values)}.values())[::-1]
