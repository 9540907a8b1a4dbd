"""One rendering path: templates as files, one French vocabulary, values escaped at the edge.

Markdown is checked by parsing it back (markdown-it-py): a value must stay inside its table cell,
and no value may turn into a link.
"""

from __future__ import annotations

import html
from email.message import EmailMessage
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest
from charter_guardrails.core.results import CheckResult, Verdict
from charter_guardrails.decision.gate import GateDecision, GateOutcome
from charter_guardrails.incidents.messages import IDEMPOTENCY_HEADER, Alert, email_message, html_body, text_body
from charter_guardrails.reporting import vocabulary
from charter_guardrails.reporting.brief import render_approval_brief
from charter_guardrails.reporting.privacy_report import render_privacy_report
from charter_guardrails.reporting.rendering import build_environment, md_cell, md_code, md_fence, render
from markdown_it import MarkdownIt

HOSTILE = "a|b](http://x)"
HOSTILE_VALUES = [
    HOSTILE,
    "[clic](http://evil.example)",
    "![img](http://evil.example/x.png)",
    "`code` <b>gras</b>",
    "x\ny\\|z",
]


def _markdown_tokens(text: str) -> list[Any]:
    return MarkdownIt("commonmark").enable("table").parse(text)


def _inline_types(tokens: list[Any]) -> set[str]:
    return {child.type for token in tokens if token.type == "inline" for child in token.children or []}


def _table_rows(tokens: list[Any]) -> list[list[str]]:
    """The text of every cell, row by row (header included)."""
    rows: list[list[str]] = []
    for i, token in enumerate(tokens):
        if token.type == "tr_open":
            rows.append([])
        elif token.type in ("td_open", "th_open"):
            children = tokens[i + 1].children or []
            rows[-1].append("".join(c.content for c in children if c.type in ("text", "text_special", "code_inline")))
    return rows


