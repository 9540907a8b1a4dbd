"""A team brings its own use case, as docs/onboarding.md walks it: ``charter init`` on a file that is not one of
the sample datasets, the TODOs filled, the team's own scikit-learn pipeline as ``model.trainer``, and the refresh
on real Airflow processes through the approval form to its first published model, then inference batches
guarded by the new use case's inference DAG, with no other change than where the batches arrive: the team's
inference deliveries land in a versioned bucket of an S3-compatible server on loopback (``tests/object_store.py``),
and each is announced by an asset event posted through the REST API that names its object.

The commands are read from the ``console`` blocks of docs/onboarding.md and run as written (in bash, with the
test's ``CHARTER_*`` folders), so that the page and what is tested cannot drift apart.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.support import ledger_state
from tests.onboarding_doc import doc_commands

#: Minutes of real Airflow processes: run by make test-deploy, which CI runs after make test.
pytestmark = [pytest.mark.topology, pytest.mark.timeout(900)]
USE_CASE = "compostage"
REFRESH = f"{USE_CASE}_model_refresh"
REVIEW = f"{USE_CASE}_policy_review"
INFERENCE = f"{USE_CASE}_inference_guardrails"
COLUMNS = [
    "num_dossier",
    "commune",
    "date_depot",
    "type_habitat",
    "surface_jardin_m2",
    "nb_personnes_foyer",
    "decision",
]
USERS = {"nadia.benali": ("admin", "pw-nadia"), "ops.user": ("op", "pw-ops")}
TRAINER = '''
"""The compost team's own model: its feature engineering and estimator."""
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def train(frame, *, features, label, random_state):
    numbers = [c for c in features if frame[c].dtype.kind in "if"]
    categories = [c for c in features if c not in numbers]
    prepare = ColumnTransformer(
        [("categories", OneHotEncoder(handle_unknown="ignore"), categories), ("numbers", StandardScaler(), numbers)]
    )
    model = Pipeline([("prepare", prepare), ("forest", RandomForestClassifier(100, random_state=random_state))])
    return model.fit(frame[features], frame[label])
