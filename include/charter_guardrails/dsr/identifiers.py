"""The identifier of a data subject: validated, normalised, and turned into what the files can hold of it.

A person is looked for in two kinds of files:

- **files that hold values** (raw deliveries, batches, quarantine copies): a regular expression of the
  normalised value that accepts the ways people write it (an e-mail in any case; a phone number in its
  national or international form, with or without separators, as ``phonenumbers`` parses it; a NIR or an
  IBAN with or without spaces, checked by python-stdnum first; a name in any case and with or without
  accents);
- **pseudonymised copies**: the keyed pseudonym an identifier column holds (HMAC of the value *as written*)
  and the keyed entity token free text holds (:func:`~charter_guardrails.checks.privacy.pseudonymise.entity_token`
  of the detected span, whose spaces are collapsed and case folded). Both depend on how the value was written
  in the source, which the value alone does not say: the written forms of :meth:`Identifier.written_forms`
  (the value as given and its usual formats) are hashed, and a form outside that list cannot be found
  through its token. The clear value is looked for in copies too: a span the detector missed stays in clear.

The value itself is never logged, stored or printed: errors name the type and what is wrong with it, and
what the records keep is :meth:`Identifier.keyed_hash`, an HMAC with the pseudonymisation key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum

from charter_guardrails.core.errors import ConfigError


class IdentifierType(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    NIR = "nir"
    IBAN = "iban"
    NAME = "name"


#: The entity types the scanner gives each kind of identifier in free text (the tokens' prefixes).
ENTITY_TYPES: dict[IdentifierType, tuple[str, ...]] = {
    IdentifierType.EMAIL: ("EMAIL_ADDRESS",),
    IdentifierType.PHONE: ("FR_PHONE", "PHONE_NUMBER"),
    IdentifierType.NIR: ("FR_NIR",),
    IdentifierType.IBAN: ("FR_IBAN", "IBAN_CODE"),
    IdentifierType.NAME: ("PERSON",),
}
#: Domain of the keyed hash that records a request: never equal to a pseudonym of the same value.
HASH_DOMAIN = "charter-dsr"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
#: What may separate the digits of a phone number, a NIR or an IBAN as people write them.
_SEP = r"[\s.\-]?"


def fold(text: str) -> str:
    """Case-folded, without accents, spaces collapsed: how a name is compared."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def _spaced(chars: str) -> str:
    """``chars`` with an optional separator between each character."""
    return _SEP.join(re.escape(c) for c in chars)


@dataclass(frozen=True)
class Identifier:
    """A validated identifier: its type, its normalised value, and the forms the files can hold it in."""

    type: IdentifierType
    normalised: str
    #: The value as given (stripped): the first written form.
    given: str
    #: Extra written forms (formats of the value): see :meth:`written_forms`.
    formats: tuple[str, ...] = field(default=())
    #: The regular expression of the value in text; names are matched on :func:`fold` ed text.
    pattern: re.Pattern[str] = field(default=re.compile(r"(?!x)x"))

    def __repr__(self) -> str:  # the value never reaches a log line through a repr
        return f"Identifier(type={self.type.value!r})"

    __str__ = __repr__

    def written_forms(self) -> list[str]:
        """The ways the value is hashed for pseudonyms and tokens: as given, then its usual formats."""
        return list(dict.fromkeys([self.given, self.normalised, *self.formats]))

    def keyed_hash(self, key: bytes) -> str:
        """``hmac-sha256:<hex>`` of the normalised value: what records keep instead of the value."""
        message = f"{HASH_DOMAIN}\x1f{self.type.value}\x1f{self.normalised}".encode()
        return "hmac-sha256:" + hmac.new(key, message, hashlib.sha256).hexdigest()

    def matches_text(self, text: str) -> bool:
        return self.pattern.search(fold(text) if self.type is IdentifierType.NAME else text) is not None


