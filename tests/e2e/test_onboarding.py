"""A team brings its own use case, as docs/onboarding.md walks it: ``charter init`` on a file that is not one of
the sample datasets, the TODOs filled, the team's own scikit-learn pipeline as ``model.trainer``, and the refresh
on real Airflow processes through the approval form to its first published model, then an inference batch
guarded by the new use case's inference DAG, with no other change.

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
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.support import ledger_state, register
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


def write_requests(path: Path, rows: int = 1200, seed: int = 7, *, label: bool = True) -> None:
    """Requests for a home-composting grant: comma-separated, UTF-8 with a byte-order mark, a label that the
    features explain, none of the sample datasets' columns; an inference batch has no label."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    communes = ["Aubagne", "Aix-en-Provence", "La Ciotat", "Martigues", "Vitrolles", "Istres", "Marignane"]
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS if label else COLUMNS[:-1])
        for i in range(rows):
            habitat = rnd.choice(["maison", "appartement", "residence"])
            surface = round(rnd.uniform(20, 900) if habitat == "maison" else rnd.uniform(0, 40), 1)
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


def test_a_team_use_case_from_init_to_its_first_model_and_batch(
    team: dict[str, Path], e2e_home: Path, airflow_db: Path
) -> None:
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
        write_requests(e2e_home / "data" / USE_CASE / "inference_batch.csv", rows=300, seed=11, label=False)
        register(USE_CASE, "inference", f"{USE_CASE}/inference_batch.csv")
        nadia.wait_for_dag(INFERENCE)
        batch_run = nadia.trigger(INFERENCE)
        assert nadia.wait_for_run(INFERENCE, batch_run) == "success"
        batch_states = {t["task_id"]: t["state"] for t in nadia.task_instances(INFERENCE, batch_run)}
        nadia.close()

    assert refresh_states["train_candidate"] == "success"
    assert refresh_states["gate"] == "success"
    assert set(verdicts) == {check.value for check in REFRESH_CHECKS}  # every guardrail the gate expects
    assert all(v in ("pass", "warn") for v in verdicts.values()), verdicts
    assert verdicts["training"] == "pass"
    assert ledger_state(USE_CASE)["versions"] == [(1, "production", "nadia.benali")]
    assert batch_states["route_batch"] == "success"
    assert all(state == "success" for state in batch_states.values()), batch_states


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
