"""The inference DAG checks the batch its triggering asset event names, and announces an accepted batch."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest


def _context(*batches: Any, params: dict[str, Any] | None = None) -> dict[str, Any]:
    from airflow.sdk import Asset

    events = [SimpleNamespace(extra={"batch": b} if b is not None else {}) for b in batches]
    return {
        "params": params or {},
        "triggering_asset_events": {Asset("charter://citizen_requests/inference_batch"): events},
    }


def test_the_batch_comes_from_the_event_unless_the_run_names_one(charter_home: Path) -> None:
    from charter_airflow.runtime import batch_of_asset_events, delivered_file, load_policy
    from charter_guardrails.core.policy_models import DatasetRole
    from charter_guardrails.core.settings import get_settings

    dataset = load_policy("citizen_requests").datasets_with_role(DatasetRole.INFERENCE)[0]
    data = get_settings().data_dir.resolve()
    assert batch_of_asset_events(_context("citizen_requests/lots/a.csv")) == "citizen_requests/lots/a.csv"
    assert (
        batch_of_asset_events(_context(f"file://{data}/citizen_requests/lots/b.csv"))
        == f"{data}/citizen_requests/lots/b.csv"
    )
    assert batch_of_asset_events(_context(None)) is None  # an event without a batch: the policy's file
    assert batch_of_asset_events({}) is None
    on_event = delivered_file(dataset, _context("citizen_requests/lots/a.csv"), file_param="batch_file")
    assert on_event == data / "citizen_requests" / "lots" / "a.csv"
    manual = _context("citizen_requests/lots/a.csv", params={"batch_file": "citizen_requests/lots/c.csv"})
    assert delivered_file(dataset, manual, file_param="batch_file") == data / "citizen_requests" / "lots" / "c.csv"
    assert delivered_file(dataset, _context(None), file_param="batch_file") == dataset.resolve_path()


def test_events_naming_several_batches_or_a_batch_outside_the_data_folder_are_refused(charter_home: Path) -> None:
    from charter_airflow.runtime import batch_of_asset_events, delivered_file, load_policy
    from charter_guardrails.core.errors import ConfigError
    from charter_guardrails.core.policy_models import DatasetRole

    with pytest.raises(ConfigError, match=r"2 batches \(citizen_requests/a.csv, citizen_requests/b.csv\).*batch_file"):
        batch_of_asset_events(_context("citizen_requests/a.csv", "citizen_requests/b.csv", "citizen_requests/a.csv"))
    dataset = load_policy("citizen_requests").datasets_with_role(DatasetRole.INFERENCE)[0]
    with pytest.raises(ConfigError, match=r"outside the data folder|leaves the data folder|must not contain"):
        delivered_file(dataset, _context("../../etc/passwd"), file_param="batch_file")


def test_route_batch_is_the_outlet_of_the_accepted_batch_asset() -> None:
    from charter_airflow.dag_factory import accepted_batch_asset_uri, build_inference_dag
    from charter_airflow.runtime import policy_file_for

    dag = build_inference_dag(policy_file_for("citizen_requests"))
    outlets = dag.get_task("route_batch").outlets
    assert [o.uri for o in outlets] == [accepted_batch_asset_uri("citizen_requests")]
    assert dag.get_task("route_batch").upstream_task_ids >= {"verify_integrity", "check_drift"}
