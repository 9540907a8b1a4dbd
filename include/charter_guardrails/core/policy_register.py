"""The ``register`` section of a use-case policy: what the DPO's Art. 30 register entry needs that the policy lacks.

Part of the policy schema (:class:`~charter_guardrails.core.policy.UseCasePolicy` assembles it); kept apart from
:mod:`charter_guardrails.core.policy_models`, which holds the sections about data and models. GDPR Art. 30(1)
asks for (a) the controller, its representative and the DPO, (b) the purposes, (c) the categories of data
subjects and of personal data, (d) the recipients, (e) the transfers to third countries and their safeguards,
(f) the time limits for erasure and (g) the security measures. The policy already holds (b), (c), (f), the DPO
and the technical measures; this section holds the rest.

Every field is optional so that older policies still load, and the DPO documents
(:mod:`charter_guardrails.reporting.dpo_register`) report a field that is not declared (``None``) as missing:
never invented. A declared empty list is a statement: ``transfers: []`` says "no transfer outside the EU",
``recipients: []`` says "nobody but the controller receives the data".
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from charter_guardrails.core.policy_models import Contact, PolicySection

#: ISO 3166-1 alpha-2 codes of the European Economic Area: a transfer "outside the EU" cannot go there.
EEA_COUNTRIES = frozenset(
    {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE"}
    | {"IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK"}
)

CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Text = Annotated[str, Field(min_length=1, max_length=500)]


class Controller(PolicySection):
    """The controller (GDPR Art. 30(1)(a)): the organisation and the person who represents it."""

    organisation: Text
    #: Its legal representative, e.g. the President of the Métropole.
    representative: Contact
    #: The postal address of the controller, as published in the register.
    address: Text | None = None


class RecipientCategory(StrEnum):
    """Who a recipient is to the controller (GDPR Art. 4(9) and 28)."""

    #: a service of the controller itself (the agents who use the system)
    INTERNAL_SERVICE = "internal_service"
    #: a processor acting on the controller's instructions (Art. 28): it needs a contract
    PROCESSOR = "processor"
    #: anyone else the data is disclosed to
    THIRD_PARTY = "third_party"


class Recipient(PolicySection):
    """One recipient, or category of recipients, of the personal data (Art. 30(1)(d))."""

    name: Text
    category: RecipientCategory
    #: What it receives the data for, in one sentence.
    purpose: Text | None = None


class TransferSafeguard(StrEnum):
    """The ground of a transfer outside the EU (GDPR Chapter V)."""

    ADEQUACY_DECISION = "adequacy_decision"  # Art. 45
    STANDARD_CONTRACTUAL_CLAUSES = "standard_contractual_clauses"  # Art. 46(2)(c)
    BINDING_CORPORATE_RULES = "binding_corporate_rules"  # Art. 47
    DEROGATION = "derogation"  # Art. 49


class Transfer(PolicySection):
    """One transfer of personal data to a third country or an international organisation (Art. 30(1)(e))."""

    country: CountryCode
    recipient: Text
    safeguard: TransferSafeguard
    #: Where the safeguard is documented (the clauses signed, the derogation's justification).
    documentation: Text | None = None

    @model_validator(mode="after")
    def _outside_the_eea(self) -> Transfer:
        if self.country in EEA_COUNTRIES:
            raise ValueError(f"country {self.country} is in the EEA: a transfer inside it is not a third-country one")
        return self


class ProcessorContract(PolicySection):
    """The contract that binds a processor (GDPR Art. 28(3))."""

    #: The name of a recipient of category ``processor``.
    processor: Text
    #: The contract's reference, e.g. ``marché 2025-DATA-07, CCAP art. 14``.
    contract_ref: Text
    #: Whether the contract holds the clauses Art. 28(3) requires (instructions, confidentiality, security,
    #: sub-processors, assistance, deletion or return, audits).
    art28_clauses: bool
    signed_on: date | None = None


class RegisterPolicy(PolicySection):
    """What the Art. 30 register entry and the impact assessment need beyond the rest of the policy.

    ``None`` (the key left out) is "not declared" and shows as missing in the DPO documents; an empty list
    is a declaration that there is none.
    """

    #: The reference of the entry in the controller's register, e.g. ``REG-2026-014``.
    entry_ref: Text | None = None
    controller: Controller | None = None
    #: Joint controllers (Art. 26), by name; ``[]``: none.
    joint_controllers: list[Text] | None = None
    recipients: list[Recipient] | None = None
    #: Transfers outside the EU; ``[]``: none.
    transfers: list[Transfer] | None = None
    processor_contracts: list[ProcessorContract] | None = None
    #: Where the personal data comes from (the form, the phone platform…), for the register and the AIPD's context.
    data_sources: list[Text] | None = None
    #: The organisational security measures (Art. 32) that no software can show: training, authorisation
    #: procedure, confidentiality undertakings.
    organisational_measures: list[Text] | None = None

    @model_validator(mode="after")
    def _contracts_name_processors(self) -> RegisterPolicy:
        if self.processor_contracts is None or self.recipients is None:
            return self
        processors = {r.name for r in self.recipients if r.category is RecipientCategory.PROCESSOR}
        unknown = sorted({c.processor for c in self.processor_contracts} - processors)
        if unknown:
            raise ValueError(
                f"processor_contracts name {unknown}, which are not recipients of category processor: "
                "list them in recipients"
            )
        return self

    def processors_without_contract(self) -> list[str]:
        """Recipients of category processor that no declared contract covers (Art. 28(3)); empty when unknown."""
        if self.recipients is None:
            return []
        covered = {c.processor for c in self.processor_contracts or []}
        return [r.name for r in self.recipients if r.category is RecipientCategory.PROCESSOR and r.name not in covered]


__all__ = [
    "EEA_COUNTRIES",
    "Controller",
    "ProcessorContract",
    "Recipient",
    "RecipientCategory",
    "RegisterPolicy",
    "Transfer",
    "TransferSafeguard",
]
