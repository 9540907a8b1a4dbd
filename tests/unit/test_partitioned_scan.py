"""The personal-data scan of a dataset above ``privacy.partition_rows``: its partitions, their scans merged into one
result equal to the single-task check's in both modes, and an undeclared column found in one partition only."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from charter_demo.sample_data import generate
from charter_guardrails.checks.privacy.partitioned import count_rows, plan, scan_partition
from charter_guardrails.checks.privacy.report import ScanOptions, Window
from charter_guardrails.checks.privacy.sampler import DistinctCounts, RowWindow
from charter_guardrails.checks.privacy.stream import scan_dataset
from charter_guardrails.checks.privacy.verdict import PersonalDataOutcome, check_personal_data
from charter_guardrails.core.policy import UseCasePolicy, load_policy
from charter_guardrails.core.policy_models import CsvDialect
from charter_guardrails.core.policy_privacy import DEFAULT_PARTITION_ROWS
from charter_guardrails.core.settings import get_settings

ROWS = 240  # small: NER runs on every message
PARTITION_ROWS = 80
UNDECLARED = "contact_agent"


def _policy(**privacy: Any) -> UseCasePolicy:
    """citizen_requests with ``privacy`` changed (e.g. a low ``partition_rows``)."""
    policy = load_policy("citizen_requests")
    return policy.model_copy(update={"privacy": policy.privacy.model_copy(update=privacy)})


@pytest.fixture
def sample(charter_home: Path, policies: dict[str, Any]) -> Path:
    """The citizen_requests training sample, 240 rows."""
    data_dir = get_settings().data_dir
    generate(data_dir, policies, rows=ROWS)
    return data_dir / "citizen_requests" / "training.csv"


def _mapped(policy: UseCasePolicy, path: Path) -> PersonalDataOutcome:
    """What the DAG does: plan, one scan per partition (their outputs through JSON, as an XCom, in any order), merge."""
    dataset = policy.dataset("training")
    options = ScanOptions.from_policy(policy.privacy, dataset)
    parts = [scan_partition(dataset, path, options, w, source=path.name) for w in plan(dataset, path, options)]
    xcom = json.loads(json.dumps(list(reversed(parts))))
    return check_personal_data(policy, "training", path=path, parts=xcom, reports=False)


def _findings(outcome: PersonalDataOutcome) -> list[dict[str, Any]]:
    return [{"column": c.name, **f.to_json_dict()} for c in outcome.scan.columns for f in c.findings]


def _same_result(mapped: PersonalDataOutcome, single: PersonalDataOutcome) -> None:
    assert mapped.result.verdict == single.result.verdict
    assert {**mapped.result.metrics, "seconds": 0} == {**single.result.metrics, "seconds": 0}
    assert mapped.result.evidence == single.result.evidence
    assert _findings(mapped) == _findings(single)
    assert (mapped.incident is None) == (single.incident is None)


def test_the_policy_default_and_the_plan_of_a_file_above_partition_rows(sample: Path, tmp_path: Path) -> None:
    policy = load_policy("citizen_requests")
    dataset = policy.dataset("training")
    assert policy.privacy.partition_rows is None
    assert ScanOptions.from_policy(policy.privacy, dataset).partition_rows == DEFAULT_PARTITION_ROWS == 1_000_000
    options = replace(ScanOptions.from_policy(policy.privacy, dataset), partition_rows=100)
    assert [(w.start, w.stop) for w in plan(dataset, sample, options)] == [(0, 100), (100, 200), (200, 240)]
    assert {(w.index, w.count, w.total) for w in plan(dataset, sample, options)} == {(i, 3, 240) for i in range(3)}
    assert plan(dataset, sample, replace(options, partition_rows=240)) == [None]  # not above: one scan of the whole
    parquet = tmp_path / "training.parquet"
    pd.read_csv(sample, sep=";", dtype=str).to_parquet(parquet, row_group_size=50)
    assert plan(dataset, parquet, options) == plan(dataset, sample, options)
    # rows as the scan reads them: a quoted line break is no new row
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('id;note\n1;"a\nb"\n2;c\n3;"d\n\ne"\n4;f\n5;g\n', encoding="utf-8")
    assert count_rows(quoted, CsvDialect(separator=";"), parquet=False) == 5
    assert [(w.start, w.stop) for w in plan(dataset, quoted, replace(options, partition_rows=2))] == [
        (0, 2),
        (2, 4),
        (4, 5),
    ]


def test_a_row_window_passes_each_row_of_its_range_once() -> None:
    window = RowWindow(DistinctCounts(), 5, 18)
    for start in range(0, 30, 7):
        window.add(pa.record_batch({"i": pa.array([str(i) for i in range(start, min(start + 7, 30))])}))
    values, counts, rows = window.sink.column(0)
    assert sorted(int(v) for v in values) == list(range(5, 18))
    assert list(counts) == [1] * 13
    assert rows == 13
    assert window.done


def test_exhaustive_merge_equals_the_single_task_and_the_whole_file_scan(sample: Path) -> None:
    policy = _policy(scan_mode="exhaustive", partition_rows=PARTITION_ROWS)
    single = check_personal_data(policy, "training", path=sample, reports=False)
    mapped = _mapped(policy, sample)
    _same_result(mapped, single)
    assert "3 partitions" in mapped.result.evidence["guarantee"]
    assert any(f["column"] == "message" for f in _findings(mapped))  # not two empty sets
    # counts add up: the same findings as one scan of the whole file
    dataset = policy.dataset("training")
    whole = scan_dataset(dataset, sample, ScanOptions.from_policy(policy.privacy, dataset), source=sample.name)
    by_entity = lambda scan: {  # noqa: E731
        (c.name, f.entity_type): (c.kind, f.count, round(f.mean_score, 4), f.max_score)
        for c in scan.columns
        for f in c.findings
    }
    assert by_entity(mapped.scan) == by_entity(whole)
    assert mapped.scan.rows == mapped.scan.scanned_rows == whole.rows == ROWS


def test_sampling_draws_the_same_stratified_sample_in_both_paths(sample: Path) -> None:
    # n = 90 rows for a 5 % rate at 99 %: each partition of 80 rows draws its share, 30 rows
    policy = _policy(scan_mode="sampling", min_detectable_rate=0.05, partition_rows=PARTITION_ROWS)
    single = check_personal_data(policy, "training", path=sample, reports=False)
    mapped = _mapped(policy, sample)
    _same_result(mapped, single)
    assert mapped.scan.rows == ROWS
    assert mapped.scan.scanned_rows == 90
    guarantee = mapped.result.evidence["guarantee"]
    assert guarantee.startswith("sampling, stratified: 90 of 240 rows drawn at random in 3 partitions"), guarantee
    assert "probability at least 0.99" in guarantee
    dataset = policy.dataset("training")
    windows = plan(dataset, sample, ScanOptions.from_policy(policy.privacy, dataset))
    assert [w.sample_size(ScanOptions.from_policy(policy.privacy, dataset)) for w in windows if w] == [30, 30, 30]


def _with_undeclared_column(tmp_path: Path, suffix: str) -> tuple[Path, list[str]]:
    """240 rows without free text; the undeclared column holds an e-mail address in the third partition only."""
    frame = pd.DataFrame(
        {
            "request_id": [f"REQ-{i:05d}" for i in range(ROWS)],
            "channel": ["web", "guichet", "telephone"] * (ROWS // 3),
            UNDECLARED: [f"agent.{i}@exemple-mairie.fr" if i >= 2 * PARTITION_ROWS else "" for i in range(ROWS)],
        }
    )
    path = tmp_path / f"leak.{suffix}"
    if suffix == "csv":
        frame.to_csv(path, sep=";", index=False)
    else:
        frame.to_parquet(path, row_group_size=60)
    return path, [v for v in frame[UNDECLARED] if v]


@pytest.mark.parametrize("mode", ["exhaustive", "sampling"])
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_an_undeclared_column_in_one_partition_fails_the_merged_verdict(
    charter_home: Path, tmp_path: Path, mode: str, suffix: str
) -> None:
    path, raw = _with_undeclared_column(tmp_path, suffix)
    policy = _policy(scan_mode=mode, min_detectable_rate=0.05, partition_rows=PARTITION_ROWS)
    dataset = policy.dataset("training")
    options = ScanOptions.from_policy(policy.privacy, dataset)
    windows = plan(dataset, path, options)
    parts = [scan_partition(dataset, path, options, w, source=path.name) for w in windows]
    per_partition = [{c["name"]: c["findings"] for c in p["columns"]}.get(UNDECLARED) for p in parts]
    assert [bool(f) for f in per_partition] == [False, False, True]  # found in the third partition only
    text = json.dumps(parts)
    assert not [v for v in raw if v in text], "a raw value in a partition's output (the XCom)"
    mapped = _mapped(policy, path)
    single = check_personal_data(policy, "training", path=path, reports=False)
    _same_result(mapped, single)
    assert mapped.result.verdict.value == "fail"
    assert [c.column for c in mapped.columns if not c.ok] == [UNDECLARED]
    assert mapped.incident is not None
    assert mapped.incident.breach_type.value == "gdpr_compliance"
    email = mapped.scan.column(UNDECLARED).finding("EMAIL_ADDRESS")
    assert email is not None
    assert email.count == (PARTITION_ROWS if mode == "exhaustive" else 30)
    assert all("*" in e for e in email.masked_examples)


def test_a_partition_that_cannot_be_read_makes_the_verdict_unreadable(charter_home: Path, tmp_path: Path) -> None:
    policy = _policy(partition_rows=2)
    error = {"kind": "changed", "message": "the file changed while it was scanned", "path": "x.csv"}
    parts = [
        {"window": Window(0, 2, 0, 2, 4).to_json_dict(), "rows": 2},
        {"window": Window(1, 2, 2, 4, 4).to_json_dict(), "read_error": error},
    ]
    outcome = check_personal_data(policy, "training", path=tmp_path / "x.csv", parts=parts, reports=False)
    assert outcome.result.verdict.value == "fail"
    assert outcome.result.evidence["read_error"]["kind"] == "changed"
