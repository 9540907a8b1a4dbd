"""The pieces of `charter init` that need no NER model: type guesses, roles, ranges, suites, TODO detection."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from charter_guardrails.core.errors import PolicyError
from charter_guardrails.core.policy import OpenTodos, load_policy, open_todos
from charter_guardrails.core.policy_models import ColumnRole, ColumnType, PersonalDataCategory
from charter_guardrails.onboarding.columns import (
    ColumnDraft,
    default_max_rows,
    guess_role,
    is_classification,
    named_like_id,
    personal_category,
)
from charter_guardrails.onboarding.profile import ColumnProfile, infer_type, profile_frame, read_file
from charter_guardrails.onboarding.skeleton import render
from charter_guardrails.onboarding.suite_draft import draft_suite, widened_range

ROOT = Path(__file__).resolve().parents[2]
CITIZEN = ROOT / "include" / "policies" / "citizen_requests.yaml"


def _text(values: list[str | None]) -> pd.Series:
    return pd.Series(values, dtype=object)


@pytest.mark.parametrize(
    ("values", "decimal", "expected"),
    [
        (["1", "2", "-3", None], ".", ColumnType.INTEGER),
        (["1.5", "2", "3e2"], ".", ColumnType.FLOAT),
        (["1,5", "1 234,25", "7"], ",", ColumnType.FLOAT),
        (["1,5", "2,5"], ".", ColumnType.STRING),  # a comma is not a decimal mark in a '.' file
        (["13001", "01005", "13055"], ".", ColumnType.CATEGORY),  # leading zeros: codes, not numbers
        (["oui", "non", "Oui"], ",", ColumnType.BOOLEAN),
        (["2025-01-02", "2024-12-31"], ".", ColumnType.DATE),
        (["2025-01-02T10:00:00", "2024-12-31 23:59"], ".", ColumnType.DATETIME),
        (["31/12/2024", "01/01/2025"], ".", ColumnType.STRING),  # the readers parse ISO 8601 only
        ([None, None], ".", ColumnType.STRING),
    ],
)
def test_the_type_guessed_is_the_one_the_readers_convert(values: list[str | None], decimal: str, expected: str) -> None:
    assert infer_type(_text(values), decimal) is ColumnType(expected)


def test_a_profile_counts_nulls_distinct_values_and_ranges_of_the_typed_columns(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    lines = ["code;poids;quand;canal"] + [
        f"C{i:03d};{i},5;2025-03-{1 + i % 28:02d};{'web' if i % 2 else 'guichet'}" for i in range(60)
    ]
    lines[5] = "C004;;2025-03-05;web"  # one null weight
    path.write_bytes("\n".join(lines).encode("latin-1"))
    frame, dialect = read_file(path)
    assert dialect is not None
    assert (dialect.separator, dialect.decimal) == (";", ",")
    profile = profile_frame(frame, path, dialect)
    poids, quand, canal, code = (profile.column(n) for n in ("poids", "quand", "canal", "code"))
    assert (poids.type, poids.nulls, poids.minimum, poids.maximum) == (ColumnType.FLOAT, 1, 0.5, 59.5)
    assert (quand.type, quand.minimum, quand.maximum) == (ColumnType.DATE, "2025-03-01", "2025-03-28")
    assert (canal.type, canal.values) == (ColumnType.CATEGORY, ("guichet", "web"))
    assert code.unique
    assert code.values is None  # 60 distinct values: not a value set


def test_a_file_without_rows_is_refused_by_the_readers_error(tmp_path: Path) -> None:
    from charter_guardrails.core.errors import DatasetReadError

    path = tmp_path / "header.csv"
    path.write_text("a;b;c\n", encoding="utf-8")
    with pytest.raises(DatasetReadError, match="no data rows"):
        read_file(path)


def _profile(name: str, type_: ColumnType, **kw: object) -> ColumnProfile:
    return ColumnProfile(
        name=name, type=type_, rows=kw.pop("rows", 100), nulls=0, distinct=kw.pop("distinct", 100), **kw
    )  # type: ignore[arg-type]


def test_roles_are_guessed_from_the_names_types_and_texts() -> None:
    assert named_like_id("request_id")
    assert named_like_id("IdDemande")
    assert named_like_id("ref-dossier")
    assert not named_like_id("valid")
    assert not named_like_id("paid_amount")
    assert guess_role(_profile("dossier_id", ColumnType.STRING), None) is ColumnRole.IDENTIFIER
    assert guess_role(_profile("depot", ColumnType.DATE), None) is ColumnRole.TIMESTAMP
    assert guess_role(_profile("texte", ColumnType.STRING, median_words=9.0), None) is ColumnRole.FREE_TEXT
    assert guess_role(_profile("montant", ColumnType.FLOAT), "montant") is ColumnRole.LABEL
    # a short text unique to each row is a key whatever its name; repeated, it is a feature
    assert guess_role(_profile("num_dossier", ColumnType.STRING), None) is ColumnRole.IDENTIFIER
    assert guess_role(_profile("nom", ColumnType.STRING, median_words=2.0), None) is ColumnRole.IDENTIFIER
    assert guess_role(_profile("nom", ColumnType.STRING, median_words=2.0, distinct=40), None) is ColumnRole.FEATURE
    assert guess_role(_profile("montant", ColumnType.INTEGER), None) is ColumnRole.FEATURE  # unique numbers: a measure


def test_the_personal_category_and_the_model_kind_follow_what_was_found() -> None:
    assert personal_category(ColumnRole.FEATURE, []) is PersonalDataCategory.NONE
    assert personal_category(ColumnRole.FREE_TEXT, ["FR_PHONE"]) is PersonalDataCategory.FREE_TEXT
    assert personal_category(ColumnRole.FEATURE, ["LOCATION", "PERSON"]) is PersonalDataCategory.DIRECT_IDENTIFIER
    assert personal_category(ColumnRole.FEATURE, ["EMAIL_ADDRESS"]) is PersonalDataCategory.CONTACT
    assert not is_classification(_profile("montant", ColumnType.FLOAT))
    assert is_classification(ColumnProfile(name="note", type=ColumnType.INTEGER, rows=100, nulls=0, distinct=5))
    assert is_classification(_profile("service", ColumnType.CATEGORY))
    assert [default_max_rows(n) for n in (10, 800, 1_500, 120_000)] == [1_000, 2_000, 5_000, 500_000]


def test_a_range_is_widened_outwards_and_stays_non_negative() -> None:
    assert widened_range(10.2, 498.7, integer=False) == (0, 550)
    assert widened_range(-5, 5, integer=True) == (-6, 6)
    low, high = widened_range(0.12, 0.18, integer=False)
    assert low <= 0.12
    assert high >= 0.18
    assert low >= 0


def test_a_suite_never_holds_a_value_of_a_sensitive_column() -> None:
    names = ColumnProfile(name="nom", type=ColumnType.CATEGORY, rows=400, nulls=0, distinct=3, values=("A", "B", "C"))
    canal = ColumnProfile(name="canal", type=ColumnType.CATEGORY, rows=400, nulls=2, distinct=2, values=("x", "y"))
    age = ColumnProfile(name="age", type=ColumnType.INTEGER, rows=400, nulls=0, distinct=50, minimum=18, maximum=90)
    columns = [
        ColumnDraft(names, ColumnRole.FEATURE, PersonalDataCategory.DIRECT_IDENTIFIER, [("PERSON", 3)], [], 400),
        ColumnDraft(canal, ColumnRole.FEATURE, PersonalDataCategory.NONE, [], [], 400),
        ColumnDraft(age, ColumnRole.FEATURE, PersonalDataCategory.NONE, [], [("DATE_OF_BIRTH", 1)], 400),
    ]
    suite = draft_suite("u", "training", columns, min_rows=1, max_rows=1000)
    by_column: dict[str, list[str]] = {}
    for expectation in suite["expectations"]:
        by_column.setdefault(expectation["kwargs"].get("column", ""), []).append(expectation["type"])
    assert "expect_column_values_to_be_in_set" not in by_column["nom"]
    assert "expect_column_values_to_be_between" not in by_column["age"]  # a look-alike of personal data
    assert "expect_column_values_to_be_in_set" in by_column["canal"]
    assert "expect_column_values_to_not_be_null" not in by_column["canal"]  # it has nulls
    assert "expect_column_values_to_not_be_null" in by_column["nom"]


def test_the_rendered_yaml_reads_back_with_its_comments_in_place() -> None:
    data = {
        "id": "x",
        "purpose": "TODO: say: why # not a comment",
        "names": ["yes", "1", "é", "a b"],
        "datasets": [{"id": "t", "columns": [{"name": "on", "nullable": False}, {"name": "x", "n": 1.5}]}],
        "model": {"kind": "regressor"},
    }
    text = render(data, {"purpose": ["what it is for"], "datasets[0].columns[1]": ["found PERSON"]}, ["head"])
    assert yaml.safe_load(text) == data
    lines = text.splitlines()
    assert lines[0] == "# head"
    assert lines[lines.index("# what it is for") + 1].startswith("purpose: ")
    assert lines[next(i for i, line in enumerate(lines) if "# found PERSON" in line) + 1].strip().startswith("- ")


def test_open_todos_are_found_by_key_path() -> None:
    raw = {
        "title": "TODO: t",
        "approvers": ["TODO: a"],
        "datasets": [{"retention": {"days": " TODO x"}}],
        "ok": "to do",
    }
    assert open_todos(raw) == [
        ("title", "TODO: t"),
        ("approvers[0]", "TODO: a"),
        ("datasets[0].retention.days", "TODO x"),
    ]


def test_a_policy_with_an_open_todo_is_refused_for_it_before_type_validation(tmp_path: Path) -> None:
    raw = yaml.safe_load(CITIZEN.read_text(encoding="utf-8"))
    raw["decision_support"] = "TODO: true or false"  # would be a type error without the TODO check
    raw["datasets"][1]["retention"]["days"] = "TODO: days"
    path = tmp_path / "citizen_requests.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(OpenTodos) as caught:
        load_policy(path)
    assert isinstance(caught.value, PolicyError)
    assert [key for key, _ in caught.value.all_errors] == ["decision_support", "datasets[1].retention.days"]
    assert caught.value.to_json_dict()["todos"][1] == {"key": "datasets[1].retention.days", "text": "TODO: days"}
    raw["decision_support"], raw["datasets"][1]["retention"]["days"] = True, 365
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert load_policy(path).id == "citizen_requests"


def test_open_todos_walk_a_yaml_alias_bomb_once() -> None:
    bomb = ROOT / "tests" / "data" / "bad" / "policy_billion_laughs.yaml"
    raw = yaml.safe_load(bomb.read_text(encoding="utf-8"))
    assert open_todos(raw) == []  # 9**9 leaves if aliases were expanded: this returns at once
    shared = ["TODO: shared"]
    assert open_todos({"a": shared, "b": shared}) == [("a[0]", "TODO: shared")]