def parse_identifier(value: str, kind: str) -> Identifier:
    """Validate ``value`` as an identifier of type ``kind``.

    :raises ConfigError: an unknown type, or a value that is not a valid identifier of that type. The message
        names the type and the reason, never the value.
    """
    try:
        ident_type = IdentifierType(kind)
    except ValueError:
        raise ConfigError(
            f"unknown identifier type {kind!r}: use one of {', '.join(t.value for t in IdentifierType)}"
        ) from None
    given = " ".join(value.split())
    if not given:
        raise ConfigError(f"the {ident_type.value} to search is empty: give a value (or `-` to read it from stdin)")
    builders = {
        IdentifierType.EMAIL: _email,
        IdentifierType.PHONE: _phone,
        IdentifierType.NIR: _nir,
        IdentifierType.IBAN: _iban,
        IdentifierType.NAME: _name,
    }
    return builders[ident_type](given)


def _email(given: str) -> Identifier:
    if not _EMAIL.fullmatch(given):
        raise ConfigError("the e-mail to search is not an e-mail address (expected local@domain.tld)")
    normalised = given.casefold()
    pattern = re.compile(r"(?<![\w.+\-])" + re.escape(normalised) + r"(?![\w\-]|\.\w)", re.IGNORECASE)
    return Identifier(IdentifierType.EMAIL, normalised, given, (given.lower(),), pattern)


def _phone(given: str) -> Identifier:
    import phonenumbers

    try:
        number = phonenumbers.parse(given, "FR")
    except phonenumbers.NumberParseException:
        raise ConfigError("the phone number to search cannot be read as a phone number (e.g. 06 12 34 56 78)") from None
    if not phonenumbers.is_valid_number(number):
        raise ConfigError("the phone number to search is not a valid number for its country; check its digits")
    fmt = phonenumbers.PhoneNumberFormat
    e164 = phonenumbers.format_number(number, fmt.E164)
    national = phonenumbers.format_number(number, fmt.NATIONAL)
    national_digits = "".join(c for c in national if c.isdigit())
    nsn, cc = phonenumbers.national_significant_number(number), str(number.country_code)
    pattern = re.compile(
        r"(?<![\d+])(?:(?:\+|00)" + _SEP + re.escape(cc) + _SEP + r"(?:\(0\)" + _SEP + r")?" + _spaced(nsn)
        + "|" + _spaced(national_digits) + r")(?!\d)"
    )  # fmt: skip
    formats = (
        e164,
        phonenumbers.format_number(number, fmt.INTERNATIONAL),
        national,
        national.replace(" ", "."),
        national.replace(" ", "-"),
        national_digits,
        f"00{cc} {nsn}",
    )
    return Identifier(IdentifierType.PHONE, e164, given, formats, pattern)


def _checked(module: object, given: str, label: str) -> str:
    """``module.validate(given)`` of python-stdnum, its error as a :class:`ConfigError` without the value."""
    from stdnum.exceptions import ValidationError

    try:
        return str(module.validate(given))  # type: ignore[attr-defined]  # stdnum modules are untyped
    except ValidationError as exc:
        reason = str(exc).rstrip(".").lower()
        raise ConfigError(f"the {label} to search is not valid ({reason}); check it against the document") from None


def _nir(given: str) -> Identifier:
    from stdnum.fr import nir

    compact = _checked(nir, given, "NIR").upper()
    pattern = re.compile(
        r"(?<![0-9A-Za-z])" + _spaced(compact[:13]) + "(?:" + _SEP + _spaced(compact[13:]) + r")?(?![0-9])",
        re.IGNORECASE,
    )
    return Identifier(IdentifierType.NIR, compact, given, (nir.format(compact),), pattern)


def _iban(given: str) -> Identifier:
    from stdnum import iban

    compact = _checked(iban, given, "IBAN").upper()
    pattern = re.compile(r"(?<![0-9A-Za-z])" + _spaced(compact) + r"(?![0-9A-Za-z])", re.IGNORECASE)
    return Identifier(IdentifierType.IBAN, compact, given, (iban.format(compact),), pattern)


def _name(given: str) -> Identifier:
    folded = fold(given)
    if len(folded) < 2 or not any(c.isalpha() for c in folded):
        raise ConfigError("the name to search must hold letters (a first and a last name find the fewest others)")
    words = folded.split(" ")
    pattern = re.compile(r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)")
    plain = "".join(c for c in unicodedata.normalize("NFKD", given) if not unicodedata.combining(c))
    return Identifier(IdentifierType.NAME, folded, given, (given.title(), given.upper(), plain, plain.title()), pattern)
