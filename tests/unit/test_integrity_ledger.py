"""`charter hash`, `charter verify` and `charter incidents` against a real ledger, on SQLite and
PostgreSQL (the ``ledger_url`` fixture), and bad input: missing, unreadable, empty, changing files."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from charter_guardrails.checks.integrity.hashing import hash_file
from charter_guardrails.checks.integrity.manifest import build_manifest
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.errors import (
    DatasetFileChanged,
    DatasetFileEmpty,
    DatasetFileMissing,
    DatasetFileUnreadable,
)
from charter_guardrails.incidents.decisions import record_art33
from charter_guardrails.ledger import db
from charter_guardrails.ledger.models import (
    AlertOutbox,
    AuditEvent,
    CheckResultRecord,
    Incident,
    Manifest,
    ManifestVerification,
)
from charter_guardrails.ledger.store import ledger_session
from sqlalchemy import func, select, update

ROOT = Path(__file__).resolve().parents[2]
ART33_FIELDS = (
    "detected_at",
    "breach_type",
    "nature",
    "facts",
    "use_case",
    "dataset",
    "data_subject_categories",
    "approx_records",
    "likely_consequences",
    "measures_taken",
    "dpo_contact",
    "notify_deadline",
    "status",
)
PERSONAL_VALUES = ["Jeanne Dupont", "jeanne.dupont@example.fr", "06 12 34 56 78", "1 84 12 76 451 089 46"]


def _csv(path: Path, rows: int = 600, seed: int = 3) -> Path:
    rng = random.Random(seed)
    lines = ["request_id;received_at;message;arrondissement;channel;age_band;category"]
    for i in range(rows):
        person = rng.choice(PERSONAL_VALUES)
        lines.append(
            f"R{i:05d};2026-01-{1 + i % 28:02d}T10:00:00;Bonjour, ici {person}, un nid-de-poule rue {i};"
            f"132{1 + i % 16:02d};web;30-44;voirie"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict | list]:
    code = charter([*argv, "--json"])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else {})


def _count(model: type) -> int:
    with ledger_session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def dataset_file(charter_home: Path) -> Path:
    return _csv(charter_home / "data" / "citizen_requests" / "training.csv")


def _hash(capsys, path: Path, chunk: str = "4K") -> dict:
    code, data = _run(capsys, "hash", str(path), "--dataset", "citizen_requests.training", "--chunk-size", chunk)
    assert code == 0, data
    assert isinstance(data, dict)
    return data


def test_hash_then_verify_intact_records_everything(ledger_url: str, dataset_file: Path, capsys) -> None:
    registered = _hash(capsys, dataset_file)
    assert registered["row_count"] == 600
    assert registered["leaves"] > 10
    code, result = _run(capsys, "verify", str(dataset_file), "--dataset", "training", "--use-case", "citizen_requests")
    assert code == 0
    assert result["outcome"] == "intact"
    assert result["incident_id"] is None
    with ledger_session() as s:
        manifest = s.scalars(select(Manifest)).one()
        assert manifest.status == "active"
        assert manifest.document["dataset"] == "citizen_requests.training"
        assert manifest.document["row_count"] == 600
        assert manifest.schema_fingerprint
        assert s.scalars(select(ManifestVerification.outcome)).all() == ["intact"]
        record = s.scalars(select(CheckResultRecord)).one()
        assert (record.check, record.verdict, record.engagements) == ("integrity", "pass", ["surete.2"])
        actions = s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
        assert "manifest.registered" in actions
    assert charter(["audit", "verify"]) == 0


def test_corrupted_copy_exits_1_and_raises_a_complete_incident(ledger_url: str, dataset_file: Path, capsys) -> None:
    _hash(capsys, dataset_file)
    data = bytearray(dataset_file.read_bytes())
    row_start = data.index(b"\nR00400;") + 1  # edit inside data row 401
    data[row_start + 3] = ord("9") if data[row_start + 3] != ord("9") else ord("8")
    corrupted = dataset_file.with_name("training__corrupted.csv")
    corrupted.write_bytes(bytes(data))
    code, result = _run(capsys, "verify", str(corrupted), "--dataset", "citizen_requests.training")
    assert code == 1
    assert result["outcome"] == "data_changed"
    rng = result["facts"]["ranges"][0]
    assert rng["chunk"] == row_start // 4096
    assert rng["bytes"][0] <= row_start + 3 <= rng["bytes"][1]
    assert rng["rows"][0] <= 401 <= rng["rows"][1]
    code, incidents = _run(capsys, "incidents", "list")
    assert code == 0
    assert len(incidents) == 1
    incident = incidents[0]
    for name in ART33_FIELDS:
        assert incident[name] not in (None, "", [], {}), name
    assert incident["breach_type"] == "integrity"
    assert incident["approx_records"] == 600
    assert incident["status"] == "open"
    assert "dataset quarantined" in " ".join(incident["measures_taken"])
    assert incident["facts"]["ranges"][0]["chunk"] == rng["chunk"]
    text = json.dumps(incident, ensure_ascii=False)
    assert not any(v in text for v in PERSONAL_VALUES)
    with ledger_session() as s:
        assert s.scalars(select(ManifestVerification.outcome)).all() == ["data_changed"]
        assert {o.status for o in s.scalars(select(AlertOutbox))} == {"pending"}
        assert s.scalars(select(CheckResultRecord.verdict)).all() == ["fail"]
    code, shown = _run(capsys, "incidents", "show", str(incident["id"]))
    assert code == 0
    assert len(shown["alerts"]) == 2
    assert _run(capsys, "incidents", "ack", str(incident["id"]), "--by", "rssi")[1]["status"] == "acknowledged"
    with ledger_session() as s:
        record_art33(
            s,
            incident["id"],
            "not_required",
            actor="rssi",
            rationale="Restored from a verified backup before any training run: no risk to the data subjects.",
        )
    code, resolved = _run(
        capsys, "incidents", "resolve", str(incident["id"]), "--by", "rssi", "--comment", "restored from backup"
    )
    assert code == 0
    assert resolved["resolved_by"] == "rssi"
    assert resolved["comments"][0]["comment"] == "restored from backup"
    assert charter(["incidents", "ack", str(incident["id"])]) == 2  # resolved cannot be acknowledged
    capsys.readouterr()
    assert charter(["audit", "verify"]) == 0


def test_each_failure_is_named(ledger_url: str, dataset_file: Path, charter_home: Path, capsys) -> None:
    code, result = _run(capsys, "verify", str(dataset_file), "--dataset", "citizen_requests.training")
    assert code == 2
    assert result["outcome"] == "no_manifest"
    _hash(capsys, dataset_file)
    engine = db.get_engine(ledger_url)

    # The manifest document is edited in the database without re-signing.
    with ledger_session() as s:
        manifest = s.scalars(select(Manifest)).one()
        document = {**manifest.document, "row_count": 10}
    with engine.begin() as conn:
        conn.execute(update(Manifest).values(document=document))
    code, result = _run(capsys, "verify", str(dataset_file), "--dataset", "citizen_requests.training")
    assert code == 1
    assert result["outcome"] == "manifest_edited"
    assert result["incident_id"]
    assert charter(["audit", "verify"]) == 1  # the audit chain sees the edited row too
    capsys.readouterr()

    # Re-signed by an attacker's key.
    from charter_guardrails.checks.integrity.manifest import sign_manifest
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forged = sign_manifest(document, Ed25519PrivateKey.generate())
    with engine.begin() as conn:
        conn.execute(
            update(Manifest).values(document=forged.document, signature=forged.signature, key_id=forged.key_id)
        )
    code, result = _run(capsys, "verify", str(dataset_file), "--dataset", "citizen_requests.training")
    assert code == 1
    assert result["outcome"] == "unknown_key"

    # No public key at all: a configuration problem, named, exit 2, no incident.
    (charter_home / "keys" / "signing_ed25519.pub").rename(charter_home / "keys" / "moved.pub.bak")
    incidents_before = _count(Incident)
    code, result = _run(capsys, "verify", str(dataset_file), "--dataset", "citizen_requests.training")
    assert code == 2
    assert result["outcome"] == "key_missing"
    assert _count(Incident) == incidents_before
    with ledger_session() as s:
        assert s.scalars(select(ManifestVerification.outcome).order_by(ManifestVerification.id)).all() == [
            "no_manifest",
            "manifest_edited",
            "unknown_key",
            "key_missing",
        ]


def test_verification_needs_only_the_public_key(
    ledger_url: str, dataset_file: Path, charter_home: Path, capsys
) -> None:
    _hash(capsys, dataset_file)
    (charter_home / "keys" / "signing_ed25519.pem").unlink()
    code, result = _run(capsys, "verify", str(dataset_file), "--dataset", "citizen_requests.training", "--no-record")
    assert code == 0
    assert result["outcome"] == "intact"
    assert result["run_id"] is None
    assert _count(ManifestVerification) == 0


def test_reregistering_supersedes_and_stays_audited(ledger_url: str, dataset_file: Path, capsys) -> None:
    first = _hash(capsys, dataset_file)
    _csv(dataset_file, rows=650, seed=4)
    second = _hash(capsys, dataset_file)
    assert first["merkle_root"] != second["merkle_root"]
    with ledger_session() as s:
        assert s.scalars(select(Manifest.status).order_by(Manifest.id)).all() == ["superseded", "active"]
    assert _run(capsys, "verify", str(dataset_file), "--dataset", "citizen_requests.training")[0] == 0
    assert charter(["audit", "verify"]) == 0


def test_parquet_directory_has_one_leaf_per_file(ledger_url: str, charter_home: Path, capsys) -> None:
    folder = charter_home / "data" / "citizen_requests" / "parts"
    folder.mkdir(parents=True)
    for i in range(3):
        pq.write_table(
            pa.table({"request_id": [f"R{i}{j}" for j in range(50)], "category": ["voirie"] * 50}),
            folder / f"part-{i}.parquet",
        )
    registered = _hash(capsys, folder, chunk="1K")
    assert registered["leaves"] == 3
    assert registered["row_count"] == 150
    assert _run(capsys, "verify", str(folder), "--dataset", "citizen_requests.training")[0] == 0
    pq.write_table(
        pa.table({"request_id": [f"X{j}" for j in range(50)], "category": ["voirie"] * 50}), folder / "part-1.parquet"
    )
    code, result = _run(capsys, "verify", str(folder), "--dataset", "citizen_requests.training")
    assert code == 1
    assert result["facts"]["files"] == {"changed": ["part-1.parquet"]}
    assert result["facts"]["changed_chunks"] == [1]
    (folder / "part-2.parquet").unlink()
    code, result = _run(capsys, "verify", str(folder), "--dataset", "citizen_requests.training")
    assert code == 1
    assert result["facts"]["files"]["missing"] == ["part-2.parquet"]


@pytest.mark.parametrize("problem", ["missing", "empty", "directory", "fifo", "undeclared_dataset"])
def test_bad_input_is_a_clear_error_without_partial_manifest(
    ledger_url: str, charter_home: Path, problem: str, capsys
) -> None:
    path = charter_home / "data" / "input.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset = "citizen_requests.training"
    if problem == "empty":
        path.touch()
    elif problem == "directory":
        path.mkdir()
    elif problem == "fifo":
        os.mkfifo(path)
    elif problem == "undeclared_dataset":
        _csv(path)
        dataset = "citizen_requests.nope"
    code = charter(["hash", str(path), "--dataset", dataset])
    err = capsys.readouterr().err
    expected = {
        "missing": "does not exist",
        "empty": "is empty",
        "directory": "holds no .parquet",
        "fifo": "not a regular file",
        "undeclared_dataset": "has no dataset 'nope'",
    }[problem]
    assert code == 2, err
    assert expected in err, err
    assert _count(Manifest) == 0
    assert _count(AuditEvent) == 0


def test_file_changing_while_hashed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "growing.csv"
    path.write_bytes(b"a;b\n" + b"1;2\n" * 5000)
    with pytest.raises(DatasetFileChanged, match=r"changed while it was hashed|grew|shrank"):
        hash_file(path, chunk_size=1024, on_chunk=lambda i: i == 2 and path.open("ab").write(b"3;4\n"))
    with pytest.raises(DatasetFileChanged):
        hash_file(path, chunk_size=1024, on_chunk=lambda i: i == 1 and os.truncate(path, 3000))

    def rewrite_in_place(index: int) -> None:
        if index == 0:
            os.utime(path, ns=(0, 10**9))  # same size, new mtime: e.g. an editor saving in place

    path.write_bytes(b"a;b\n" + b"1;2\n" * 5000)
    with pytest.raises(DatasetFileChanged, match="size or modification time"):
        hash_file(path, chunk_size=1024, on_chunk=rewrite_in_place)
    path.write_bytes(b"a;b\n" + b"1;2\n" * 5000)
    with pytest.raises(DatasetFileChanged):  # build_manifest raises too: no document exists that could be signed
        build_manifest(
            path,
            use_case="citizen_requests",
            dataset="training",
            chunk_size=1024,
            on_chunk=lambda i: i == 1 and path.open("ab").write(b"5;6\n"),
        )


def test_missing_and_empty_files_raise_named_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetFileMissing, match="does not exist"):
        hash_file(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").touch()
    with pytest.raises(DatasetFileEmpty, match="empty"):
        hash_file(tmp_path / "empty.csv")


def test_unreadable_file_is_refused() -> None:
    """Permission denied. As root, reading is attempted by an unprivileged child process (root ignores file modes)."""
    folder = Path(tempfile.mkdtemp(prefix="charter-unreadable-"))
    try:
        os.chmod(folder, 0o755)  # noqa: S103 - the unprivileged child must reach the file, whose own mode is 000
        path = folder / "secret.csv"
        path.write_text("a;b\n1;2\n")
        os.chmod(path, 0o000)
        if os.geteuid() != 0:
            with pytest.raises(DatasetFileUnreadable, match="permission denied"):
                hash_file(path)
            return
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: drop root, then try to read (no exec: the venv may not be readable by 'nobody')
            status = 1
            try:
                os.close(read_fd)
                os.setgid(65534)
                os.setuid(65534)
                hash_file(path, workers=1)
            except DatasetFileUnreadable as exc:
                os.write(write_fd, str(exc).encode())
                status = 3
            except BaseException as exc:  # noqa: BLE001 - report anything else to the parent
                os.write(write_fd, repr(exc).encode())
            finally:
                os._exit(status)
        os.close(write_fd)
        message = os.read(read_fd, 4096).decode()
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 3, message
        assert "permission denied" in message
        assert "secret.csv" in message
    finally:
        os.chmod(folder / "secret.csv", 0o600)
        (folder / "secret.csv").unlink()
        folder.rmdir()


def test_verify_path_imports_no_heavy_library(tmp_path: Path) -> None:
    """``charter verify`` must start fast: no pandas, pyarrow, Great Expectations or Presidio."""
    code = (
        "import sys\nfrom charter_guardrails.cli.main import main\n"
        "main(['verify', '/nonexistent', '--dataset', 'citizen_requests.training'])\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'great_expectations', 'presidio_analyzer', 'numpy', 'spacy')"
        " if m in sys.modules))"
    )
    env = {**os.environ, "CHARTER_HOME": str(tmp_path)}
    env.pop("CHARTER_LEDGER_URL", None)
    subprocess.run(
        [sys.executable, "-m", "charter_guardrails.cli.main", "ledger", "migrate"],
        env=env,
        capture_output=True,
        check=True,
        cwd=ROOT,
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout + proc.stderr


def test_verify_checks_the_schema_without_alembic_and_agrees_with_it(charter_home: Path, monkeypatch, capsys) -> None:
    from charter_guardrails.checks.integrity.light_ledger import _head_revision_from_files

    assert _head_revision_from_files() == db.head_revision()
    monkeypatch.setenv("CHARTER_LEDGER_URL", f"sqlite:///{charter_home / 'never_migrated.db'}")
    path = _csv(charter_home / "data" / "x.csv", rows=5)
    assert charter(["verify", str(path), "--dataset", "citizen_requests.training"]) == 2
    assert "charter ledger migrate" in capsys.readouterr().err


def test_console_script_exits_promptly_with_its_output_and_commit_kept(
    ledger_url: str, dataset_file: Path, capsys
) -> None:
    """`charter verify` as a process skips the interpreter teardown (``cli.entry``): its exit code,
    its JSON on stdout and its ledger rows must all survive that."""
    _hash(capsys, dataset_file)
    charter_bin = str(Path(sys.executable).parent / "charter")
    env = {**os.environ, "CHARTER_LEDGER_URL": ledger_url}
    intact = subprocess.run(
        [charter_bin, "verify", str(dataset_file), "--dataset", "citizen_requests.training", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert intact.returncode == 0, intact.stderr
    assert json.loads(intact.stdout)["outcome"] == "intact"
    corrupted = dataset_file.with_name("training__appended.csv")
    corrupted.write_bytes(dataset_file.read_bytes() + b"R99999;2026-01-01T10:00:00;ajout;13201;web;30-44;voirie\n")
    failed = subprocess.run(
        [charter_bin, "verify", str(corrupted), "--dataset", "citizen_requests.training", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1, failed.stderr
    reported = json.loads(failed.stdout)
    assert reported["outcome"] == "data_changed"
    assert reported["incident_id"] is not None
    db.reset_caches()
    with ledger_session() as s:
        assert s.scalars(select(ManifestVerification.outcome).order_by(ManifestVerification.id)).all() == [
            "intact",
            "data_changed",
        ]
        assert s.scalars(select(Incident.id)).all() == [reported["incident_id"]]
    assert _count(AlertOutbox) >= 1
    assert charter(["audit", "verify"]) == 0
