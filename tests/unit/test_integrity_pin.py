"""The pinned reference of a verified file, and the checks of a later read against it (checks/integrity/pin.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from charter_guardrails.checks.integrity.manifest import Outcome, build_manifest
from charter_guardrails.checks.integrity.outcome import Verification
from charter_guardrails.checks.integrity.pin import PinnedFile, copy_pinned, pin_of, verify_pinned
from charter_guardrails.core.errors import ConfigError

ROWS = 4000


def _delivery(data_dir: Path) -> Path:
    path = data_dir / "uc" / "delivery.csv"
    path.parent.mkdir(parents=True)
    lines = ["request_id;amount;city"] + [f"REQ-{i:05d};{i * 7 % 1000};Lyon" for i in range(ROWS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def pinned(tmp_path: Path) -> tuple[Path, PinnedFile, dict]:
    """A delivery, its manifest document (several chunks) and the pin of its intact verification."""
    data_dir = tmp_path / "data"
    path = _delivery(data_dir)
    document = build_manifest(path, use_case="uc", dataset="training", chunk_size=16 * 1024)
    assert len(document["chunks"]) > 3
    intact = Verification(Outcome.INTACT, "uc", "training", str(path), "intact", manifest_id=7, row_count=ROWS)
    pin = pin_of(intact, document, data_dir)
    assert pin is not None
    return path, pin, document


def test_the_pin_holds_digests_of_the_verified_bytes_and_no_value(pinned: tuple[Path, PinnedFile, dict]) -> None:
    path, pin, document = pinned
    assert pin.path == "uc/delivery.csv"
    assert (pin.algorithm, pin.merkle_root, pin.size_bytes) == ("sha256", document["merkle_root"], path.stat().st_size)
    assert (pin.manifest_id, pin.row_count, pin.version_id) == (7, ROWS, None)
    as_json = json.dumps(pin.to_json_dict())
    assert "REQ-" not in as_json
    assert "Lyon" not in as_json
    assert PinnedFile.from_json_dict(json.loads(as_json)) == pin
    with pytest.raises(ConfigError, match="malformed"):
        PinnedFile.from_json_dict({"path": "uc/delivery.csv"})


def test_no_pin_unless_the_verification_was_intact(tmp_path: Path, pinned: tuple[Path, PinnedFile, dict]) -> None:
    path, _, document = pinned
    changed = Verification(Outcome.DATA_CHANGED, "uc", "training", str(path), "changed", manifest_id=7)
    assert pin_of(changed, document, tmp_path / "data") is None
    intact = Verification(Outcome.INTACT, "uc", "training", str(path), "intact", manifest_id=7)
    with pytest.raises(ConfigError, match="outside the data folder"):
        pin_of(intact, document, tmp_path / "elsewhere")


def test_the_verified_file_matches_its_pin(pinned: tuple[Path, PinnedFile, dict]) -> None:
    path, pin, document = pinned
    for doc in (document, None):
        verification = verify_pinned(path, pin, document=doc)
        assert verification.outcome is Outcome.INTACT
        assert verification.to_check_result().verdict.value == "pass"
        assert verification.incident_draft("run") is None


def test_a_changed_byte_fails_with_the_integrity_verdict_and_incident(pinned: tuple[Path, PinnedFile, dict]) -> None:
    path, pin, document = pinned
    data = bytearray(path.read_bytes())
    offset = len(data) // 2
    data[offset] = ord("9") if data[offset] != ord("9") else ord("8")  # same size, one digit
    path.write_bytes(bytes(data))

    verification = verify_pinned(path, pin, document=document)
    assert verification.outcome is Outcome.DATA_CHANGED
    result = verification.to_check_result()
    assert (result.check, result.verdict.value, result.severity.value) == ("integrity", "fail", "critical")
    assert "no longer matches the bytes verified in this run" in result.summary
    assert "deliver the file again" in result.summary
    chunk = offset // pin.chunk_size
    assert result.evidence["changed_chunks"] == [chunk]  # localised with the manifest's chunk list
    first_row, last_row = result.evidence["ranges"][0]["rows"]
    assert first_row <= data[:offset].count(b"\n") <= last_row + 1
    incident = verification.incident_draft("run-1")
    assert incident is not None
    assert (incident.breach_type.value, incident.run_id, incident.approx_records) == ("integrity", "run-1", ROWS)
    # without the manifest's chunk list the mismatch is still found, not localised
    assert verify_pinned(path, pin).to_check_result().evidence["changed_chunks"] == []
    assert verify_pinned(path, pin).outcome is Outcome.DATA_CHANGED


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("truncated", ") changed"),
        ("appended", ") changed"),
        ("emptied", "it is now empty"),
        ("missing", "it no longer exists"),
    ],
)
def test_a_truncated_grown_emptied_or_missing_file_fails(
    pinned: tuple[Path, PinnedFile, dict], case: str, said: str
) -> None:
    path, pin, document = pinned
    data = path.read_bytes()
    if case == "truncated":
        path.write_bytes(data[: len(data) - 100])
    elif case == "appended":
        path.write_bytes(data + b"REQ-99999;1;Lyon\n")
    elif case == "emptied":
        path.write_bytes(b"")
    else:
        path.unlink()
    verification = verify_pinned(path, pin, document=document)
    assert verification.outcome is Outcome.DATA_CHANGED
    assert verification.to_check_result().verdict.value == "fail"
    assert said in verification.summary
    assert verification.incident_draft("run") is not None


def test_the_copy_is_kept_only_when_it_is_the_verified_file(
    tmp_path: Path, pinned: tuple[Path, PinnedFile, dict]
) -> None:
    path, pin, document = pinned
    target = tmp_path / "work" / "training__verified.csv"
    assert copy_pinned(path, pin, target, document=document).intact
    assert target.read_bytes() == path.read_bytes()

    path.write_bytes(path.read_bytes().replace(b"Lyon", b"Nice", 1))  # swapped after verification
    refused = copy_pinned(path, pin, target.with_name("again.csv"), document=document)
    assert refused.outcome is Outcome.DATA_CHANGED
    assert Path(refused.path).name == "delivery.csv"  # the verdict names the delivery, not the copy
    assert not target.with_name("again.csv").exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["training__verified.csv"]  # no partial copy left

    path.unlink()
    assert copy_pinned(path, pin, target, document=document).outcome is Outcome.DATA_CHANGED
    assert target.exists()  # a refused copy leaves a file already there as it was


def test_a_directory_of_parquet_files_is_pinned_and_copied_file_by_file(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data_dir = tmp_path / "data"
    folder = data_dir / "uc" / "delivery"
    folder.mkdir(parents=True)
    for part in range(3):
        table = pa.table({"request_id": [f"REQ-{part}-{i}" for i in range(200)], "amount": list(range(200))})
        pq.write_table(table, folder / f"part-{part}.parquet")
    document = build_manifest(folder, use_case="uc", dataset="training")
    intact = Verification(Outcome.INTACT, "uc", "training", str(folder), "intact", manifest_id=3)
    pin = pin_of(intact, document, data_dir)
    assert pin is not None
    assert pin.format == "parquet_dir"
    with pytest.raises(ConfigError, match="manifest #3 of the verified directory is needed"):
        verify_pinned(folder, pin)

    target = tmp_path / "work" / "training__verified"
    assert copy_pinned(folder, pin, target, document=document).intact
    assert sorted(p.name for p in target.iterdir()) == ["part-0.parquet", "part-1.parquet", "part-2.parquet"]

    pq.write_table(pa.table({"request_id": ["REQ-x"], "amount": [1]}), folder / "part-1.parquet")
    refused = copy_pinned(folder, pin, tmp_path / "work" / "again", document=document)
    assert refused.outcome is Outcome.DATA_CHANGED
    assert refused.to_check_result().evidence["files"] == {"changed": ["part-1.parquet"]}
    assert not (tmp_path / "work" / "again").exists()
