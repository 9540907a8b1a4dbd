"""The contract every check shares: :class:`CheckResult`.

A check is a plain function of (policy, data, context) that returns a ``CheckResult``.
Bad *data* is a verdict, never an exception. The result is JSON-serialisable because it
travels to XCom, the ledger and the governance view; ``evidence`` must never carry a raw
personal value (counts, masked examples or keyed hashes only).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from charter_guardrails.core.catalogue import CheckName, spec_of
from charter_guardrails.core.evidence import Evidence
from charter_guardrails.core.json_values import json_safe
from charter_guardrails.core.messages import Message, render_summary


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"
    FAIL = "fail"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


#: Engagement identifiers of the charter, ``<principle>.<n>``.
PRINCIPLES = ("transparence", "equite", "maitrise_humaine", "durabilite", "surete", "proportionnalite")


class CheckResult(BaseModel):
    """The outcome of one guardrail check on one dataset.

    :param check: the check's name in the catalogue, e.g. ``CheckName.INTEGRITY``.
    :param verdict: pass, warn or fail.
    :param severity: how bad a failure is; only used to rank and route.
    :param engagements: charter engagements the check serves, e.g. ``["surete.2"]``.
    :param summary: one human sentence without personal values; the English rendering of ``message`` when the
        check gives one (and may then leave ``summary`` out).
    :param message: the summary as a message id with parameters (:mod:`charter_guardrails.core.messages`), so that
        it renders in French; ``None`` for a free-text summary.
    :param metrics: named numbers.
    :param evidence: JSON-safe details that fit the check's evidence model; never a raw personal value.
        An empty mapping means the check recorded none (nothing to compare, or a report-only run).
    :param dataset: the dataset id, if the check is about one dataset.
    :param report_path: where a longer report was written, if any.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    check: CheckName
    verdict: Verdict
    severity: Severity = Severity.INFO
    engagements: list[str] = Field(default_factory=list)
    summary: str = ""
    message: Message | None = None
    metrics: dict[str, float | int | None] = Field(default_factory=dict)
    evidence: dict[str, Any] = Field(default_factory=dict)
    dataset: str | None = None
    report_path: str | None = None

    @field_validator("engagements")
    @classmethod
    def _known_principles(cls, value: list[str]) -> list[str]:
        for engagement in value:
            principle, _, number = engagement.partition(".")
            if principle not in PRINCIPLES or not number.isdigit():
                raise ValueError(
                    f"unknown charter engagement {engagement!r}; "
                    f"expected <principle>.<n> with principle in {PRINCIPLES}"
                )
        return value

    @field_validator("metrics", "evidence", mode="before")
    @classmethod
    def _makejson_safe(cls, value: Any) -> Any:
        return json_safe(value) if value is not None else {}

    @model_validator(mode="before")
    @classmethod
    def _summary_from_message(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("summary") and data.get("message") is not None:
            message = data["message"]
            message = message if isinstance(message, Message) else Message.from_json_dict(message)
            return {**data, "summary": message.english}
        return data

    @model_validator(mode="after")
    def _has_summary(self) -> CheckResult:
        if not self.summary:
            raise ValueError(f"a result of check {self.check} needs a summary or a message")
        return self

    @property
    def message_id(self) -> str | None:
        return self.message.msgid if self.message else None

    @property
    def message_params(self) -> dict[str, Any]:
        return dict(self.message.params) if self.message else {}

    def summary_in(self, lang: str) -> str:
        """The summary in ``lang`` (the English ``summary`` when the message is unknown to that catalogue)."""
        return render_summary(self.summary, self.message_id, self.message_params, lang)

    @model_validator(mode="after")
    def _evidence_fits_its_model(self) -> CheckResult:
        # Validated, not replaced: the evidence stays the dict the check wrote, so XCom and the ledger are unchanged.
        if self.evidence:
            model = spec_of(self.check).evidence_model
            try:
                model.model_validate(self.evidence)
            except ValidationError as exc:
                raise ValueError(f"the evidence of check {self.check} does not fit {model.__name__}: {exc}") from None
        return self

    def typed_evidence(self) -> Evidence | None:
        """The evidence as its check's model (e.g. :class:`~charter_guardrails.core.evidence.DriftEvidence`);
        ``None`` when the check recorded none."""
        if not self.evidence:
            return None
        return spec_of(self.check).evidence_model.model_validate(self.evidence)

    @property
    def failed(self) -> bool:
        return self.verdict is Verdict.FAIL

    def to_json_dict(self) -> dict[str, Any]:
        """A plain dict, safe for XCom and ``json.dumps``."""
        return cast("dict[str, Any]", json.loads(self.model_dump_json()))

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls.model_validate(data)


#: ``evidence`` key of a result whose report could not be written (see :func:`with_report_error`).
REPORT_ERROR = "report_error"


def with_report_error(result: CheckResult, report: str, folder: object, exc: BaseException) -> CheckResult:
    """``result`` without its report, saying which report could not be written where, and why (never a data value)."""
    cause: BaseException | None = exc
    while cause is not None and not (isinstance(cause, OSError) and cause.strerror):
        cause = cause.__cause__ or cause.__context__  # libraries (Great Expectations) wrap the OSError
    reason = cause.strerror if isinstance(cause, OSError) else f"{type(exc).__name__}: {exc}"
    message = f"the {report} could not be written to {folder}: {reason}"
    return CheckResult.model_validate(
        {**result.model_dump(), "report_path": None, "evidence": {**result.evidence, REPORT_ERROR: message}}
    )


def worst(verdicts: list[Verdict]) -> Verdict:
    """The worst verdict of a list (fail > warn > pass); pass for an empty list."""
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.WARN in verdicts:
        return Verdict.WARN
    return Verdict.PASS
