"""French recognizers: a table of (text, expected span) per entity, valid, invalid-checksum and near-miss,
run through Presidio's analyzer (with its context enhancement) and through the scanner's bulk detector,
plus property tests: on random digit strings the recognizers agree with python-stdnum."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from charter_guardrails.checks.privacy.analyzer import get_analyzer
from charter_guardrails.checks.privacy.detector import get_detector
from charter_guardrails.checks.privacy.recognizers import (
    FrIbanRecognizer,
    FrNirRecognizer,
    FrSirenRecognizer,
    FrSiretRecognizer,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import iban
from stdnum.fr import nir, siren, siret

# (entity, text, the substring expected as the entity, or None when nothing may be reported)
CASES: list[tuple[str, str, str | None]] = [
    # FR_NIR: key 97 - (n mod 97); Corsica 2A/2B; spaces, dots, dashes
    ("FR_NIR", "Mon numéro de sécurité sociale est 1 85 12 13 123 456 16.", "1 85 12 13 123 456 16"),
    ("FR_NIR", "NIR 185121312345616", "185121312345616"),
    ("FR_NIR", "nir: 1.85.12.13.123.456.16", "1.85.12.13.123.456.16"),
    ("FR_NIR", "nir: 1-85-12-13-123-456-16", "1-85-12-13-123-456-16"),
    ("FR_NIR", "né en Corse du Sud: 2 85 05 2A 013 123 27", "2 85 05 2A 013 123 27"),
    ("FR_NIR", "Haute-Corse 1 85 11 2B 004 056 52", "1 85 11 2B 004 056 52"),
    ("FR_NIR", "sécu 1 85 12 13 123 456 17", None),  # wrong key
    ("FR_NIR", "Corse 2 85 05 2A 013 123 28", None),  # wrong key
    ("FR_NIR", "sécu 1 85 12 13 123 456", None),  # near miss: no key
    ("FR_NIR", "ref 5 85 12 13 123 456 16", None),  # near miss: no such first digit
    # FR_SIREN: Luhn; needs context (one random 9-digit number in ten passes Luhn)
    ("FR_SIREN", "Entreprise SIREN 732 829 320", "732 829 320"),
    ("FR_SIREN", "SIREN 732829320", "732829320"),
    ("FR_SIREN", "SIREN 732 829 321", None),  # Luhn fails
    ("FR_SIREN", "commande 732829320", None),  # no context: score stays under the threshold
    ("FR_SIREN", "SIREN 73282932", None),  # near miss: 8 digits
    # FR_SIRET: Luhn, La Poste's rule
    ("FR_SIRET", "SIRET 732 829 320 00074", "732 829 320 00074"),
    ("FR_SIRET", "siret: 73282932000074", "73282932000074"),
    ("FR_SIRET", "La Poste, siret 35600000000048", "35600000000048"),
    ("FR_SIRET", "bureau de poste siret 35600000010000", "35600000010000"),  # digit sum multiple of 5, not Luhn
    ("FR_SIRET", "siret 73282932000075", None),  # Luhn fails
    ("FR_SIRET", "siret 35600000010001", None),  # La Poste rule fails
    ("FR_SIRET", "siret 7328293200007", None),  # near miss: 13 digits
    # FR_VAT
    ("FR_VAT", "TVA intracommunautaire FR44732829320", "FR44732829320"),
    ("FR_VAT", "TVA FR 44 732 829 320", "FR 44 732 829 320"),
    ("FR_VAT", "TVA FR45732829320", None),  # key fails
    ("FR_VAT", "TVA FR4473282932", None),  # near miss: too short
    # FR_PHONE
    ("FR_PHONE", "rappelez-moi au 06 12 34 56 78", "06 12 34 56 78"),
    ("FR_PHONE", "tel 06.12.34.56.78", "06.12.34.56.78"),
    ("FR_PHONE", "tel 06-12-34-56-78", "06-12-34-56-78"),
    ("FR_PHONE", "0491234567", "0491234567"),
    ("FR_PHONE", "portable +33 6 12 34 56 78", "+33 6 12 34 56 78"),
    ("FR_PHONE", "+33612345678", "+33612345678"),
    ("FR_PHONE", "appeler 0033 6 12 34 56 78", "0033 6 12 34 56 78"),
    ("FR_PHONE", "+33 (0)6 12 34 56 78", "+33 (0)6 12 34 56 78"),
    ("FR_PHONE", "tel 06 12 34 56 7", None),  # near miss: 9 digits
    ("FR_PHONE", "tel 00 12 34 56 78", None),  # near miss: 00 is not a French prefix
    ("FR_PHONE", "call +44 6 12 34 56 78", None),  # near miss: not +33
    # FR_IBAN and RIB: ISO 7064 mod 97 / RIB key
    ("FR_IBAN", "IBAN FR76 3000 6000 0112 3456 7890 189", "FR76 3000 6000 0112 3456 7890 189"),
    ("FR_IBAN", "IBAN FR7630006000011234567890189", "FR7630006000011234567890189"),
    ("FR_IBAN", "IBAN FR7630006000011234567890188", None),  # check digits fail
    ("FR_IBAN", "IBAN FR763000600001123456789018", None),  # near miss: one character short
    ("FR_RIB", "RIB 30006 00001 12345678901 89", "30006 00001 12345678901 89"),
    ("FR_RIB", "RIB 30006 00001 12345678901 88", None),  # RIB key fails
    ("FR_RIB", "RIB 30006 00001 1234567890 89", None),  # near miss: 10-character account
    # FR_ID_CARD: no check digit of its own, a context word is needed
    ("FR_ID_CARD", "carte d'identité CNI 880692310285", "880692310285"),
    ("FR_ID_CARD", "CNI numéro X4RTBPFW4", "X4RTBPFW4"),
    ("FR_ID_CARD", "référence 880692310285", None),  # no context
    ("FR_ID_CARD", "CNI 88069231028", None),  # near miss: 11 characters
    ("FR_ID_CARD", "CNI x4rtbpfw4", None),  # near miss: lower case
    # FR_PASSPORT
    ("FR_PASSPORT", "passeport 12AB34567", "12AB34567"),
    ("FR_PASSPORT", "passeport 12AB3456", None),  # near miss
    ("FR_PASSPORT", "passeport 123B34567", None),  # near miss
    # FR_LICENSE_PLATE: SIV, no I/O/U, no SS, no 000
    ("FR_LICENSE_PLATE", "voiture immatriculée AB-123-CD", "AB-123-CD"),
    ("FR_LICENSE_PLATE", "plaque FG 456 HJ", "FG 456 HJ"),
    ("FR_LICENSE_PLATE", "plaque AB-000-CD", None),
    ("FR_LICENSE_PLATE", "plaque SS-123-CD", None),
    ("FR_LICENSE_PLATE", "plaque AI-123-CD", None),  # I is never used
    ("FR_LICENSE_PLATE", "plaque AB-1234-CD", None),  # near miss
    # EMAIL_ADDRESS, validated offline
    ("EMAIL_ADDRESS", "écrire à jean.dupont@exemple.fr", "jean.dupont@exemple.fr"),
    ("EMAIL_ADDRESS", "écrire à jean.dupont@exemple", None),
]


def _ids(case: tuple[str, str, str | None]) -> str:
    return f"{case[0]}:{'valid' if case[2] else 'rejected'}:{case[1][:30]}"


@pytest.mark.parametrize(("entity", "text", "expected"), CASES, ids=[_ids(c) for c in CASES])
def test_analyzer_table(entity: str, text: str, expected: str | None) -> None:
    results = get_analyzer().analyze(text=text, language="fr", entities=[entity], score_threshold=0.5)
    spans = [text[r.start : r.end] for r in results]
    assert spans == ([expected] if expected else []), (entity, text, [(r.entity_type, r.score) for r in results])


@pytest.mark.parametrize(("entity", "text", "expected"), CASES, ids=[_ids(c) for c in CASES])
def test_scanner_detector_agrees(entity: str, text: str, expected: str | None) -> None:
    hits = [
        h for h in get_detector().pattern_hits(text) if h.entity_type == entity and not h.suspect and h.score >= 0.5
    ]
    assert [text[h.start : h.end] for h in hits] == ([expected] if expected else [])


def test_failed_checksum_is_a_low_score_suspect_not_the_entity() -> None:
    hits = get_detector().pattern_hits("sécu 1 85 12 13 123 456 17")
    assert [(h.entity_type, h.suspect) for h in hits] == [("FR_NIR", True)]
    assert hits[0].score < 0.5


def test_french_phone_scores_high() -> None:
    results = get_analyzer().analyze(text="Contact : 06 12 34 56 78", language="fr", entities=["FR_PHONE"])
    assert results
    assert results[0].score >= 0.7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Il y a un nid-de-poule au 12 rue de la République.", "12 rue de la République"),
        ("12 bis, avenue du Prado", "12 bis, avenue du Prado"),
        ("boulevard de Lemaire, 95508 Lucas-sur-Dubois", "boulevard de Lemaire, 95508 Lucas-sur-Dubois"),
        ("la rue est sale", None),  # near miss: no number, no postcode
        ("montant 1 234,56", None),
        ("13001 Marseille", None),  # a postcode and a city alone are not an address
    ],
)
def test_street_addresses_are_locations(text: str, expected: str | None) -> None:
    hits = [h for h in get_detector().pattern_hits(text) if h.entity_type == "LOCATION"]
    assert [text[h.start : h.end] for h in hits] == ([expected] if expected else [])


def test_column_name_is_context() -> None:
    detector = get_detector()
    assert detector.pattern_hits("732829320")
    assert detector.pattern_hits("732829320")[0].score < 0.5
    boosted = detector.context_entities("siren_fournisseur")
    assert "FR_SIREN" in boosted
    assert detector.pattern_hits("732829320", boosted)[0].score >= 0.5


def test_analyzer_is_built_once_and_never_opens_a_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("network access attempted")

    get_analyzer.cache_clear()
    from charter_guardrails.checks.privacy.recognizers.fr_email_recognizer import offline_tld_extractor

    offline_tld_extractor.cache_clear()
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    analyzer = get_analyzer()
    assert get_analyzer() is analyzer
    results = analyzer.analyze(text="Écrivez à marie.curie@universite.fr ou au 06 12 34 56 78", language="fr")
    assert {"EMAIL_ADDRESS", "FR_PHONE"} <= {r.entity_type for r in results}
    assert analyzer.supported_languages[0] == "fr"


def _found(recognizer: Any, text: str, entity: str) -> bool:
    return any(r.entity_type == entity for r in recognizer.analyze(text, [entity], None))


_NIR = FrNirRecognizer()
_SIREN = FrSirenRecognizer()
_SIRET = FrSiretRecognizer()
_IBAN = FrIbanRecognizer()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from("12478"), st.text(alphabet="0123456789", min_size=14, max_size=14))
def test_nir_agrees_with_stdnum(first: str, rest: str) -> None:
    number = first + rest
    assert _found(_NIR, number, "FR_NIR") == nir.is_valid(number)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_siren_agrees_with_stdnum(number: str) -> None:
    assert _found(_SIREN, number, "FR_SIREN") == siren.is_valid(number)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789", min_size=14, max_size=14))
def test_siret_agrees_with_stdnum(number: str) -> None:
    assert _found(_SIRET, number, "FR_SIRET") == siret.is_valid(number)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789", min_size=25, max_size=25))
def test_iban_agrees_with_stdnum(digits: str) -> None:
    number = "FR" + digits
    assert _found(_IBAN, number, "FR_IBAN") == iban.is_valid(number)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from("12478"), st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_valid_nir_always_found_with_separators(first: str, rest: str) -> None:
    body = first + rest
    number = body + nir.calc_check_digits(body)
    grouped = f"{number[0]} {number[1:3]} {number[3:5]} {number[5:7]} {number[7:10]} {number[10:13]} {number[13:]}"
    assert _found(_NIR, grouped, "FR_NIR")
    assert _found(_NIR, grouped.replace(" ", "."), "FR_NIR")


def test_prefilter_of_small_columns_keeps_every_entity() -> None:
    from charter_guardrails.checks.privacy.prefilter import PREFILTER_RE as _PREFILTER

    entities = [expected for _, _, expected in CASES if expected] + ["3 rue Paradis", "12 bis, avenue du Prado"]
    assert all(_PREFILTER.search(value) for value in entities)
    assert not any(_PREFILTER.search(t) for t in ["rien à signaler", "voirie", "3 fois rien"])


def _planned(text: str) -> int:
    """The vectorised plan code of one value (the path columns of 2,000+ distinct values take)."""
    return get_detector()._vector_plan([text])[0]


def test_every_pattern_has_a_vectorised_filter() -> None:
    detector = get_detector()
    assert all(f is not None for f in detector.filters), [
        c.pattern for (_, c, _), f in zip(detector._patterns, detector.filters, strict=True) if f is None
    ]


@pytest.mark.parametrize(("entity", "text", "expected"), CASES, ids=[_ids(c) for c in CASES])
def test_vectorised_plan_keeps_every_pattern_that_matches(entity: str, text: str, expected: str | None) -> None:
    detector = get_detector()
    code = _planned(text)
    for k, (_, compiled, _) in enumerate(detector._patterns):
        if compiled.search(text):
            assert code >> k & 1, (compiled.pattern, text)
    assert detector.pattern_hits(text, code=code) == detector.pattern_hits(text)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_vectorised_filter_accepts_whatever_the_python_pattern_matches(data: st.DataObject) -> None:
    """RE2 filters are over-approximations: Unicode digits and letters, Turkish i under IGNORECASE, look-arounds."""
    detector = get_detector()
    k = data.draw(st.integers(0, len(detector._patterns) - 1))
    compiled = detector._patterns[k][1]
    text = data.draw(st.from_regex(compiled))
    if compiled.search(text):  # hypothesis may not honour every look-around
        assert _planned(text) >> k & 1, (compiled.pattern, text)


@pytest.mark.parametrize(
    "text",
    [
        "12 İmpasse Dupont",
        "sécu 1 ٨٥ ١٢ ١٣ ١٢٣ ٤٥٦ ١٦",
        "écrire à josé.müller@exemple.fr",
        "FR7630006000011234567890189",
        "tél. 06\u00a012\u00a034\u00a056\u00a078",
    ],
)
def test_vectorised_filter_unicode_corner_cases(text: str) -> None:
    detector = get_detector()
    code = _planned(text)
    matched = [k for k, (_, compiled, _) in enumerate(detector._patterns) if compiled.search(text)]
    assert matched, text
    assert all(code >> k & 1 for k in matched), text


def test_re2_translation() -> None:
    import re

    from charter_guardrails.checks.privacy.prefilter import re2_superset

    assert re2_superset(r"(?<![\w])\d{2}(?!\d)", re.IGNORECASE) == r"(?i)\p{Nd}{2}"
    assert re2_superset(r"\bx[\w.]\s", 0) == r"x[\p{L}\p{N}_.][\t\n\x0b\f\r \x1c-\x1f\x{85}\p{Z}]"
    assert re2_superset(r"a[(?=]b(?=(c))d", 0) == r"a[(?=]bd"
    assert re2_superset("\\u00a0", 0) == r"\x{00a0}"
    assert re2_superset(r"\x41[^\]]", 0) == r"\x41[^\]]"
    for unsafe in (r"\W", r"\D+", r"(a)\1", r"\0", r"a{,3}", r"(?>ab)", r"a++", r"[[:alpha:]]", r"(?x) a b"):
        assert re2_superset(unsafe, 0) is None, unsafe
    assert re2_superset("a b", re.VERBOSE) is None
