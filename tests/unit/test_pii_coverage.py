"""Coverage beyond French identifiers: a table per entity (valid values, values whose check fails,
near misses), run through the scanner's detector and Presidio's analyzer; the policy switches
(national identifiers, default phone region); the birth-date column rule; the RE2 pre-filters of
the new patterns; and the verdict's mapping of the new entities."""

from __future__ import annotations

import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml
from charter_guardrails.checks.privacy.analyzer import get_analyzer
from charter_guardrails.checks.privacy.detector import get_detector
from charter_guardrails.checks.privacy.prefilter import PREFILTER_RE
from charter_guardrails.checks.privacy.recognizers import (
    NATIONAL_RECOGNIZERS,
    PhoneNumberRecognizer,
    RecognizerConfig,
    birth_date_finding,
    build_recognizers,
)
from charter_guardrails.checks.privacy.report import ScanOptions
from charter_guardrails.checks.privacy.scanner import scan_frame
from charter_guardrails.checks.privacy.verdict import allowed_set
from charter_guardrails.core.errors import ConfigError
from hypothesis import given, settings
from hypothesis import strategies as st

#: Every recognizer on: national identifiers of all four countries.
ALL = RecognizerConfig.of(sorted(NATIONAL_RECOGNIZERS))
#: National numbers read with a default region other than France.
BELGIUM = RecognizerConfig.of([], "BE")

