"""EMAIL_ADDRESS for French text, with tldextract kept offline.

Presidio's ``EmailRecognizer`` calls the module-level ``tldextract.extract``, which fetches the
Public Suffix List over HTTP on first use. This subclass validates with an extractor built on
tldextract's bundled snapshot (``suffix_list_urls=()``), so no request is ever attempted.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from presidio_analyzer.predefined_recognizers import EmailRecognizer

if TYPE_CHECKING:
    from tldextract import TLDExtract


@functools.lru_cache(maxsize=1)
def offline_tld_extractor() -> TLDExtract:
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


class FrEmailRecognizer(EmailRecognizer):
    ENTITY = "EMAIL_ADDRESS"
    #: A domain under a known public suffix is what makes it an address; Presidio then scores 1.0.
    STRONG_CHECKSUM = True
    # Presidio's EmailRecognizer declares CONTEXT as an instance attribute: a ClassVar cannot override it.
    CONTEXT = ["courriel", "email", "e-mail", "mail", "adresse électronique", "mél", "écrire"]  # noqa: RUF012

    def __init__(self, supported_language: str = "fr") -> None:
        super().__init__(context=list(self.CONTEXT), supported_language=supported_language, name=type(self).__name__)

    def validate_result(self, pattern_text: str) -> bool:
        extract = offline_tld_extractor()
        return bool(extract(pattern_text).fqdn)

    def is_valid(self, text: str) -> bool | None:
        return self.validate_result(text)
