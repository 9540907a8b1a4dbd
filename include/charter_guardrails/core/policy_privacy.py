"""The ``privacy:`` section of a use-case policy: how the personal-data scan reads a dataset.

Kept apart from :mod:`.policy_models` (re-exported there and by :mod:`.policy`) so that each module stays small.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from charter_guardrails.core.policy_models import PolicySection

#: Rows of a partition of the personal-data scan when the policy sets no ``privacy.partition_rows``: a dataset
#: with more rows is scanned partition by partition (one mapped task per partition in the DAGs).
DEFAULT_PARTITION_ROWS = 1_000_000


class PrivacyPolicy(PolicySection):
    #: ``sampling`` (with a stated detection guarantee) or ``exhaustive`` (every distinct value).
    scan_mode: Literal["sampling", "exhaustive"] = "sampling"
    #: Minimum Presidio score to count a finding.
    min_score: float = Field(default=0.5, ge=0, le=1)
    #: In sampling mode: detect a PII rate of at least ``min_detectable_rate`` with ``confidence``.
    min_detectable_rate: float = Field(default=0.01, gt=0, lt=1)
    confidence: float = Field(default=0.99, gt=0, lt=1)
    #: National identifiers of these countries are looked for besides the French ones (off by default:
    #: their digits look like other references): BE national number, DE tax id, ES DNI/NIE, IT codice fiscale.
    national_identifiers: list[Literal["BE", "DE", "ES", "IT"]] = Field(default_factory=list)
    #: Region of phone numbers written without a country code (ISO 3166 alpha-2, as phonenumbers knows it).
    phone_region: str = Field(default="FR", pattern=r"^[A-Z]{2}$")
    #: A dataset with more rows is scanned in partitions of this many rows, mapped over the workers, and their
    #: findings merged into one result (default :data:`DEFAULT_PARTITION_ROWS`). In sampling mode each partition
    #: draws its share of the sample (stratified, proportional): the detection guarantee holds for the whole.
    partition_rows: int | None = Field(default=None, gt=0)

    @property
    def rows_per_partition(self) -> int:
        """``partition_rows``, else the project default."""
        return self.partition_rows or DEFAULT_PARTITION_ROWS

    @field_validator("phone_region")
    @classmethod
    def _known_phone_region(cls, value: str) -> str:
        import phonenumbers

        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r}; use a region code phonenumbers knows, e.g. FR, BE, DE")
        return value
