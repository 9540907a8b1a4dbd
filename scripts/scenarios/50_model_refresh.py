"""model refresh: a clean refresh approved, a PII leak blocked, a biased sample overridden, then two inference
batches announced by asset events through the REST API: the clean one accepted, the drifted one quarantined.

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


def _post_batch(client: Any, dag_id: str, batch: str, timeout: float = 120) -> str:
    """Post the asset event that announces ``batch``; the run the scheduler creates for it."""
    import time

    before = set(client.run_ids(dag_id))
    client.post_asset_event("charter://citizen_requests/inference_batch", {"batch": batch})
    print(f"    POST /api/v2/assets/events {{'batch': {batch!r}}}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [r for r in client.run_ids(dag_id) if r not in before]
        if new:
            return str(new[0])
        time.sleep(1)
    raise RuntimeError(f"no {dag_id} run within {timeout:.0f} s of the asset event for {batch}")


#: The inference runs this make run started (their accepted_batch events are the ones it expects).
inference_runs: set[str] = set()


def _inference(ctx: Any, client: Any, dag_id: str, batch: str, *, accepted: bool) -> None:
    """Register ``batch``, announce it by an asset event, and expect it accepted or quarantined."""
    register("citizen_requests", "inference", f"citizen_requests/{batch}")
    run_id = _post_batch(client, dag_id, f"citizen_requests/{batch}")
    inference_runs.add(run_id)
    state = client.wait_for_run(dag_id, run_id)
    states = {t["task_id"]: t["state"] for t in client.task_instances(dag_id, run_id)}
    outcome = "success" if accepted else "failed"
    routed = "accepted" if accepted else "quarantined (route_batch failed on purpose)"
    ctx.expect(state == outcome and states.get("route_batch") == outcome, f"{batch} posted as an asset event: {routed}")


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

        # Inference batches are announced by an upstream system: an asset event posted through the REST API names
        # each one. The clean batch passes every guardrail of the published model's inputs and emits accepted_batch.
        _inference(ctx, claire, dag_inference, "inference_batch.csv", accepted=True)

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

        # 4. The drifted batch, announced the same way: quarantined, with an incident; it emits nothing.
        _inference(ctx, claire, dag_inference, "inference_batch__drifted.csv", accepted=False)
        events = [  # this make run's (a rerun on the same Airflow home finds the earlier ones too)
            e
            for e in claire.asset_events("charter://citizen_requests/accepted_batch")
            if e["extra"].get("run_id") in inference_runs
        ]
        copies = [  # the accepted copy is named by its run
            f"citizen_requests/accepted/{e['extra']['run_id'].replace(':', '_')}__inference_batch.csv" for e in events
        ]
        ctx.expect(
            len(events) == 1 and [e["extra"].get("batch") for e in events] == copies,
            "one accepted_batch event, for the clean batch only: what downstream DAGs schedule on",
        )
        for client in (claire, karim):
            client.close()

    from charter_guardrails.cli.main import main as charter

    print()
    charter(["runs", "list", "--use-case", "citizen_requests"])
    print()
    charter(["model", "list"])
