"""Data-subject requests: ``charter dsr find`` finds a canary person everywhere they live, ``charter dsr erase``
takes them out, the changed files verify against their re-signed manifests, and the searched value is never
written anywhere (logs, output, ledger, reports).

The sample data is generated with canaries (one row in 40 of every citizen file carries the canary person in its
free text, the undeclared columns of the ``__pii_leak`` variants carry them too), a batch is copied to the
accepted and quarantine folders as the inference guardrails do, manifests are registered, and one pseudonymised
working copy is made with the project's pseudonymiser. The expected places are computed here by plain substring
search of the forms the generator writes (and of the tokens those forms become), not by the code under test.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from charter_demo.sample_data import Canaries, generate
from charter_guardrails.core.settings import get_settings

from tests.hardening.support_faults import CanarySearch, files_under, ledger_text

RUN = "manual__2026-12-01T10:00:00+00:00"
OTHER_RUN = "manual__2026-11-01T10:00:00+00:00"
QUARANTINED = f"quarantine/{RUN.replace(':', '_')}__inference_batch__drifted.csv"
ACCEPTED = "accepted/manual__2026-11-28T09_00_00+00_00__inference_batch.csv"  # as route_batch names it
#: (use case, dataset, file under the data folder) whose manifests are registered.
REGISTERED = [
    ("citizen_requests", "training", "citizen_requests/training.csv"),
    ("citizen_requests", "inference", "citizen_requests/inference_batch.csv"),
    ("waste_tonnage", "training", "waste_tonnage/training__pii_leak.csv"),
]


def charter(argv: list[str], stdin: str | None = None) -> int:
    from charter_guardrails.cli.main import main

    if stdin is None:
        return main(argv)
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return main(argv)
    finally:
        sys.stdin = saved


@pytest.fixture
def ledger(charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A migrated SQLite ledger in the test's CHARTER_HOME."""
    from charter_guardrails.ledger import db

    url = f"sqlite:///{charter_home / 'ledger.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)


@pytest.fixture
def person(ledger: None, policies: dict[str, Any]) -> Canaries:
    """Sample data with a canary person, registered manifests, batches passed on and held back (SQLite ledger)."""
    return _plant(policies)


@pytest.fixture
def person_on_each_ledger(ledger_url: str, policies: dict[str, Any]) -> Canaries:
    """The same, on SQLite and on PostgreSQL."""
    return _plant(policies)


def _plant(policies: dict[str, Any]) -> Canaries:
    canaries = Canaries.from_seed(20261128)
    data = get_settings().data_dir
    generate(data, policies, rows=120, canaries=canaries)  # type: ignore[arg-type]
    (data / "citizen_requests" / "accepted").mkdir()
    shutil.copyfile(data / "citizen_requests/inference_batch.csv", data / "citizen_requests" / ACCEPTED)
    (data / "citizen_requests" / "quarantine").mkdir()
    shutil.copyfile(data / "citizen_requests/inference_batch__drifted.csv", data / "citizen_requests" / QUARANTINED)
    for use_case, dataset, relative in REGISTERED:
        assert charter(["hash", str(data / relative), "--dataset", f"{use_case}.{dataset}", "--quiet"]) == 0
    return canaries