# (entity, text, the substring found as the entity | None)
VALID: list[tuple[str, str, str]] = [
    ("IBAN_CODE", "IBAN DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00"),
    ("IBAN_CODE", "GB82WEST12345698765432", "GB82WEST12345698765432"),
    ("IBAN_CODE", "compte BE71 0961 2345 6769 chez nous", "BE71 0961 2345 6769"),
    ("IBAN_CODE", "ES7712341234161234567890", "ES7712341234161234567890"),
    ("IBAN_CODE", "NO9386011117947", "NO9386011117947"),
    ("CREDIT_CARD", "Visa 4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("CREDIT_CARD", "5555-5555-5555-4444", "5555-5555-5555-4444"),
    ("CREDIT_CARD", "2223 0000 4841 0010", "2223 0000 4841 0010"),
    ("CREDIT_CARD", "Amex 3782 822463 10005", "3782 822463 10005"),
    ("CREDIT_CARD", "carte bancaire 4970101234567893", "4970101234567893"),  # compact: the context word counts
    ("CREDIT_CARD", "6011 1111 1111 1117", "6011 1111 1111 1117"),
    ("CREDIT_CARD", "3530 1113 3330 0000", "3530 1113 3330 0000"),
    ("IP_ADDRESS", "connexion depuis 192.168.1.20.", "192.168.1.20"),
    ("IP_ADDRESS", "2001:db8::ff00:42:8329", "2001:db8::ff00:42:8329"),
    ("IP_ADDRESS", "2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:0db8:0000:0000:0000:ff00:0042:8329"),
    ("IP_ADDRESS", "::ffff:192.0.2.128", "192.0.2.128"),
    ("PHONE_NUMBER", "Brussels +32 2 555 12 12", "+32 2 555 12 12"),
    ("PHONE_NUMBER", "0032 470 12 34 56", "0032 470 12 34 56"),
    ("PHONE_NUMBER", "+32 (0)2 555 12 12", "+32 (0)2 555 12 12"),
    ("PHONE_NUMBER", "+41 44 668 18 00", "+41 44 668 18 00"),
    ("PHONE_NUMBER", "+4915123456789", "+4915123456789"),
    ("PHONE_NUMBER", "+1 (202) 555-0143", "+1 (202) 555-0143"),
    ("PHONE_NUMBER", "La Réunion +262 692 12 34 56", "+262 692 12 34 56"),
    ("PHONE_NUMBER", "+39 02 1234 5678", "+39 02 1234 5678"),
    ("DATE_OF_BIRTH", "Mme X, née le 12/03/1985 à Lyon", "née le 12/03/1985"),
    ("DATE_OF_BIRTH", "Né le 3 mars 1985", "Né le 3 mars 1985"),
    ("DATE_OF_BIRTH", "date de naissance : 1985-03-12", "date de naissance : 1985-03-12"),
    ("DATE_OF_BIRTH", "DOB 01.02.1970", "DOB 01.02.1970"),
    ("BE_NATIONAL_NUMBER", "numéro national 85.07.30-033.28", "85.07.30-033.28"),
    ("BE_NATIONAL_NUMBER", "85073003328", "85073003328"),
    ("BE_NATIONAL_NUMBER", "17 07 30 033 84", "17 07 30 033 84"),  # born in 2017: key computed on 2 + number
    ("ES_NIF", "DNI 12345678Z", "12345678Z"),
    ("ES_NIF", "12.345.678-Z", "12.345.678-Z"),
    ("ES_NIE", "NIE X1234567L", "X1234567L"),
    ("ES_NIE", "X-1234567-L", "X-1234567-L"),
    ("IT_FISCAL_CODE", "codice fiscale RSSMRA85T10A562S", "RSSMRA85T10A562S"),
    ("IT_FISCAL_CODE", "RCCMNL83S18D969H", "RCCMNL83S18D969H"),
    ("DE_TAX_ID", "Steuer-ID 36 574 261 809", "36 574 261 809"),  # needs its context word
    ("DE_TAX_ID", "IdNr 36574261809", "36574261809"),
]
# (entity, text, the look-alike): the pattern matches, the check fails
FUTURE_YEAR = datetime.date.today().year + 2  # still ahead on a run that crosses New Year's midnight
BAD: list[tuple[str, str, str]] = [
    ("IBAN_CODE", "IBAN DE88 3704 0044 0532 0130 00", "DE88 3704 0044 0532 0130 00"),  # mod 97
    ("IBAN_CODE", "BE41091811735141", "BE41091811735141"),  # Belgian national check digits
    ("CREDIT_CARD", "carte 4111 1111 1111 1112", "4111 1111 1111 1112"),  # Luhn
    ("CREDIT_CARD", "carte 6000 0000 0000 0007", "6000 0000 0000 0007"),  # Luhn-valid, no issuer range (60)
    ("IP_ADDRESS", "ip 256.1.1.1", "256.1.1.1"),
    ("IP_ADDRESS", "ip 01.2.3.4", "01.2.3.4"),  # leading zeros are ambiguous
    ("IP_ADDRESS", "1:2:3:4:5:6:7::8", "1:2:3:4:5:6:7::8"),
    ("PHONE_NUMBER", "call +44 6 12 34 56 78", "+44 6 12 34 56 78"),  # no such UK number
    ("PHONE_NUMBER", "+32 2 555 12 12 12", "+32 2 555 12 12 12"),  # too long
    ("DATE_OF_BIRTH", "né le 31/02/1985", "né le 31/02/1985"),
    ("DATE_OF_BIRTH", f"né le 01/01/{FUTURE_YEAR}", f"né le 01/01/{FUTURE_YEAR}"),  # in the future
    ("BE_NATIONAL_NUMBER", "85.07.30-033.29", "85.07.30-033.29"),
    ("BE_NATIONAL_NUMBER", "85.13.30-033.28", "85.13.30-033.28"),  # month 13
    ("ES_NIF", "DNI 12345678A", "12345678A"),
    ("ES_NIE", "NIE X1234567A", "X1234567A"),
    ("IT_FISCAL_CODE", "RSSMRA85T10A562T", "RSSMRA85T10A562T"),
    ("DE_TAX_ID", "Steuer-ID 36574261808", "36574261808"),
]
# (entity, text): the pattern does not even match
NEAR: list[tuple[str, str]] = [
    ("IBAN_CODE", "DE89 3704 0044"),  # too short
    ("IBAN_CODE", "de89370400440532013000"),  # IBANs are written in upper case
    ("IBAN_CODE", "FR7630006000011234567890189"),  # French: FR_IBAN's
    ("CREDIT_CARD", "EAN 4006381333931"),  # 13 digits
    ("CREDIT_CARD", "7111 1111 1111 1114"),  # no issuer starts with 7
    ("CREDIT_CARD", "3056 9309 0259 04"),  # 14-digit Diners: indistinguishable from a SIRET
    ("IP_ADDRESS", "12:30:45"),
    ("IP_ADDRESS", "00:1A:2B:3C:4D:5E"),  # a MAC address
    ("IP_ADDRESS", "version 1.2.3.4.5"),
    ("IP_ADDRESS", "v1.2.3"),
    ("PHONE_NUMBER", "+33 6 12 34 56 78"),  # French: FR_PHONE's
    ("PHONE_NUMBER", "06 12 34 56 78"),
    ("PHONE_NUMBER", "+32 12"),
    ("PHONE_NUMBER", "hausse de +12 %"),
    ("DATE_OF_BIRTH", "livré le 12/03/2024"),
    ("DATE_OF_BIRTH", "donné le 02/05/2021"),
    ("DATE_OF_BIRTH", "12/03/1985"),  # a date alone says nothing
    ("BE_NATIONAL_NUMBER", "85.07.30-033"),
    ("ES_NIF", "1234567Z"),
    ("ES_NIE", "W1234567L"),
    ("IT_FISCAL_CODE", "rssmra85t10a562s"),
    ("IT_FISCAL_CODE", "RSSMRA85T10A56S"),
    ("DE_TAX_ID", "06574261809"),  # starts with 0
]


def _found(text: str, entity: str, config: RecognizerConfig | None = ALL) -> list[str]:
    hits = get_detector(config).pattern_hits(text)
    return [text[h.start : h.end] for h in hits if h.entity_type == entity and not h.suspect and h.score >= 0.5]


def _matched(text: str, entity: str, config: RecognizerConfig | None = ALL) -> list[tuple[str, bool | None]]:
    """Each match of ``entity``'s patterns in ``text``, with its recognizer's check (before overlaps are resolved)."""
    return [
        (m.group(0), rec.is_valid(m.group(0)))
        for rec, compiled, _ in get_detector(config)._patterns
        if rec.supported_entities[0] == entity
        for m in compiled.finditer(text)
    ]


@pytest.mark.parametrize(("entity", "text", "expected"), VALID, ids=[f"{e}:{t}" for e, t, _ in VALID])
def test_valid_values_are_found_by_the_scanner_and_presidio(entity: str, text: str, expected: str) -> None:
    assert _found(text, entity) == [expected]
    results = get_analyzer(ALL).analyze(text=text, language="fr", entities=[entity], score_threshold=0.5)
    assert [text[r.start : r.end] for r in results] == [expected]


@pytest.mark.parametrize(("entity", "text", "lookalike"), BAD, ids=[f"{e}:{t}" for e, t, _ in BAD])
def test_failed_checks_are_suspects_not_findings(entity: str, text: str, lookalike: str) -> None:
    assert _found(text, entity) == []
    assert (lookalike, False) in _matched(text, entity)
    hits = get_detector(ALL).pattern_hits(text)
    assert hits
    assert all(h.suspect or h.score < 0.5 for h in hits)
    assert [r for r in get_analyzer(ALL).analyze(text=text, language="fr", entities=[entity])] == []


@pytest.mark.parametrize(("entity", "text"), NEAR, ids=[f"{e}:{t}" for e, t in NEAR])
def test_near_misses_are_not_found(entity: str, text: str) -> None:
    assert _matched(text, entity) == []
    assert _found(text, entity) == []


def test_national_identifiers_only_where_the_policy_enables_them() -> None:
    samples = {
        "BE_NATIONAL_NUMBER": "85.07.30-033.28",
        "ES_NIF": "12345678Z",
        "ES_NIE": "X1234567L",
        "IT_FISCAL_CODE": "RSSMRA85T10A562S",
        "DE_TAX_ID": "Steuer-ID 36574261809",
    }
    for entity, text in samples.items():
        assert _found(text, entity, None) == [], entity
        assert _found(text, entity, ALL), entity
    spanish = RecognizerConfig.of(["es"])
    assert {type(r).__name__ for r in get_detector(spanish).recognizers} >= {"EsNifRecognizer", "EsNieRecognizer"}
    assert _found(samples["ES_NIF"], "ES_NIF", spanish)
    assert _found(samples["IT_FISCAL_CODE"], "IT_FISCAL_CODE", spanish) == []
    with pytest.raises(ConfigError, match="national_identifiers may name BE, DE, ES, IT"):
        build_recognizers(RecognizerConfig.of(["PT"]))


def test_context_words_raise_weak_formats_and_column_names_count() -> None:
    detector = get_detector(ALL)
    assert _found("4970101234567893", "CREDIT_CARD") == []  # Luhn alone: one random number in ten passes
    boosted = detector.context_entities("numero_carte_bancaire")
    assert "CREDIT_CARD" in boosted
    assert [h.entity_type for h in detector.pattern_hits("4970101234567893", boosted) if h.score >= 0.5] == [
        "CREDIT_CARD"
    ]
    assert _found("36574261809", "DE_TAX_ID") == []
    assert "DE_TAX_ID" in detector.context_entities("steuer_id")


def test_default_phone_region_reads_national_numbers() -> None:
    # with France as default region, national numbers are FR_PHONE's only
    assert _matched("02 555 12 12", "PHONE_NUMBER", None) == []
    # with Belgium, a Belgian national number is checked against Belgium's plan, and needs a context word
    assert _matched("02 555 12 12", "PHONE_NUMBER", BELGIUM) == [("02 555 12 12", True)]
    assert _found("02 555 12 12", "PHONE_NUMBER", BELGIUM) == []
    assert _found("gsm 02 555 12 12", "PHONE_NUMBER", BELGIUM) == ["02 555 12 12"]
    assert _found("+32 2 555 12 12", "PHONE_NUMBER", BELGIUM) == ["+32 2 555 12 12"]
    with pytest.raises(ConfigError, match=r"privacy\.phone_region"):
        PhoneNumberRecognizer(default_region="XX")


def _birth_dates(n: int, start_years: int = 20, span_years: int = 60) -> list[str]:
    first = datetime.date.today() - datetime.timedelta(days=365 * (start_years + span_years))
    step = max(1, (365 * span_years) // n)
    return [(first + datetime.timedelta(days=k * step)).isoformat() for k in range(n)]


def test_a_birth_date_column_is_found_by_its_name_or_by_its_values() -> None:
    dates = _birth_dates(200)
    recent = [(datetime.date.today() - datetime.timedelta(days=k)).strftime("%d/%m/%Y") for k in range(200)]
    frame = pd.DataFrame(
        {
            "date_naissance": dates,  # the name says it
            "dateNaissance": [d.replace("-", "") for d in dates],  # YYYYMMDD
            "date_inscription": dates,  # the values say it: adults' birth dates over many days
            "dob": recent,  # the name says it, whatever the age
            "date_demande": recent,  # recent dates: not birth dates of adults
            "date_evenement": [dates[0]] * 200,  # a single day
            "naissance_lieu": ["Marseille"] * 200,  # the name says birth, the values are not dates
        }
    )
    report = scan_frame(frame, ScanOptions(mode="exhaustive"))
    named = report.column("date_naissance").finding("DATE_OF_BIRTH")
    assert named is not None
    assert named.mean_score == pytest.approx(0.9)
    assert named.count == 200
    assert named.masked_examples
    assert all("*" in e and e not in dates for e in named.masked_examples)
    assert report.column("dateNaissance").finding("DATE_OF_BIRTH") is not None
    by_values = report.column("date_inscription").finding("DATE_OF_BIRTH")
    assert by_values is not None
    assert by_values.mean_score == pytest.approx(0.6)
    assert report.column("dob").entity_types() == {"DATE_OF_BIRTH"}
    for column in ("date_demande", "date_evenement", "naissance_lieu"):
        assert "DATE_OF_BIRTH" not in report.column(column).entity_types(), column
    strict = scan_frame(frame[["date_inscription"]], ScanOptions(mode="exhaustive", min_score=0.7))
    assert strict.column("date_inscription").findings == []
    assert [s.entity_type for s in strict.column("date_inscription").suspects] == ["DATE_OF_BIRTH"]


def test_the_adults_rule_needs_every_date_in_range() -> None:
    dates = _birth_dates(100)
    counts = [1] * 100
    assert birth_date_finding("col", dates, counts, 100) is not None
    child = (datetime.date.today() - datetime.timedelta(days=365 * 5)).isoformat()
    assert birth_date_finding("col", [*dates, child], [*counts, 1], 101) is None
    assert birth_date_finding("date_de_naissance", [*dates, child], [*counts, 1], 101) is not None
    assert birth_date_finding("col", dates[:20], counts[:20], 20) is None  # too few distinct days


def test_policy_switches_reach_the_scan(tmp_path: Path) -> None:
    from charter_guardrails.core.errors import PolicyError
    from charter_guardrails.core.policy import UseCasePolicy

    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "include" / "policies" / "citizen_requests.yaml").read_text(encoding="utf-8"))
    data.setdefault("privacy", {}).update({"national_identifiers": ["BE", "ES"], "phone_region": "BE"})
    path = tmp_path / "citizen_requests.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    policy = UseCasePolicy.from_file(path)
    options = ScanOptions.from_policy(policy.privacy)
    assert options.national_identifiers == frozenset({"BE", "ES"})
    assert options.phone_region == "BE"
    frame = pd.DataFrame({"numero": ["85.07.30-033.28", "12345678Z"] * 10})
    assert scan_frame(frame, options).column("numero").entity_types() == {"BE_NATIONAL_NUMBER", "ES_NIF"}
    assert scan_frame(frame, ScanOptions()).column("numero").entity_types() == set()
    for key, value in (("national_identifiers", ["PT"]), ("phone_region", "XX"), ("phone_region", "be")):
        data["privacy"] = {key: value}
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        with pytest.raises(PolicyError):
            UseCasePolicy.from_file(path)


