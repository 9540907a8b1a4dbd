"""model refresh: a clean refresh approved, a PII leak blocked, a biased sample overridden, a drifted batch quarantined.

These run on real Airflow processes (api-server, scheduler, dag-processor; LocalExecutor on
SQLite) because a human answers the approval through the same HITL REST API the UI uses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

APPROVERS = {"claire.martin": ("admin", "charte-claire"), "karim.haddad": ("admin", "charte-karim")}
OVERRIDE_JUSTIFICATION = (
    "Sous-représentation du 16e arrondissement connue et documentée ; "
    "les orientations restent validées par un agent. Correction prévue au prochain lot."
)


def register(use_case: str, dataset: str, relative: str) -> None:
    """A new delivery of a dataset is registered (signed manifest) before the DAG uses it."""
    from charter_guardrails.cli.main import main as charter
    from charter_guardrails.core.settings import get_settings

    code = charter(["hash", str(get_settings().data_dir / relative), "--dataset", f"{use_case}.{dataset}", "--quiet"])
    if code != 0:
        raise RuntimeError(f"could not register {relative} as {use_case}.{dataset} (exit {code})")


def run(ctx: Any) -> None:
    from charter_demo.local_airflow import LocalAirflow
    from charter_guardrails.decision.model_registry import production_version
    from charter_guardrails.ledger.store import ledger_session

    home = Path(os.environ["AIRFLOW_HOME"])
    dag_refresh, dag_inference = "citizen_requests_model_refresh", "citizen_requests_inference_guardrails"
    with LocalAirflow(home=home, users=APPROVERS) as airflow:
        claire, karim = airflow.client("claire.martin"), airflow.client("karim.haddad")
        print(f"    Airflow api-server on {airflow.base_url} (logs in {home / 'logs'})")
        claire.wait_for_dag(dag_refresh)
        claire.wait_for_dag(dag_inference)

        # 1. A clean refresh triggered by karim, approved by another named approver (four eyes) through the HITL API.
        register("citizen_requests", "training", "citizen_requests/training.csv")
        run_id = karim.trigger(dag_refresh)
        claire.wait_for_hitl(dag_refresh, run_id, "human_review")
        claire.answer_hitl(dag_refresh, run_id, "human_review", "Approve")
        print(f"    approved {dag_refresh} run {run_id} as claire.martin through PATCH .../hitlDetails")
        state = claire.wait_for_run(dag_refresh, run_id)
        with ledger_session() as session:
            version = production_version(session, "citizen_requests")
            ctx.expect(
                state == "success" and version is not None and version.approved_by == "claire.martin",
                f"clean refresh published v{version.version if version else '?'} approved by "
                f"{version.approved_by if version else '?'}; model card {version.card_path if version else '-'}",
            )

        # 2. The PII-leak variant: blocked at the personal-data guardrail, nothing published.
        register("citizen_requests", "training", "citizen_requests/training__pii_leak.csv")
        run_id = claire.trigger(dag_refresh, {"training_file": "citizen_requests/training__pii_leak.csv"})
        state = claire.wait_for_run(dag_refresh, run_id)
        states = {t["task_id"]: t["state"] for t in claire.task_instances(dag_refresh, run_id)}
        ctx.expect(
            state == "failed" and states.get("scan_personal_data") == "failed" and states.get("publish") != "success",
            f"PII leak blocked at scan_personal_data (publish: {states.get('publish')})",
        )

        # 3. The biased sample: representativeness fails; an override approver who did not trigger the run
        # overrides with a justification.
        register("citizen_requests", "training", "citizen_requests/training__biased.csv")
        run_id = claire.trigger(dag_refresh, {"training_file": "citizen_requests/training__biased.csv"})
        karim.wait_for_hitl(dag_refresh, run_id, "human_review")
        karim.answer_hitl(dag_refresh, run_id, "human_review", "Override", {"justification": OVERRIDE_JUSTIFICATION})
        print("    overridden as karim.haddad with a written justification")
        state = karim.wait_for_run(dag_refresh, run_id)
        with ledger_session() as session:
            version = production_version(session, "citizen_requests")
            ctx.expect(
                state == "success" and version is not None and version.approved_by == "karim.haddad",
                f"biased sample published as v{version.version if version else '?'} under an override",
            )

        # Restore the clean delivery for what follows.
        register("citizen_requests", "training", "citizen_requests/training.csv")

        # 4. A drifted inference batch: quarantined, with an incident.
        register("citizen_requests", "inference", "citizen_requests/inference_batch__drifted.csv")
        run_id = claire.trigger(dag_inference, {"batch_file": "citizen_requests/inference_batch__drifted.csv"})
        state = claire.wait_for_run(dag_inference, run_id)
        states = {t["task_id"]: t["state"] for t in claire.task_instances(dag_inference, run_id)}
        ctx.expect(
            state == "failed" and states.get("check_drift") == "success" and states.get("route_batch") == "failed",
            "drifted inference batch quarantined (route_batch failed on purpose)",
        )
        for client in (claire, karim):
            client.close()

    from charter_guardrails.cli.main import main as charter

    print()
    charter(["runs", "list", "--use-case", "citizen_requests"])
    print()
    charter(["model", "list"])
