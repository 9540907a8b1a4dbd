"""The scanner's fast path and Presidio's ``AnalyzerEngine`` agree, entity by entity, on a corpus of
French and foreign values (``charter_demo.pii_corpus``: valid values built with python-stdnum,
phonenumbers and ``ipaddress``, values with a wrong check, near misses).

Both sides run the same recognizers (``build_recognizers`` with every national identifier on); the
corpus holds single values without context words, so no NER is involved. The fast path is run the
way the scanner runs it: through the combined pre-filter (``detect_values``) and through the
vectorised RE2 plan of large columns.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from charter_demo.pii_corpus import NATIONAL_IDENTIFIERS, CorpusValue, make_corpus
from charter_guardrails.checks.privacy.analyzer import get_analyzer
from charter_guardrails.checks.privacy.detector import get_detector
from charter_guardrails.checks.privacy.recognizers import RecognizerConfig, build_recognizers
from charter_guardrails.checks.privacy.report import Hit
from charter_guardrails.checks.privacy.scanner import detect_values

CONFIG = RecognizerConfig.of(NATIONAL_IDENTIFIERS)
THRESHOLD = 0.5
CORPUS = make_corpus()
NEW_ENTITIES = {
    "IBAN_CODE",
    "CREDIT_CARD",
    "IP_ADDRESS",
    "PHONE_NUMBER",
    "DATE_OF_BIRTH",
    "BE_NATIONAL_NUMBER",
    "ES_NIF",
    "ES_NIE",
    "IT_FISCAL_CODE",
    "DE_TAX_ID",
}


def _found(hits: list[Hit]) -> set[str]:
    return {h.entity_type for h in hits if not h.suspect and h.score >= THRESHOLD}


@pytest.fixture(scope="module")
def presidio() -> list[list[Any]]:
    """Presidio's results for each corpus value, every score above 0 (a failed check scores 0 and is dropped)."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    registry = RecognizerRegistry(supported_languages=["fr"])
    for recognizer in build_recognizers(CONFIG):
        registry.add_recognizer(recognizer)
    engine = AnalyzerEngine(nlp_engine=get_analyzer().nlp_engine, registry=registry, supported_languages=["fr"])
    return [engine.analyze(text=c.value, language="fr", score_threshold=0.0) for c in CORPUS]


@pytest.fixture(scope="module")
def fast() -> list[list[Hit]]:
    """The scanner's hits for each corpus value, through the combined pre-filter."""
    hits = detect_values([c.value for c in CORPUS], "structured", config=CONFIG)
    assert len(hits) == len(CORPUS)
    return hits


def test_corpus_is_large_mixed_and_labelled() -> None:
    kinds = Counter(c.kind for c in CORPUS)
    assert len(CORPUS) >= 500
    assert kinds["valid"] >= 250, kinds
    assert kinds["bad"] >= 100, kinds
    assert kinds["near"] >= 50, kinds
    assert kinds["weak"] >= 30, kinds
    per_entity = Counter(c.entity for c in CORPUS if c.kind in ("valid", "weak"))
    assert all(per_entity[e] >= 8 for e in NEW_ENTITIES), per_entity
    assert {e for e in per_entity if e and e.startswith("FR_")} >= {"FR_NIR", "FR_SIRET", "FR_PHONE", "FR_IBAN"}
    assert len({c.value for c in CORPUS}) == len(CORPUS)


def test_fast_path_and_presidio_find_the_same_entities_in_every_value(
    fast: list[list[Hit]], presidio: list[list[Any]]
) -> None:
    disagreements = [
        (c.value, sorted(_found(hits)), sorted({r.entity_type for r in results if r.score >= THRESHOLD}))
        for c, hits, results in zip(CORPUS, fast, presidio, strict=True)
        if _found(hits) != {r.entity_type for r in results if r.score >= THRESHOLD}
    ]
    assert disagreements == []


