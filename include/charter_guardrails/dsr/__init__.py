"""Data-subject requests (GDPR Art. 15 and 17): where a person's data lives, and erasing it.

:func:`find` searches every use case's files and pseudonymised copies for one identifier (e-mail, phone,
NIR, IBAN or name); :func:`erase` removes the person's rows from them, re-signs the registered manifests
and records the erasure in the audit chain with the model versions trained on the person's data. Neither
ever writes the searched value: records carry its keyed hash. See ``docs/data_subject_requests.md``.
"""

from charter_guardrails.dsr.erase import ErasureResult, erase
from charter_guardrails.dsr.find import SearchResult, find
from charter_guardrails.dsr.identifiers import Identifier, IdentifierType, parse_identifier

__all__ = ["ErasureResult", "Identifier", "IdentifierType", "SearchResult", "erase", "find", "parse_identifier"]
