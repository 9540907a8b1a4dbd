"""Storage limitation: ``charter retention plan|apply`` and legal holds, on SQLite and PostgreSQL.

A small CHARTER_HOME is built in the test: a use case's run folders (working copies, reports), a quarantined
batch whose delivered name carries a person's name, a declared dataset file, and a retired model version. The
clock is moved with ``--as-of`` instead of ageing files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.errors import PolicyError
from charter_guardrails.core.policy import load_policy
from charter_guardrails.decision.model_registry import publish_version
from charter_guardrails.incidents.incident import BreachType, IncidentDraft, raise_incident
from charter_guardrails.ledger.audit import verify_chain
from charter_guardrails.ledger.models import AuditEvent, ModelVersion
from charter_guardrails.ledger.models_retention import DeletedFile
from charter_guardrails.ledger.store import ledger_session
from charter_guardrails.retention import PAUSE_AFTER_ENV, deleted, deleted_artifact
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parents[2]
UC = "citizen_requests"
QUARANTINED = "manual__2026-01-01T00_00_00+00_00__inference_batch__jean_dupont.csv"


@pytest.fixture
def policy_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The citizen_requests policy with a ``storage`` section: working copies 30 days, reports 90, retired
    models 60; batches follow their dataset's retention (365 days)."""
    raw = yaml.safe_load((ROOT / "include" / "policies" / f"{UC}.yaml").read_text(encoding="utf-8"))
    raw["storage"] = {"working_copies_days": 30, "reports_days": 90, "retired_models_days": 60}
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / f"{UC}.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(folder))
    return folder


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _layout(home: Path) -> dict[str, Path]:
    """The state folders of one use case, and two published versions (v1 retired, v2 in production)."""
    paths = {
        "work_a": home / "work" / UC / "run_a",
        "work_incident": home / "work" / UC / "run_incident",
        "report_a": home / "reports" / UC / "run_a",
        "quarantined": home / "data" / UC / "quarantine" / QUARANTINED,
        "training": home / "data" / UC / "training.csv",
        "v1": home / "models" / UC / "v1.joblib",
        "v2": home / "models" / UC / "v2.joblib",
    }
    _write(paths["work_a"] / "training__pseudonymised.parquet", "copy a")
    _write(paths["work_a"] / "candidate" / "model.joblib", "candidate a")
    _write(paths["work_incident"] / "training.minimised.parquet", "copy under incident")
    _write(paths["report_a"] / "personal_data__training.json", "{}")
    _write(paths["quarantined"], "request_id;name\n1;Jean Dupont\n")
    _write(paths["training"], "request_id\n1\n")
    for version in ("v1", "v2"):
        _write(paths[version], f"model {version}")
        with ledger_session() as session:
            publish_version(
                session,
                use_case=UC,
                run_id=f"run_{version}",
                metrics={},
                artifact_path=str(paths[version]),
                artifact_sha256=None,
                approved_by="claire.martin",
            )
    return paths


