"""The partitioned personal-data step of the refresh and inference DAGs: plan → mapped scans → one recorded result.

The shape is checked on the built DAGs; the three task bodies are run here in order (their outputs through JSON,
as XComs), and what they record in the ledger is compared with the single-task step on the same file.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

PARTITION_ROWS = 60
UNDECLARED = "contact_agent"


def test_the_scan_step_is_planned_mapped_and_merged_in_both_dags() -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator
    from charter_airflow.dag_factory import build_inference_dag, build_model_refresh_dag
    from charter_airflow.runtime import policy_file_for

    refresh = build_model_refresh_dag(policy_file_for("citizen_requests"))
    plan, mapped = (refresh.get_task(t) for t in ("plan_personal_data_scan", "scan_personal_data_partition"))
    assert plan.upstream_task_ids == {"verify_integrity"}
    assert mapped.upstream_task_ids == {"plan_personal_data_scan"}
    assert isinstance(mapped, MappedOperator)  # one task instance per partition, at run time
    merge = refresh.get_task("scan_personal_data")
    assert merge.upstream_task_ids == {"scan_personal_data_partition"}
    assert refresh.get_task("pseudonymise").upstream_task_ids == {"scan_personal_data"}
    assert "scan_personal_data" in refresh.get_task("gate").upstream_task_ids
    assert "scan_personal_data_partition" not in refresh.get_task("gate").upstream_task_ids

    inference = build_inference_dag(policy_file_for("citizen_requests"))
    assert inference.get_task("plan_personal_data_scan").upstream_task_ids == {"verify_integrity"}
    assert inference.get_task("scan_personal_data").upstream_task_ids == {"scan_personal_data_partition"}
    route = inference.get_task("route_batch").upstream_task_ids
    assert route == {"verify_integrity", "scan_personal_data", "validate_quality", "check_drift"}


@pytest.fixture
def ledger(charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from charter_guardrails.ledger import db

    url = f"sqlite:///{charter_home / 'ledger.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)
    return url


def _delivery(data_dir: Path) -> Path:
    """240 rows, no free text; an undeclared column holds an e-mail address in the last partition only."""
    rows = 4 * PARTITION_ROWS
    frame = pd.DataFrame(
        {
            "request_id": [f"REQ-{i:05d}" for i in range(rows)],
            "channel": ["web", "guichet", "telephone"] * (rows // 3),
            UNDECLARED: [f"agent.{i}@exemple-mairie.fr" if i >= 3 * PARTITION_ROWS else "" for i in range(rows)],
        }
    )
    path = data_dir / "citizen_requests" / "delivery.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep=";", index=False)
    return path


def _without_reports(evidence: dict[str, Any]) -> dict[str, Any]:
    assert all(Path(p).is_file() for p in evidence["reports"].values()), evidence["reports"]
    return {k: v for k, v in evidence.items() if k != "reports"}


def _recorded(run_id: str) -> tuple[list[Any], list[tuple[Any, ...]], list[str]]:
    from charter_guardrails.ledger.models import CheckResultRecord, CheckRun, Incident, PiiFinding
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        rows = session.scalars(
            select(CheckResultRecord)
            .join(CheckRun, CheckRun.id == CheckResultRecord.check_run_id)
            .where(CheckRun.run_id == run_id, CheckResultRecord.check == "personal_data")
        ).all()
        # the report files are written under the run's folder: compared as present, not by path
        results = [(r.verdict, {**r.metrics, "seconds": 0}, _without_reports(r.evidence)) for r in rows]
        findings = [
            (f.column, f.entity_type, f.count, f.share, f.mean_score, f.max_score, f.masked_examples, f.allowed)
            for f in session.scalars(
                select(PiiFinding).where(PiiFinding.check_result_id.in_([r.id for r in rows])).order_by(PiiFinding.id)
            )
        ]
        incidents = [i.breach_type for i in session.scalars(select(Incident).where(Incident.run_id == run_id))]
    return results, findings, incidents


def test_the_merge_task_records_what_the_single_task_step_records(
    ledger: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import yaml
    from airflow.sdk.exceptions import AirflowFailException
    from charter_airflow.dag_factory import REFRESH_STEPS
    from charter_airflow.guardrail_tasks import run_step
    from charter_airflow.partitioned_guardrail import plan_partitions, scan_one
    from charter_airflow.runtime import load_policy, policy_file_for
    from charter_guardrails.core.settings import get_settings

    raw = yaml.safe_load(policy_file_for("citizen_requests").read_text(encoding="utf-8"))
    raw["privacy"] = {**raw.get("privacy", {}), "partition_rows": PARTITION_ROWS}
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "citizen_requests.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(policies))
    policy = load_policy("citizen_requests")
    path = _delivery(get_settings().data_dir)
    step = next(s for s in REFRESH_STEPS if s.task_id == "scan_personal_data")
    params = {"training_file": "citizen_requests/delivery.csv"}

    def context(run_id: str) -> dict[str, Any]:
        return {"dag_run": SimpleNamespace(dag_id="citizen_requests_model_refresh", run_id=run_id), "params": params}

    partitions = json.loads(json.dumps(plan_partitions(step, policy=policy, context=context("mapped"))))
    assert [p["window"]["start"] for p in partitions] == [0, 60, 120, 180]
    parts = [
        json.loads(json.dumps(scan_one(step, policy=policy, context=context("mapped"), partition=p)))
        for p in reversed(partitions)
    ]
    assert "agent.190@exemple-mairie.fr" not in json.dumps(parts)  # masked examples only in the XComs
    with pytest.raises(AirflowFailException, match="personal_data failed"):
        run_step(step, policy=policy, context=context("mapped"), inputs=(parts,))
    with pytest.raises(AirflowFailException, match="personal_data failed"):
        run_step(step, policy=policy, context=context("single"))  # the step alone: the scan in this process

    mapped, single = _recorded("mapped"), _recorded("single")
    assert len(mapped[0]) == 1  # one personal-data result for the dataset
    assert mapped[0] == single[0]
    assert mapped[1] == single[1]
    assert mapped[2] == single[2]
    verdict, _, evidence = mapped[0][0]
    assert verdict == "fail"
    assert [c["column"] for c in evidence["columns"] if not c["ok"]] == [UNDECLARED]
    assert [(f[0], f[1], f[2], f[7]) for f in mapped[1] if f[0] == UNDECLARED] == [
        (UNDECLARED, "EMAIL_ADDRESS", PARTITION_ROWS, False)
    ]
    assert mapped[2] == ["gdpr_compliance"]
    assert path.exists()
