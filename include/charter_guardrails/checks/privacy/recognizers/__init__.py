"""The recognizers, in Presidio's style: one file per entity, checks from python-stdnum, phonenumbers
and ``ipaddress``; and :func:`build_recognizers`, the one list that Presidio's analyzer and the
scanner's detector both run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from charter_guardrails.checks.privacy.recognizers.be_national_number_recognizer import BeNationalNumberRecognizer
from charter_guardrails.checks.privacy.recognizers.credit_card_recognizer import CreditCardRecognizer
from charter_guardrails.checks.privacy.recognizers.date_of_birth_recognizer import (
    DateOfBirthRecognizer,
    birth_date_finding,
    column_rules,
)
from charter_guardrails.checks.privacy.recognizers.de_tax_id_recognizer import DeTaxIdRecognizer
from charter_guardrails.checks.privacy.recognizers.es_nie_recognizer import EsNieRecognizer
from charter_guardrails.checks.privacy.recognizers.es_nif_recognizer import EsNifRecognizer
from charter_guardrails.checks.privacy.recognizers.fr_address_recognizer import FrAddressRecognizer
from charter_guardrails.checks.privacy.recognizers.fr_email_recognizer import FrEmailRecognizer
from charter_guardrails.checks.privacy.recognizers.fr_iban_recognizer import FrIbanRecognizer
from charter_guardrails.checks.privacy.recognizers.fr_id_card_recognizer import FrIdCardRecognizer
from charter_guardrails.checks.privacy.recognizers.fr_license_plate_recognizer import FrLicensePlateRecognizer
from charter_guardrails.checks.privacy.recognizers.fr_nir_recognizer import FrNirRecognizer
from charter_guardrails.checks.privacy.recognizers.fr_passport_recognizer import FrPassportRecognizer
from charter_guardrails.checks.privacy.recognizers.fr_phone_recognizer import FrPhoneRecognizer
from charter_guardrails.checks.privacy.recognizers.fr_rib_recognizer import FrRibRecognizer
from charter_guardrails.checks.privacy.recognizers.fr_siren_recognizer import FrSirenRecognizer
from charter_guardrails.checks.privacy.recognizers.fr_siret_recognizer import FrSiretRecognizer
from charter_guardrails.checks.privacy.recognizers.fr_vat_recognizer import FrVatRecognizer
from charter_guardrails.checks.privacy.recognizers.iban_recognizer import IbanRecognizer
from charter_guardrails.checks.privacy.recognizers.ip_recognizer import IpAddressRecognizer
from charter_guardrails.checks.privacy.recognizers.it_fiscal_code_recognizer import ItFiscalCodeRecognizer
from charter_guardrails.checks.privacy.recognizers.phone_recognizer import DEFAULT_REGION, PhoneNumberRecognizer

if TYPE_CHECKING:
    from presidio_analyzer import EntityRecognizer

#: The French recognizers. They need no NLP: the column scanner runs them alone on structured columns.
PATTERN_RECOGNIZERS = (
    FrNirRecognizer,
    FrSirenRecognizer,
    FrSiretRecognizer,
    FrVatRecognizer,
    FrPhoneRecognizer,
    FrIbanRecognizer,
    FrRibRecognizer,
    FrIdCardRecognizer,
    FrPassportRecognizer,
    FrLicensePlateRecognizer,
    FrEmailRecognizer,
    FrAddressRecognizer,
)
#: Identifiers of every country, always on (the phone recognizer is added with the default region).
INTERNATIONAL_RECOGNIZERS = (IbanRecognizer, CreditCardRecognizer, IpAddressRecognizer, DateOfBirthRecognizer)
#: National identifiers of neighbouring countries, on only where the policy names the country
#: (``privacy.national_identifiers``): each one's digits look like other countries' references.
NATIONAL_RECOGNIZERS = {
    "BE": (BeNationalNumberRecognizer,),
    "DE": (DeTaxIdRecognizer,),
    "ES": (EsNifRecognizer, EsNieRecognizer),
    "IT": (ItFiscalCodeRecognizer,),
}


@dataclass(frozen=True)
class RecognizerConfig:
    """Which recognizers run: the policy's national identifiers and default phone region."""

    national_identifiers: frozenset[str] = frozenset()
    phone_region: str = DEFAULT_REGION

    @classmethod
    def of(cls, national_identifiers: Iterable[str] = (), phone_region: str = DEFAULT_REGION) -> RecognizerConfig:
        """A configuration from a policy's (or scan options') values; country codes in upper case."""
        return cls(frozenset(c.upper() for c in national_identifiers), phone_region.upper())


DEFAULT_CONFIG = RecognizerConfig()


def build_recognizers(config: RecognizerConfig = DEFAULT_CONFIG, language: str = "fr") -> list[EntityRecognizer]:
    """One instance of every pattern recognizer ``config`` turns on, in a stable order.

    Presidio's analyzer (:func:`~charter_guardrails.checks.privacy.analyzer.get_analyzer`) and the
    scanner's detector are both built from this list, so they run the same recognizers.
    """
    unknown = sorted(config.national_identifiers - NATIONAL_RECOGNIZERS.keys())
    if unknown:
        from charter_guardrails.core.errors import ConfigError

        raise ConfigError(
            f"no national identifiers for {', '.join(unknown)}: privacy.national_identifiers "
            f"may name {', '.join(sorted(NATIONAL_RECOGNIZERS))}"
        )
    recognizers: list[EntityRecognizer] = [cls(supported_language=language) for cls in PATTERN_RECOGNIZERS]
    recognizers += [cls(supported_language=language) for cls in INTERNATIONAL_RECOGNIZERS]
    recognizers.append(PhoneNumberRecognizer(supported_language=language, default_region=config.phone_region))
    for country in sorted(config.national_identifiers):
        recognizers += [cls(supported_language=language) for cls in NATIONAL_RECOGNIZERS[country]]
    return recognizers


__all__ = [
    "DEFAULT_CONFIG",
    "INTERNATIONAL_RECOGNIZERS",
    "NATIONAL_RECOGNIZERS",
    "PATTERN_RECOGNIZERS",
    "BeNationalNumberRecognizer",
    "CreditCardRecognizer",
    "DateOfBirthRecognizer",
    "DeTaxIdRecognizer",
    "EsNieRecognizer",
    "EsNifRecognizer",
    "FrAddressRecognizer",
    "FrEmailRecognizer",
    "FrIbanRecognizer",
    "FrIdCardRecognizer",
    "FrLicensePlateRecognizer",
    "FrNirRecognizer",
    "FrPassportRecognizer",
    "FrPhoneRecognizer",
    "FrRibRecognizer",
    "FrSirenRecognizer",
    "FrSiretRecognizer",
    "FrVatRecognizer",
    "IbanRecognizer",
    "IpAddressRecognizer",
    "ItFiscalCodeRecognizer",
    "PhoneNumberRecognizer",
    "RecognizerConfig",
    "birth_date_finding",
    "build_recognizers",
    "column_rules",
]