def test_both_find_exactly_the_labelled_entities(fast: list[list[Hit]]) -> None:
    wrong = [
        (c.kind, c.value, c.expected, _found(h)) for c, h in zip(CORPUS, fast, strict=True) if _found(h) != c.expected
    ]
    assert wrong == []


def test_the_vectorised_plan_of_large_columns_gives_the_same_hits(fast: list[list[Hit]]) -> None:
    detector = get_detector(CONFIG)
    values = [c.value for c in CORPUS]
    plan = detector._vector_plan(values)
    assert detector.planned_hits(values, plan, frozenset()) == fast


def _rejected(value: str, entity: str) -> bool:
    """Whether a pattern of ``entity`` matches ``value`` and its recognizer's check rejects the match:
    a suspect for the scanner before overlapping hits are resolved."""
    return any(
        rec.supported_entities[0] == entity and rec.is_valid(m.group(0)) is False
        for rec, compiled, _ in get_detector(CONFIG)._patterns
        for m in compiled.finditer(value)
    )


def test_failed_checks_are_suspects_for_the_scanner_and_dropped_by_presidio(
    fast: list[list[Hit]], presidio: list[list[Any]]
) -> None:
    bad = [(c, h, r) for c, h, r in zip(CORPUS, fast, presidio, strict=True) if c.kind == "bad"]
    assert len(bad) >= 100
    for corpus_value, hits, results in bad:
        entity = corpus_value.entity
        assert entity not in _found(hits), corpus_value
        assert _rejected(corpus_value.value, entity), corpus_value
        # what the column report lists as suspects: failed checks, or weak formats shadowing them (a DNI with a
        # wrong letter is also a 9-character CNI look-alike scoring 0.25)
        assert hits, corpus_value
        assert all(h.suspect or h.score < THRESHOLD for h in hits), corpus_value
        assert entity not in {r.entity_type for r in results}, corpus_value


def test_weak_formats_score_under_the_threshold_on_both_sides(fast: list[list[Hit]], presidio: list[list[Any]]) -> None:
    weak: list[tuple[CorpusValue, list[Hit], list[Any]]] = [
        (c, h, r) for c, h, r in zip(CORPUS, fast, presidio, strict=True) if c.kind == "weak"
    ]
    for corpus_value, hits, results in weak:
        ours = [h.score for h in hits if h.entity_type == corpus_value.entity and not h.suspect]
        theirs = [r.score for r in results if r.entity_type == corpus_value.entity]
        assert ours, corpus_value
        assert theirs, corpus_value
        assert max(ours) == pytest.approx(max(theirs)), corpus_value
        assert max(ours) < THRESHOLD, corpus_value


def test_near_misses_are_found_by_neither(fast: list[list[Hit]], presidio: list[list[Any]]) -> None:
    for c, hits, results in zip(CORPUS, fast, presidio, strict=True):
        if c.kind == "near":
            assert not _found(hits), c
            assert not [r for r in results if r.score >= THRESHOLD], c


@pytest.mark.parametrize("config", [None, CONFIG, RecognizerConfig.of(["ES"], "BE")], ids=["default", "all", "es-be"])
def test_the_analyzer_is_configured_with_the_scanner_recognizers(config: RecognizerConfig | None) -> None:
    analyzer = get_analyzer(config)
    names = sorted(type(r).__name__ for r in analyzer.registry.recognizers if type(r).__name__ != "SpacyRecognizer")
    assert names == sorted(type(r).__name__ for r in get_detector(config).recognizers)
    assert {"CreditCardRecognizer", "IpAddressRecognizer", "IbanRecognizer", "PhoneNumberRecognizer"} <= set(names)
    patterns = {
        (type(r).__name__, p.regex)
        for r in analyzer.registry.recognizers
        for p in getattr(r, "patterns", [])
        if r.supported_language == "fr"
    }
    assert patterns == {(type(r).__name__, c.pattern) for r, c, _ in get_detector(config)._patterns}