@pytest.fixture
def trained(person_on_each_ledger: Canaries) -> Path:
    """A refresh run's pseudonymised copy of training.csv, the run's integrity result and its published version;
    and a waste_tonnage version whose run saw none of the person's data (it must not be listed)."""
    from charter_guardrails.checks.privacy.pseudonymise import pseudonymise_file
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.decision.model_registry import publish_version
    from charter_guardrails.dsr.trained import run_folder
    from charter_guardrails.ledger.store import ledger_session

    training = get_settings().data_dir / "citizen_requests/training.csv"
    copy = get_settings().home / "work" / "citizen_requests" / run_folder(RUN) / "training__pseudonymised.parquet"
    pseudonymise_file(load_policy("citizen_requests"), "training", training, copy)
    dataset = ["--dataset", "citizen_requests.training", "--run-id", RUN, "--quiet"]
    assert charter(["verify", str(training), *dataset]) == 0
    with ledger_session() as session:
        for use_case, run in (("citizen_requests", RUN), ("waste_tonnage", OTHER_RUN)):
            publish_version(
                session,
                use_case=use_case,
                run_id=run,
                metrics={},
                artifact_path=None,
                artifact_sha256=None,
                approved_by="claire.martin",
            )
    return copy


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    for encoding in ("utf-8", "latin-1"):
        try:
            return pd.read_csv(path, sep=";", dtype=str, keep_default_na=False, encoding=encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError(path)


def _shown(path: Path) -> str:
    settings = get_settings()
    if path.is_relative_to(settings.data_dir):
        return "data/" + path.relative_to(settings.data_dir).as_posix()
    return path.relative_to(settings.home).as_posix()


def expected_places(forms: list[str], entity_types: list[str]) -> dict[str, int]:
    """Rows per file holding one of the written ``forms``, or a token the pseudonymiser makes of one."""
    from charter_guardrails.checks.privacy.pseudonymise import entity_token
    from charter_guardrails.core.keys import pseudonymisation_key_for

    key = pseudonymisation_key_for("citizen_requests")
    tokens = [entity_token(key, t, f) for t in entity_types for f in forms]
    home = get_settings().home
    out = {}
    for path in [*files_under(get_settings().data_dir), *files_under(home / "work")]:
        if path.suffix not in (".csv", ".parquet"):
            continue
        cells = [[str(v) for v in row] for row in _read(path).itertuples(index=False)]
        rows = sum(1 for row in cells if any(s in cell for cell in row for s in [*forms, *tokens]))
        if rows:
            out[_shown(path)] = rows
    return out


def _find(identifier: str, kind: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = charter(["dsr", "find", "--identifier", "-", "--type", kind, "--json"], stdin=identifier + "\n")
    return code, json.loads(capsys.readouterr().out)


def _find_every_form(c: Canaries, trained: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Each form of the e-mail, the phone and the NIR finds the person in every place they live; returns the outputs."""
    digits = "".join(ch for ch in c.phone if ch.isdigit())
    searches = {
        "email": ([c.email, c.email.upper()], [c.email], ["EMAIL_ADDRESS"]),
        "phone": (
            [c.phone, c.national_phone, "+" + digits, "0" + digits[2:], "0033 " + digits[2:]],
            [c.phone, c.national_phone],
            ["FR_PHONE", "PHONE_NUMBER"],
        ),
        "nir": ([c.nir, c.nir.replace(" ", ""), c.nir.replace(" ", ".")], [c.nir], ["FR_NIR"]),
    }
    outputs = []
    for kind, (given, written, entity_types) in searches.items():
        expected = expected_places(written, entity_types)
        # every place the person lives in: each citizen file, both batches held or passed, the waste leak, the copy
        assert {
            "data/citizen_requests/training.csv",
            f"data/citizen_requests/{ACCEPTED}",
            f"data/citizen_requests/{QUARANTINED}",
            "data/waste_tonnage/training__pii_leak.csv",
            _shown(trained),
        } <= set(expected), (kind, expected)
        hashes = set()
        for identifier in given:
            code, found = _find(identifier, kind, capsys)
            outputs.append(found)
            assert code == 0, (kind, found)
            assert {p["path"]: p["rows"] for p in found["places"]} == expected, kind
            kinds = {p["path"]: p["kind"] for p in found["places"]}
            assert kinds["data/citizen_requests/training.csv"] == "raw"
            assert kinds[f"data/citizen_requests/{QUARANTINED}"] == "quarantine"
            assert kinds[f"data/citizen_requests/{ACCEPTED}"] == "accepted"
            assert kinds[_shown(trained)] == "working_copy"
            assert all(p["columns"] for p in found["places"])
            assert [(m["use_case"], m["version"]) for m in found["model_versions"]] == [("citizen_requests", 1)]
            assert set(found["model_versions"][0]["basis"]) == {"training file root", "working copy"}
            hashes.add(found["identifier_hash"])
        assert len(hashes) == 1, f"the forms of one {kind} are one person"
    return outputs


def test_find_erase_find_verify(
    person_on_each_ledger: Canaries, trained: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c = person_on_each_ledger
    outputs = _find_every_form(c, trained, capsys)
    roots = _active_roots()
    code = charter(
        ["dsr", "erase", "--identifier", "-", "--type", "email", "--request-id", "DPO-2026-0042", "--yes", "--json"],
        stdin=c.email + "\n",
    )
    erased = json.loads(capsys.readouterr().out)
    outputs.append(erased)
    assert code == 0, erased
    assert expected_places([c.email], ["EMAIL_ADDRESS"]) == {}, "rows holding the e-mail remain"
    assert erased["rows_removed"] == sum(f["rows_removed"] for f in erased["files"]) > 0
    assert all(f["columns"] and f["error"] is None for f in erased["files"])
    assert erased["model_versions"][0]["version"] == 1
    from charter_guardrails.checks.privacy.pseudonymise import read_copy_metadata

    assert read_copy_metadata(trained) is not None, "the rewritten copy lost its pseudonymisation record"
    code, again = _find(c.email, "email", capsys)
    outputs.append(again)
    assert code == 1
    assert again["places"] == []

    # the changed files with a registered manifest verify against their new manifests; the chain holds
    for use_case, dataset, relative in REGISTERED:
        target = str(get_settings().data_dir / relative)
        assert charter(["verify", target, "--dataset", f"{use_case}.{dataset}", "--quiet"]) == 0, relative
    new_roots = _active_roots()
    resigned = _events("dsr.manifest_resigned")
    assert {(e["old_root"], e["new_root"]) for e in resigned} == {
        (roots[k], new_roots[k]) for k in roots if roots[k] != new_roots[k]
    }
    assert len(resigned) == len(REGISTERED)
    assert charter(["audit", "verify"]) == 0
    (event,) = _events("dsr.erased", use_case="citizen_requests")
    assert event["request_id"] == "DPO-2026-0042"
    assert event["identifier_hash"] == erased["identifier_hash"]
    assert {f["path"] for f in event["files"] if f["rows_removed"]} >= {"data/citizen_requests/training.csv"}
    assert [m["version"] for m in event["model_versions"]] == [1]

    report = get_settings().reports_dir / "dsr" / "DPO-2026-0042"
    html = (report / "erasure.html").read_text(encoding="utf-8")
    assert "DPO-2026-0042" in html
    assert erased["identifier_hash"] in html
    assert "data/citizen_requests/training.csv" in html
    on_disk = json.loads((report / "erasure.json").read_text(encoding="utf-8"))
    assert on_disk == {k: v for k, v in erased.items() if k != "report"}
    from charter_guardrails.core.keys import load_trusted_public_keys
    from charter_guardrails.reporting.report_signing import verify_report

    for name in ("erasure.json", "erasure.html"):
        assert verify_report(report / name, load_trusted_public_keys()).ok, name
    _assert_no_trace(c, outputs, capsys, caplog)


def _active_roots() -> dict[tuple[str, str], str]:
    from charter_guardrails.checks.integrity.manifest_registry import active_manifest
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        out = {}
        for use_case, dataset, _ in REGISTERED:
            manifest = active_manifest(session, use_case, dataset)
            assert manifest is not None
            out[use_case, dataset] = manifest.merkle_root
        return out


def _events(action: str, use_case: str | None = None) -> list[dict[str, Any]]:
    from charter_guardrails.ledger.models import AuditEvent
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
        return [dict(r.payload) for r in rows if use_case is None or r.use_case == use_case]


def _assert_no_trace(
    c: Canaries, outputs: list[Any], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """No canary value in the commands' output, the log records, the ledger or the report files."""
    search = CanarySearch(c)
    captured = capsys.readouterr()
    search.search("output", "stdout and stderr", captured.out + captured.err + json.dumps(outputs, ensure_ascii=False))
    search.search("logs", "records", "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records))
    search.search("ledger", "every table", ledger_text())
    reports = list(files_under(get_settings().reports_dir / "dsr"))
    assert len(reports) >= 8
    for path in reports:
        search.search_file("reports", path)
    assert search.searched["reports"] > 0
    assert search.searched["ledger"] > 0
    assert not search.hits, [str(h) for h in search.hits]


def test_erasure_keeps_every_other_row_byte_for_byte(person: Canaries, capsys: pytest.CaptureFixture[str]) -> None:
    """Only the person's rows go; the other rows stay exactly as delivered, and a file without a manifest too."""
    biased = get_settings().data_dir / "citizen_requests/training__biased.csv"
    lines = biased.read_bytes().splitlines(keepends=True)
    person_lines = [line for line in lines if person.nir.encode() in line]
    assert person_lines
    # without --yes and without a terminal to confirm at, nothing is changed
    assert charter(["dsr", "erase", "--identifier", person.nir, "--type", "nir", "--request-id", "r-0"]) == 2
    assert "add --yes" in capsys.readouterr().err
    assert biased.read_bytes().splitlines(keepends=True) == lines
    code = charter(
        ["dsr", "erase", "--identifier", person.nir, "--type", "nir", "--request-id", "r-1", "--yes", "--json"]
    )
    assert code == 0
    assert biased.read_bytes().splitlines(keepends=True) == [line for line in lines if line not in person_lines]
    assert charter(["dsr", "erase", "--identifier", person.nir, "--type", "nir", "--request-id", "r-2", "--yes"]) == 1
    assert "0 row(s) erased" in capsys.readouterr().out


def test_a_legal_hold_keeps_its_files_out_of_an_erasure(person: Canaries, capsys: pytest.CaptureFixture[str]) -> None:
    """Data kept for legal claims is outside the right to erasure (GDPR Art. 17(3)(e)): a file under a legal hold
    is reported as kept, unchanged, while the person's rows go from every other file."""
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.retention.holds import add_hold

    data = get_settings().data_dir
    held, other = data / "citizen_requests/training__biased.csv", data / "citizen_requests/training.csv"
    held_bytes = held.read_bytes()
    assert person.nir.encode() in held_bytes
    assert person.nir.encode() in other.read_bytes()
    with ledger_session() as session:
        add_hold(session, use_case="citizen_requests", dataset="training", reason="contentieux 2026-17", actor="dpo")
    argv = ["dsr", "erase", "--identifier", person.nir, "--type", "nir", "--request-id", "r-hold", "--yes", "--json"]
    assert charter(argv) == 0
    out = json.loads(capsys.readouterr().out)
    kept = set(out["kept_under_legal_hold"])
    assert {"data/citizen_requests/training__biased.csv", "data/citizen_requests/training.csv"} <= kept
    assert all(f["rows_removed"] == 0 for f in out["files"] if f["path"] in kept)
    assert all(f["held_by"] == ["legal hold #1 (dataset training)"] for f in out["files"] if f["path"] in kept)
    assert held.read_bytes() == held_bytes
    erased = {f["path"] for f in out["files"] if f["rows_removed"]}
    assert "data/waste_tonnage/training__pii_leak.csv" in erased
    assert person.nir.encode() not in (data / "waste_tonnage/training__pii_leak.csv").read_bytes()


def test_unknown_and_empty_use_cases(
    person: Canaries, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert charter(["dsr", "find", "--identifier", person.email, "--type", "email", "--use-case", "nope"]) == 2
    assert "no policy for use case 'nope'" in capsys.readouterr().err
    assert charter(["dsr", "find", "--identifier", "", "--type", "email"]) == 2
    assert "empty" in capsys.readouterr().err
    assert charter(["dsr", "find", "--identifier", person.email, "--type", "email", "--request-id", "../x"]) == 2
    capsys.readouterr()
    # A use case whose data folder holds nothing: searched, found nowhere (exit 1), and reported as such.
    shutil.rmtree(get_settings().data_dir / "waste_tonnage")
    code, _ = _find(person.email, "email", capsys)
    assert code == 0  # still in citizen_requests
    code = charter(["dsr", "find", "--identifier", person.email, "--type", "email", "--use-case", "waste_tonnage"])
    assert code == 1
    assert "found nowhere (0 files, 0 rows searched)" in capsys.readouterr().out