'''
#: What the team declares in place of the TODOs (section 5 of the page).
DECLARED: dict[str, Any] = {
    "title": "Aides au compostage",
    "purpose": "Proposer aux agents une première instruction des demandes d'aide au compostage domestique.",
    "legal_basis": "public_task",
    "owner": {"name": "Direction de la propreté", "email": "proprete@ampmetropole.example"},
    "approvers": [
        {
            "name": "Nadia Benali",
            "email": "nadia.benali@ampmetropole.example",
            "role": "responsable",
            "username": "nadia.benali",
        }
    ],
    "alert_recipients": ["rssi@ampmetropole.example"],
    "dpo": {"name": "Délégué à la protection des données", "email": "dpo@ampmetropole.example"},
    "decision_support": True,
    "task_nature": "decision_support",
    "human_recourse": {"name": "Médiation", "email": "mediation@ampmetropole.example"},
    "sourcing": {"origin": "internal"},
}


def write_requests(path: Path, rows: int = 1200, seed: int = 7, *, label: bool = True, drifted: bool = False) -> None:
    """Requests for a home-composting grant: comma-separated, UTF-8 with a byte-order mark, a label that the
    features explain, none of the sample datasets' columns; an inference batch has no label. ``drifted``: only
    houses, with gardens ten times larger than in training."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    communes = ["Aubagne", "Aix-en-Provence", "La Ciotat", "Martigues", "Vitrolles", "Istres", "Marignane"]
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS if label else COLUMNS[:-1])
        for i in range(rows):
            habitat = "maison" if drifted else rnd.choice(["maison", "appartement", "residence"])
            surface = round(rnd.uniform(20, 900) if habitat == "maison" else rnd.uniform(0, 40), 1)
            surface = surface * 10 if drifted else surface
            people = rnd.randint(1, 7)
            score = (surface > 150) + (people >= 3) + (habitat == "maison") + (rnd.random() < 0.15)
            day = date(2025, 1, 6) + timedelta(days=rnd.randint(0, 300))
            decision = "accordee" if score >= 2 else "refusee"
            row = [f"CMP-{100000 + i}", rnd.choice(communes), day.isoformat(), habitat, surface, people, decision]
            writer.writerow(row if label else row[:-1])


def fill_todos(policy_file: Path) -> None:
    raw = yaml.safe_load(policy_file.read_text(encoding="utf-8"))
    raw.update(DECLARED)
    raw["objective"]["statement"] = "Proposer la bonne décision pour neuf demandes sur dix, mesuré par le F1 macro."
    raw["model"]["trainer"] = "compost_team.model:train"
    policy_file.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


def run_doc(step: str, cwd: Path, env: dict[str, str], expected: dict[int, int] | None = None) -> list[str]:
    """Run the step's commands as written, in bash; each must exit as ``expected`` says (0 unless listed)."""
    outputs = []
    for i, command in enumerate(doc_commands(step)):
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        want = (expected or {}).get(i, 0)
        assert done.returncode == want, f"`{command}` exited {done.returncode}, not {want}:\n{done.stdout}{done.stderr}"
        outputs.append(done.stdout + done.stderr)
    return outputs


@pytest.fixture
def team(e2e_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The team's folders: its policies and suites (empty), its export, and its package on PYTHONPATH."""
    folders = {name: tmp_path / name for name in ("policies", "expectations", "work", "pkg")}
    for folder in folders.values():
        folder.mkdir()
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(folders["policies"]))
    monkeypatch.setenv("CHARTER_EXPECTATIONS_DIR", str(folders["expectations"]))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    package = folders["pkg"] / "compost_team"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(textwrap.dedent(TRAINER))
    write_requests(folders["work"] / "demandes_compostage.csv")
    return folders


def deliveries_in(policy_file: Path, bucket: Any) -> None:
    """The team's inference dataset becomes an object of ``bucket`` (its batches are delivered there)."""
    from tests.object_store import CONN_ID

    raw = yaml.safe_load(policy_file.read_text(encoding="utf-8"))
    inference = next(d for d in raw["datasets"] if d["role"] == "inference")
    inference.pop("path")
    inference.update({"uri": bucket.uri("lots/latest.csv"), "conn_id": CONN_ID})
    policy_file.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_a_team_use_case_from_init_to_its_first_model_and_batch(
    team: dict[str, Path], e2e_home: Path, airflow_db: Path, s3_bucket: Any
) -> None:
    from charter_airflow.dag_factory import accepted_batch_asset_uri, inference_asset_uri
    from charter_demo.local_airflow import LocalAirflow
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.decision.gate import REFRESH_CHECKS

    env = dict(os.environ)
    run_doc("prepare", team["work"], env)
    drafted = run_doc("draft", team["work"], env, expected={1: 2})  # validate exits 2 while a TODO is open
    assert "12 TODO(s) to fill" in drafted[0]
    assert "title: TODO" in drafted[1]
    policy_file = team["policies"] / f"{USE_CASE}.yaml"
    assert sorted(p.name for p in team["expectations"].iterdir()) == [
        f"{USE_CASE}.inference.json",
        f"{USE_CASE}.training.json",
    ]

    fill_todos(policy_file)
    run_doc("deliver", team["work"], env)
    deliveries_in(policy_file, s3_bucket)
    policy = load_policy(policy_file)
    assert policy.model.trainer == "compost_team.model:train"
    assert policy.training_dataset.column("num_dossier").role.value == "identifier"

    extra = {"PYTHONPATH": os.pathsep.join([str(team["pkg"]), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    with LocalAirflow(home=airflow_db, users=USERS, extra_env=extra) as airflow:
        nadia = airflow.client("nadia.benali")
        nadia.wait_for_dag(REVIEW)  # parsed from the one DAG file, with the refresh and inference DAGs
        review_run = nadia.trigger(REVIEW)
        run_doc("refresh", team["work"], airflow.env())
        [run_id] = nadia.run_ids(REFRESH)
        detail = nadia.wait_for_hitl(REFRESH, run_id, "human_review", timeout=600)
        assert [u["id"] for u in detail["assigned_users"]] == ["nadia.benali"]
        refresh_states = {t["task_id"]: t["state"] for t in nadia.task_instances(REFRESH, run_id)}
        verdicts = _verdicts(run_id)

        # The approver publishes the team's model; the inference DAG then guards a batch of the same shape.
        nadia.answer_hitl(REFRESH, run_id, "human_review", "Approve")
        assert nadia.wait_for_run(REFRESH, run_id) == "success"
        assert nadia.wait_for_run(REVIEW, review_run) == "success"
        # Batches land in the bucket and are announced by asset events posted through the REST API, each naming
        # its object: the DAG checks that object, not the policy's; a batch that passes is scored and emits the
        # accepted_batch event, a drifted one is moved under quarantine/ and emits nothing.
        nadia.wait_for_dag(INFERENCE)
        batches, versions = {}, {}
        for name, drifted in (("lots/2026-12-05.csv", False), ("lots/2026-12-06.csv", True)):
            local = team["work"] / name
            write_requests(local, rows=300, seed=11, label=False, drifted=drifted)
            versions[name] = s3_bucket.put(name, local)
            register_object(s3_bucket.uri(name))
            before = set(nadia.run_ids(INFERENCE))
            nadia.post_asset_event(inference_asset_uri(USE_CASE), {"batch": s3_bucket.uri(name)})
            run = _new_run(nadia, before)
            batches[name] = (nadia.wait_for_run(INFERENCE, run), _states(nadia, run), _pinned(nadia, run))
        accepted = nadia.asset_events(accepted_batch_asset_uri(USE_CASE))
        nadia.close()

    assert refresh_states["train_candidate"] == "success"
    assert refresh_states["gate"] == "success"
    assert set(verdicts) == {check.value for check in REFRESH_CHECKS}  # every guardrail the gate expects
    assert all(v in ("pass", "warn") for v in verdicts.values()), verdicts
    assert verdicts["training"] == "pass"
    assert ledger_state(USE_CASE)["versions"] == [(1, "production", "nadia.benali")]
    staged = f".objects/s3/{s3_bucket.name}"
    clean_state, clean_tasks, clean_pin = batches["lots/2026-12-05.csv"]
    assert clean_state == "success", clean_tasks
    assert all(state == "success" for state in clean_tasks.values()), clean_tasks
    # the posted object was verified (its staged copy, at the version delivered), not the policy's
    assert clean_pin["path"] == f"{staged}/lots/2026-12-05.csv"
    assert clean_pin["version_id"] == versions["lots/2026-12-05.csv"]
    drifted_state, drifted_tasks, drifted_pin = batches["lots/2026-12-06.csv"]
    assert drifted_state == "failed"
    assert drifted_pin["path"] == f"{staged}/lots/2026-12-06.csv"
    assert drifted_tasks["route_batch"] == "failed", drifted_tasks  # quarantined
    decisions = [(decision, blocked) for dag, decision, blocked in ledger_state(USE_CASE)["runs"] if dag == INFERENCE]
    assert [decision for decision, _ in decisions] == ["passed", "quarantined"]
    assert "drift" in decisions[1][1], decisions  # gardens ten times larger (the suite's ranges fail as well)
    assert list((e2e_home / "data" / USE_CASE / "quarantine").glob("*__2026-12-06.csv"))
    assert accepted[0]["extra"]["not_scored"] is None, accepted[0]["extra"]  # scored by the team's model, v1
    assert accepted[0]["extra"]["model_version"] == 1
    # The bucket: the accepted batch with its predictions beside it; the drifted one moved under quarantine/.
    keys = s3_bucket.keys()
    assert "lots/2026-12-05.csv" in keys, keys
    assert "lots/2026-12-05.predictions.parquet" in keys, keys
    assert "lots/2026-12-06.csv" not in keys, keys
    assert [k for k in keys if k.startswith("quarantine/lots/") and k.endswith("__2026-12-06.csv")], keys
    accepted_copy = f"{USE_CASE}/accepted/{accepted[0]['extra']['run_id'].replace(':', '_')}__2026-12-05.csv"
    assert [e["extra"]["batch"] for e in accepted] == [accepted_copy]  # named by its run
    assert accepted[0]["extra"]["object"] == s3_bucket.uri("lots/2026-12-05.csv")
    assert accepted[0]["extra"]["version_id"] == versions["lots/2026-12-05.csv"]
    assert accepted[0]["extra"]["predictions_object"] == s3_bucket.uri("lots/2026-12-05.predictions.parquet")
    assert accepted[0]["extra"]["manifest_id"]
    assert accepted[0]["source_dag_id"] == INFERENCE


def _new_run(client: Any, before: set[str], timeout: float = 120) -> str:
    """The run the scheduler creates for a posted asset event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [r for r in client.run_ids(INFERENCE) if r not in before]
        if new:
            return str(new[0])
        time.sleep(1)
    raise AssertionError(f"no {INFERENCE} run within {timeout:.0f} s of the asset event")


def _states(client: Any, run_id: str) -> dict[str, str]:
    return {t["task_id"]: t["state"] for t in client.task_instances(INFERENCE, run_id)}


def _pinned(client: Any, run_id: str) -> dict[str, Any]:
    """What the run's integrity step verified and pinned: the file (relative to the data folder), its version."""
    return dict(client.get_xcom(INFERENCE, run_id, "verify_integrity")["pin"])


def register_object(uri: str) -> None:
    from charter_guardrails.cli.main import main as charter

    assert charter(["hash", uri, "--dataset", f"{USE_CASE}.inference", "--quiet"]) == 0


def _verdicts(run_id: str) -> dict[str, str]:
    from charter_guardrails.ledger.models import CheckResultRecord, CheckRun
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        rows = session.execute(
            select(CheckResultRecord.check, CheckResultRecord.verdict)
            .join(CheckRun, CheckRun.id == CheckResultRecord.check_run_id)
            .where(CheckRun.run_id == run_id, CheckRun.dag_id == REFRESH)
        )
        return {check: verdict for check, verdict in rows}