def _rendered_text(source: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(source)


def test_a_markdown_cell_stays_one_cell_and_never_a_link() -> None:
    table = "| a | b |\n|---|---|\n" + "".join(f"| {md_cell(v)} | {md_code(v)} |\n" for v in HOSTILE_VALUES)
    tokens = _markdown_tokens(table)
    rows = _table_rows(tokens)
    assert len(rows) == 1 + len(HOSTILE_VALUES), rows
    assert all(len(row) == 2 for row in rows), rows
    assert not {"link_open", "image", "html_inline"} & _inline_types(tokens)
    assert "<b>" not in _rendered_text(table)
    assert md_cell(HOSTILE) == "a\\|b\\](http://x)"
    assert md_cell(None) == "—"
    assert md_fence("```\ninside") == "````\n```\ninside\n````"


def test_strict_undefined_raises_on_a_missing_variable() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("approval_brief.md", title="t")
    env = build_environment(jinja2.DictLoader({"page.html": "<p>{{ value }}</p>", "note.md": "{{ value }}"}))
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("page.html").render()
    # .html is autoescaped, Markdown is not (it goes through the md filter instead)
    assert env.get_template("page.html").render(value="<i>") == "<p>&lt;i&gt;</p>"
    assert env.get_template("note.md").render(value="<i>") == "<i>"


def _results() -> list[CheckResult]:
    return [
        CheckResult(check="declaration", verdict=Verdict.PASS, summary=f"colonne {HOSTILE} déclarée", dataset=HOSTILE),
        CheckResult(check="fairness", verdict=Verdict.FAIL, summary="écart [voir](http://evil.example) trop grand"),
        CheckResult(check="performance", verdict=Verdict.WARN, summary="gain faible", metrics={HOSTILE: 0.5}),
    ]


def test_the_brief_table_holds_a_hostile_column_name_without_breaking_or_linking() -> None:
    policy = SimpleNamespace(title=f"Titre {HOSTILE}", purpose="Finalité\n| injectée |")
    decision = GateDecision(outcome=GateOutcome.NEEDS_OVERRIDE, failed=["fairness"], overridable=["fairness"])
    brief = render_approval_brief(policy, _results(), decision)  # type: ignore[arg-type]
    tokens = _markdown_tokens(brief)
    rows = _table_rows(tokens)
    assert rows[0] == ["garde-fou", "jeu de données", "verdict", "résumé"]
    assert len(rows) == 4, rows
    assert all(len(row) == 4 for row in rows), rows
    assert rows[1][1] == HOSTILE
    assert rows[1][3] == f"colonne {HOSTILE} déclarée"
    assert not {"link_open", "image", "html_inline"} & _inline_types(tokens)
    # one vocabulary: the brief says what the model card and the governance view say
    assert [row[2] for row in rows[1:]] == ["✅ conforme", "❌ non conforme", "⚠️ avertissement"]
    assert "Garde-fous en échec pouvant être levés avec justification** : fairness." in brief
    assert f"- {md_cell(HOSTILE)} : 0,5000" in brief
    assert not brief.endswith("\n")


def _alert(**payload: Any) -> Alert:
    base = {
        "incident_id": 7,
        "title": "Corruption <b>du</b> jeu",
        "severity": "high",
        "breach_type": "integrity",
        "nature": "<script>alert(1)</script>",
        "facts": {"outcome": "tampered", "ranges": [{"chunk": 2, "bytes": [10, 20], "rows": [3, 4]}]},
        "measures_taken": ["entraînement bloqué"],
    }
    return Alert(1, 7, "email", "rssi@example.org", "key-7", {**base, **payload}, 1)


def test_the_alert_email_renders_text_and_html_from_templates() -> None:
    alert = _alert()
    text, page = text_body(alert), html_body(alert)
    assert "- Nature (art. 33(3)(a)) : <script>alert(1)</script>" in text  # plain text is not HTML
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for body in (text, html.unescape(page)):
        assert "gravité : élevée" in body
        assert "atteinte à l'intégrité" in body
        assert "lignes de données 3–4" in body
        assert "Ce message ne contient aucune donnée personnelle brute." in body
        assert "key-7" in body
    message: EmailMessage = email_message(alert, sender="charte@example.org")
    assert message[IDEMPOTENCY_HEADER] == "key-7"
    assert message["Message-ID"] == "<key-7@charter-guardrails>"
    assert message["X-Charter-Incident"] == "7"
    assert message.get_body(preferencelist=("plain",)).get_content() == text  # type: ignore[union-attr]


def test_the_privacy_report_escapes_column_names_and_uses_the_vocabulary() -> None:
    column_name = '<img src=x onerror=alert("charter")>'
    finding = SimpleNamespace(
        entity_type="FR_PHONE", count=3, share=0.25, mean_score=0.9, max_score=0.95, masked_examples=["06 ** ** ** 78"]
    )
    column = SimpleNamespace(
        name=column_name, kind="structured", non_null=12, rows=12, distinct=12, findings=[finding], suspects=[]
    )
    verdict = SimpleNamespace(column=column_name, ok=False, reason="not allowed <b>", warning=None)
    result = CheckResult(
        check="personal_data",
        verdict=Verdict.FAIL,
        engagements=["surete.1", "proportionnalite.3"],
        summary="Personal data in <i>x</i>.",
        dataset="training",
    )
    scan = SimpleNamespace(
        source="t.csv",
        mode="exhaustive",
        rows=12,
        scanned_rows=12,
        min_score=0.5,
        columns=[column],
        guarantee="all rows",
    )
    outcome = SimpleNamespace(result=result, scan=scan, columns=[verdict])
    page = render_privacy_report(outcome, use_case="citizen_requests", run_id="r<1>")  # type: ignore[arg-type]
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(&#34;charter&#34;)&gt;" in page
    assert "<i>x</i>" not in page
    assert "r&lt;1&gt;" in page
    assert "not allowed &lt;b&gt;" in page
    assert "Verdict : <b>non conforme</b>" in page
    assert "Sûreté 1, Proportionnalité 3" in page
    assert "<b>FR_PHONE</b> 3 lignes (25.00%), score moyen 0.90, max 0.95 — ex. 06 ** ** ** 78" in page
    assert '<tr class="bad">' in page
    assert ">INTERDIT<" in page


def test_one_vocabulary_for_every_verdict_and_decision() -> None:
    assert [vocabulary.verdict_label(v) for v in ("pass", "warn", "fail", None)] == [
        "conforme",
        "avertissement",
        "non conforme",
        "aucun résultat",
    ]
    assert vocabulary.verdict_label(Verdict.FAIL) == "non conforme"
    assert vocabulary.decision_label("blocked") == "bloqué"
    assert vocabulary.decision_label(None) == "en cours"
    assert vocabulary.decision_label("overridden") == "publié avec dérogation"
    assert vocabulary.severity_label("critical") == "critique"
    assert vocabulary.severity_label("odd") == "odd"
    assert vocabulary.engagement_label("maitrise_humaine.6") == "Maîtrise humaine 6"