def test_verdict_maps_the_new_entities_to_declared_categories() -> None:
    assert "DATE_OF_BIRTH" in allowed_set(["DATE_TIME"])
    assert "ES_NIF" in allowed_set(["ES_DNI"])
    assert "IBAN_CODE" in allowed_set(["FR_IBAN"])
    assert "PHONE_NUMBER" in allowed_set(["FR_PHONE"])
    assert "FR_PHONE" in allowed_set(["PHONE_NUMBER"])
    assert "CREDIT_CARD" not in allowed_set(["FR_IBAN", "IBAN_CODE"])
    assert "BE_NATIONAL_NUMBER" not in allowed_set(["FR_NIR"])


def test_every_new_pattern_has_a_vectorised_filter() -> None:
    for config in (ALL, BELGIUM):
        detector = get_detector(config)
        assert all(f is not None for f in detector.filters), config


def _all_patterns() -> list[tuple[RecognizerConfig, int]]:
    return [(config, k) for config in (ALL, BELGIUM) for k in range(len(get_detector(config)._patterns))]


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_both_prefilters_accept_whatever_a_pattern_matches(data: st.DataObject) -> None:
    """The combined pre-filter of small columns and each pattern's RE2 filter of large ones let through
    every string a pattern matches: the fast path never skips a value it should read."""
    config, k = data.draw(st.sampled_from(_all_patterns()))
    detector = get_detector(config)
    compiled = detector._patterns[k][1]
    text = data.draw(st.from_regex(compiled))
    if compiled.search(text):  # hypothesis may not honour every look-around
        assert PREFILTER_RE.search(text), (compiled.pattern, text)
        assert detector._vector_plan([text])[0] >> k & 1, (compiled.pattern, text)


@pytest.mark.parametrize(("entity", "text", "expected"), VALID, ids=[f"{e}:{t}" for e, t, _ in VALID])
def test_both_prefilters_keep_the_valid_values(entity: str, text: str, expected: str) -> None:
    detector = get_detector(ALL)
    assert PREFILTER_RE.search(text)
    code = detector._vector_plan([text])[0]
    assert detector.pattern_hits(text, code=code) == detector.pattern_hits(text)