def _incident_on(run_id: str) -> None:
    with ledger_session() as session:
        raise_incident(
            session,
            load_policy(UC),
            IncidentDraft(
                breach_type=BreachType.INTEGRITY,
                severity="critical",
                dataset=None,
                run_id=run_id,
                title="copie de travail modifiée",
                nature="empreinte différente",
                facts={},
                likely_consequences="aucune",
                measures_taken=[],
            ),
        )


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = charter(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


def _as_of(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def _events(action: str) -> list[AuditEvent]:
    with ledger_session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def _tree(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}


def test_plan_apply_holds_incidents_and_a_second_apply(
    ledger_url: str, charter_home: Path, policy_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _layout(charter_home)
    _incident_on("run_incident")
    code, hold = _run(
        capsys, "hold", "add", "--use-case", UC, "--dataset", "training", "--reason", "contentieux", "--json"
    )
    assert code == 0
    before, events_before = _tree(charter_home / "data"), len(_events("retention.deleted"))

    # 40 days on: only the working copies (30 days) are past their retention; the incident's run is kept.
    code, soon = _run(capsys, "retention", "plan", "--use-case", UC, "--as-of", _as_of(40), "--json")
    assert code == 0
    assert {(i["action"], i["kind"], i["path"]) for i in soon["items"]} == {
        ("delete", "working_copy", f"work/{UC}/run_a"),
        ("keep", "working_copy", f"work/{UC}/run_incident"),
    }
    [kept] = [i for i in soon["items"] if i["action"] == "keep"]
    assert kept["kept_because"][0].startswith("incident #")
    assert "run run_incident" in kept["kept_because"][0]

    # 400 days on: reports (90), batches (365) and the artifact retired for 60 days too; v2 is in production.
    code, later = _run(capsys, "retention", "plan", "--use-case", UC, "--as-of", _as_of(400), "--json")
    items = {(i["action"], i["kind"], i["rule"]) for i in later["items"]}
    assert items == {
        ("delete", "working_copy", "storage.working_copies_days=30"),
        ("keep", "working_copy", "storage.working_copies_days=30"),
        ("delete", "report", "storage.reports_days=90"),
        ("delete", "batch", "datasets.inference.retention.days=365"),
        ("keep", "batch", "datasets.training.retention.days=365"),
        ("delete", "model_artifact", "storage.retired_models_days=60"),
    }
    by_kind = {(i["kind"], i["action"]): i for i in later["items"]}
    assert by_kind[("batch", "keep")]["kept_because"] == [
        f"legal hold #{hold['id']} (dataset training) since {datetime.now(UTC):%Y-%m-%d}"
    ]
    quarantined = by_kind[("batch", "delete")]
    assert quarantined["path"].startswith(f"data/{UC}/quarantine/manual__2026-01-01T00_00_00+00_00__k-")
    assert "dupont" not in json.dumps(later).lower()
    assert by_kind[("model_artifact", "delete")]["path"] == f"models/{UC}/v1.joblib"
    assert by_kind[("model_artifact", "delete")]["model_version"] == 1
    assert later["delete_count"] == 4
    assert later["keep_count"] == 2
    # planning changed nothing
    assert _tree(charter_home / "data") == before
    assert paths["work_a"].exists()
    assert len(_events("retention.deleted")) == events_before == 0

    code, applied = _run(capsys, "retention", "apply", "--use-case", UC, "--as-of", _as_of(400), "--yes", "--json")
    assert code == 0
    assert applied["deleted"] == 4
    assert applied["kept"] == 2
    for gone in ("work_a", "report_a", "quarantined", "v1"):
        assert not paths[gone].exists(), gone
    for kept_path in ("work_incident", "training", "v2"):
        assert paths[kept_path].exists(), kept_path
    events = _events("retention.deleted")
    assert sorted(e.payload["kind"] for e in events) == ["batch", "model_artifact", "report", "working_copy"]
    artifact = next(e for e in events if e.payload["kind"] == "model_artifact")
    assert artifact.payload["size_bytes"] == len("model v1")
    assert len(artifact.payload["sha256"]) == 64
    assert artifact.payload["rule"] == "storage.retired_models_days=60"
    assert artifact.use_case == UC
    assert "dupont" not in json.dumps([e.payload for e in events]).lower()

    code, again = _run(capsys, "retention", "apply", "--use-case", UC, "--as-of", _as_of(400), "--yes", "--json")
    assert code == 0
    assert again["deleted"] == 0
    assert again["finished"] == 0
    assert len(_events("retention.deleted")) == 4
    with ledger_session() as session:
        assert verify_chain(session).ok
        assert deleted(session, UC, f"models/{UC}/v1.joblib") is not None
        assert deleted(session, UC, f"models/{UC}/v2.joblib") is None
        assert deleted(session, UC, f"reports/{UC}/run_a/personal_data__training.json").kind == "report"
        assert deleted(session, UC, f"reports/{UC}/run_b/personal_data__training.json") is None
        assert deleted_artifact(session, UC, 1).rule == "storage.retired_models_days=60"
        v1 = session.scalars(select(ModelVersion).where(ModelVersion.version == 1)).one()
        assert v1.status == "retired"
        assert v1.retired_at is not None

    # lifting the hold (audited) lets the next run delete the training file
    assert charter(["hold", "remove", str(hold["id"]), "--reason", "contentieux clos"]) == 0
    capsys.readouterr()
    code, lifted = _run(capsys, "retention", "plan", "--use-case", UC, "--as-of", _as_of(400), "--json")
    assert {(i["action"], i["kind"]) for i in lifted["items"]} == {("delete", "batch"), ("keep", "working_copy")}
    assert [e.payload["scope"] for e in _events("hold.added") + _events("hold.removed")] == ["dataset training"] * 2


def test_apply_needs_yes_off_a_terminal_and_holds_need_a_known_scope(
    ledger_url: str, charter_home: Path, policy_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _layout(charter_home)
    assert charter(["retention", "apply", "--use-case", UC, "--as-of", _as_of(400), "--json"]) == 2
    assert "pass --yes" in capsys.readouterr().out
    assert (charter_home / "work" / UC / "run_a").exists()
    assert charter(["hold", "add", "--use-case", UC, "--dataset", "nope", "--reason", "x"]) == 2
    assert charter(["hold", "add", "--use-case", UC, "--model-version", "9", "--reason", "x"]) == 2
    assert charter(["hold", "remove", "42", "--reason", "x"]) == 2
    assert "no legal hold #42" in capsys.readouterr().err
    assert _events("hold.added") == []


def test_a_model_version_hold_keeps_its_artifact_and_a_hold_is_audited(
    ledger_url: str, charter_home: Path, policy_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _layout(charter_home)
    assert charter(["hold", "add", "--use-case", UC, "--model-version", "1", "--reason", "audit externe"]) == 0
    capsys.readouterr()
    code, _applied = _run(capsys, "retention", "apply", "--use-case", UC, "--as-of", _as_of(400), "--yes", "--json")
    assert code == 0
    assert paths["v1"].exists()
    assert not paths["work_a"].exists()
    with ledger_session() as session:
        assert verify_chain(session).ok
        session.execute(text("UPDATE legal_holds SET released_at = created_at"))  # lifted behind the ledger's back
    with ledger_session() as session:
        problems = verify_chain(session).problems
    assert [p.subject for p in problems] == ["legal_holds#1"]


def test_storage_section_defaults_and_bounds(policy_dir: Path) -> None:
    from charter_guardrails.core.policy_storage import StoragePolicy

    assert StoragePolicy().model_dump() == {
        "working_copies_days": 30,
        "batches_days": None,
        "reports_days": 365,
        "retired_models_days": 365,
    }
    assert load_policy(UC).storage.reports_days == 90
    path = policy_dir / f"{UC}.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["storage"] = {"reports_days": 0}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"storage\.reports_days"):
        load_policy(UC)


def test_a_killed_apply_is_finished_by_the_next_run_once(ledger_url: str, charter_home: Path, policy_dir: Path) -> None:
    """SIGKILL between two deletions (after the second is recorded, before its file goes): the rerun removes that
    file without a second event, deletes the rest, and every deletion is audited exactly once."""
    folders = [charter_home / "work" / UC / f"run_{n}" for n in (1, 2, 3)]
    for folder in folders:
        _write(folder / "training__pseudonymised.parquet", folder.name)
    env = {**os.environ, PAUSE_AFTER_ENV: "2"}
    argv = [sys.executable, "-m", "charter_guardrails.cli.main", "retention", "apply", "--yes", "--as-of", _as_of(40)]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stderr:
            if "paused after recording deletion 2" in line:
                break
        else:
            pytest.fail(f"apply ended without pausing (exit {proc.wait()})")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert [f.exists() for f in folders] == [False, True, True]
    assert len(_events("retention.deleted")) == 2

    env.pop(PAUSE_AFTER_ENV)
    rerun = subprocess.run([*argv, "--json"], env=env, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert (report["finished"], report["deleted"]) == (1, 1)
    assert not any(f.exists() for f in folders)
    events = _events("retention.deleted")
    assert sorted(e.payload["path"] for e in events) == [f"work/{UC}/run_{n}" for n in (1, 2, 3)]
    with ledger_session() as session:
        assert session.scalar(select(func.count()).select_from(DeletedFile)) == 3
        assert session.scalar(select(func.count()).where(DeletedFile.completed_at.is_(None))) == 0
        assert verify_chain(session).ok


def test_two_runs_at_once_record_each_deletion_once(ledger_url: str, charter_home: Path, policy_dir: Path) -> None:
    """The DAG and a command planning the same item: the second to reach it finds it claimed and records nothing."""
    from charter_guardrails.retention import engine

    _write(charter_home / "work" / UC / "run_x" / "holdout.parquet", "holdout")
    now = datetime.now(UTC) + timedelta(days=40)
    [first] = engine.plan(now, use_case=UC).items
    [second] = engine.plan(now, use_case=UC).items
    with ledger_session() as session:
        assert engine._record(session, first, now, "dag") is not None
    with ledger_session() as session:
        assert engine._record(session, second, now, "cli") is None  # recorded and pending
    assert engine.finish_pending(use_case=UC) == 1
    with ledger_session() as session:
        assert engine._record(session, second, now, "cli") is None  # gone
    assert [e.actor for e in _events("retention.deleted")] == ["dag"]


def test_deleting_a_registered_file_retires_its_manifest(
    ledger_url: str, charter_home: Path, policy_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dataset file retention deletes is not a missing file: its active manifest is retired in the deletion's
    transaction, so the integrity monitor stops verifying it and raises no incident."""
    from charter_guardrails.checks.integrity.manifest import build_manifest, sign_manifest
    from charter_guardrails.checks.integrity.manifest_registry import active_manifest, store_manifest
    from charter_guardrails.core.keys import init_keys

    init_keys()
    paths = _layout(charter_home)
    document = build_manifest(paths["training"], use_case=UC, dataset="training")
    with ledger_session() as session:
        store_manifest(session, sign_manifest(document), policy=load_policy(UC), dataset="training")
    code, _ = _run(capsys, "retention", "apply", "--as-of", _as_of(400), "--yes", "--json")
    assert code == 0
    assert not paths["training"].exists()
    with ledger_session() as session:
        assert active_manifest(session, UC, "training") is None
    (deletion,) = [e for e in _events("retention.deleted") if e.payload["path"] == f"data/{UC}/training.csv"]
    (retired,) = _events("manifest.retired")
    assert deletion.payload["manifests_retired"] == [int(retired.subject_id or 0)]
    assert retired.payload["reason"] == "retention"
    with ledger_session() as session:
        assert verify_chain(session).ok
