"""training data in a table: citizen_requests' training rows in the embedded SQLite warehouse, refreshed there.

1. The sample training rows are loaded into the table ``citizen_requests_training`` of the data database
   (``CHARTER_DATA_URL``; by default the embedded SQLite file ``$CHARTER_HOME/data/warehouse.db``), with a surrogate
   key ``row_id``; a copy of the policies (and of the suites) declares the training dataset as that table
   (``format: sql``), under ``$CHARTER_HOME/table_training/``.
2. ``charter hash --dataset`` registers the table's signed manifest: its rows in key order, over key ranges.
3. The refresh's guardrail steps run in DAG order on the table, in this process, as the refresh DAG's tasks run
   them (``run_step``, each with the XComs of the tasks before): ``verify_integrity`` verifies the table in place
   and pins it; the scan samples it in the database; ``pseudonymise`` reads it once into the training copy,
   checked against the pin; quality runs in the database; then representativeness, proportionality, training,
   evaluation and the footprint. The gate's decision follows. The verdicts go to the ledger under the run
   ``table_training__<time>``.

It runs before the files are registered (``20_integrity``): the dataset's active manifest is then the training
file's again, as the shipped policy (a file) expects for the refreshes that follow and for the view.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any


@contextmanager
def _configuration(policies: str, suites: str) -> Any:
    saved = {name: os.environ.get(name) for name in ("CHARTER_POLICIES_DIR", "CHARTER_EXPECTATIONS_DIR")}
    os.environ.update(CHARTER_POLICIES_DIR=policies, CHARTER_EXPECTATIONS_DIR=suites)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run(ctx: Any) -> None:
    from charter_airflow.publish import run_results
    from charter_airflow.runtime import load_policy
    from charter_airflow.step_runner import run_refresh_guardrails
    from charter_demo.table_training import (
        TABLE,
        USE_CASE,
        load_training_table,
        table_policies,
        table_suites,
        with_row_ids,
    )
    from charter_guardrails.cli.main import main as charter
    from charter_guardrails.core.policy import load_policy as load_shipped
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.decision.gate import REFRESH_CHECKS, decide

    settings = get_settings()
    folder = settings.home / "table_training"
    shipped = load_shipped(USE_CASE).training_dataset
    rows_csv = folder / "training_rows.csv"
    folder.mkdir(parents=True, exist_ok=True)
    with_row_ids(shipped.resolve_path(), rows_csv, shipped)
    policies = table_policies(settings.policies_dir, folder / "policies")
    suites = table_suites(settings.expectations_dir, folder / "expectations")
    rows = load_training_table(settings.data_url, rows_csv, shipped, TABLE)
    rows_csv.unlink()
    ctx.expect(rows > 0, f"{rows} training rows loaded into the table {TABLE} of the embedded SQLite warehouse")

    run_id = f"table_training__{datetime.now(UTC):%Y-%m-%dT%H%M%S}"
    with _configuration(str(policies), str(suites)):
        code = charter(["hash", "--dataset", f"{USE_CASE}.training", "--run-id", run_id, "--quiet"])
        ctx.expect(code == 0, f"charter hash --dataset {USE_CASE}.training: the table's manifest registered")
        policy = load_policy(USE_CASE)
        context = run_refresh_guardrails(policy, run_id)
        decision = decide(run_results(policy, context), REFRESH_CHECKS)
    pin = (context["ti"].xcoms["verify_integrity"] or {}).get("pin") or {}
    ctx.expect(
        pin.get("kind") == "table" and pin.get("rows") == rows,
        f"verify_integrity: the table verified in place and pinned ({pin.get('rows')} rows, root "
        f"{str(pin.get('merkle_root'))[:12]}…)",
    )
    ctx.expect(
        not decision.failed and not decision.missing,
        f"every guardrail of the refresh ran on the table: {len(REFRESH_CHECKS)} checks, none failed; the gate "
        f"asks a human ({decision.outcome.value})",
    )
