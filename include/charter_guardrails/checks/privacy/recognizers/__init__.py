"""French recognizers in Presidio's style: one file per entity, checksums from python-stdnum."""

from __future__ import annotations

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

#: Recognizers that need no NLP: the column scanner runs these alone on structured columns.
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

__all__ = [
    "PATTERN_RECOGNIZERS",
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
]
