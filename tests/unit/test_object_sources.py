"""Datasets in object storage (issue #16): a loopback S3-compatible server (moto over HTTP), a versioned bucket.

The training dataset of ``citizen_requests`` is declared as an object (``uri: s3://<bucket>/...``, ``conn_id``),
registered with ``charter hash`` and verified with ``charter verify``, as a user runs them: the object is staged
under the data folder, its bytes compared as a file's, and its version compared with the one registered.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.object_store import ACCESS_KEY, CONN_ID, SECRET_KEY, Bucket, connection_json

UC = "citizen_requests"
KEY = "deliveries/citizen_requests/training.csv"


def _policies(folder: Path, uri: str) -> Path:
    """The shipped policies, the training dataset the object ``uri``."""
    import shutil

    from tests.conftest import ROOT

    shutil.copytree(ROOT / "include" / "policies", folder)
    path = folder / f"{UC}.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    training = next(d for d in document["datasets"] if d["id"] == "training")
    training.pop("path")
    training.update({"uri": uri, "conn_id": CONN_ID})
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture
def delivered(
    ledger_url: str, charter_home: Path, s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The sample training CSV in the bucket; the policies folder that declares it as an object."""
    from charter_demo.sample_data import generate
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.core.settings import get_settings

    data_dir = get_settings().data_dir
    generate(data_dir, {UC: load_policy(UC)}, rows=300)
    local = data_dir / UC / "training.csv"
    version = s3_bucket.put(KEY, local)
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(_policies(charter_home / "policies", s3_bucket.uri(KEY))))
    return {"bucket": s3_bucket, "local": local, "version": version, "data_dir": data_dir}


def _charter(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    from charter_guardrails.cli.main import main as charter

    capsys.readouterr()
    code = charter([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_an_object_is_registered_and_verified_at_its_version(delivered: dict[str, Any], capsys) -> None:
    bucket: Bucket = delivered["bucket"]
    code, registered = _charter(capsys, "hash", "--dataset", f"{UC}.training")
    assert code == 0
    assert registered["object"] == bucket.uri(KEY)
    assert registered["version_id"] == delivered["version"]
    assert registered["size_bytes"] == delivered["local"].stat().st_size

    staged = delivered["data_dir"] / ".objects" / "s3" / bucket.name / KEY
    assert staged.read_bytes() == delivered["local"].read_bytes()  # the staged copy is the object's bytes
    code, verdict = _charter(capsys, "verify", "--dataset", f"{UC}.training")
    assert (code, verdict["outcome"]) == (0, "intact")
    assert verdict["facts"]["object"]["version_id"] == delivered["version"]


def test_an_object_written_again_is_a_mismatch_even_with_the_same_bytes(delivered: dict[str, Any], capsys) -> None:
    bucket: Bucket = delivered["bucket"]
    assert _charter(capsys, "hash", "--dataset", f"{UC}.training")[0] == 0
    rewritten = bucket.put(KEY, delivered["local"])  # same bytes, new version
    code, verdict = _charter(capsys, "verify", "--dataset", f"{UC}.training")
    assert (code, verdict["outcome"]) == (1, "data_changed")
    assert f"version id {delivered['version']} registered, {rewritten} now" in verdict["summary"]
    assert verdict["incident_id"] is not None


def test_a_changed_object_is_localised_to_its_chunk(delivered: dict[str, Any], capsys) -> None:
    bucket: Bucket = delivered["bucket"]
    assert _charter(capsys, "hash", "--dataset", f"{UC}.training", "--chunk-size", "4096")[0] == 0
    data = bytearray(delivered["local"].read_bytes())
    data[5000] = ord("Z") if data[5000] != ord("Z") else ord("Y")
    bucket.put(KEY, bytes(data))
    code, verdict = _charter(capsys, "verify", "--dataset", f"{UC}.training")
    assert (code, verdict["outcome"]) == (1, "data_changed")
    assert verdict["facts"]["changed_chunks"] == [1]  # bytes 4096-8191


def test_a_missing_object_or_a_batch_in_another_bucket_is_a_clear_error(delivered: dict[str, Any], capsys) -> None:
    from charter_guardrails.cli.main import main as charter

    bucket: Bucket = delivered["bucket"]
    assert charter(["hash", bucket.uri("deliveries/nothing.csv"), "--dataset", f"{UC}.training"]) == 2
    err = capsys.readouterr().err
    assert f"{bucket.uri('deliveries/nothing.csv')} does not exist" in err
    assert charter(["hash", "s3://another-bucket/x.csv", "--dataset", f"{UC}.training"]) == 2
    assert "outside the store of the dataset's uri" in capsys.readouterr().err


def test_an_unreachable_store_is_retried_and_names_no_credential(
    delivered: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter_guardrails.checks.integrity.object_verification import stage_delivery
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.readers.objects import ObjectStoreUnavailable

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection_json(closed))
    spec = load_policy(UC).training_dataset
    with pytest.raises(ObjectStoreUnavailable) as raised:
        stage_delivery(spec, None, delivered["data_dir"])
    message = str(raised.value)
    assert "cannot be reached" in message
    assert delivered["bucket"].name in message
    for secret in (ACCESS_KEY, SECRET_KEY, closed):
        assert secret not in message
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("s3://bucket/", "must name one object"),
        ("s3://bucket/a/../b.csv", "without '..'"),
        ("s3://key:secret@bucket/a.csv", "must not carry a query, a fragment or credentials"),
        ("gs://bucket/a.csv", "is not an object URI"),
        ("file://server/share/a.csv", "names a local path"),
    ],
)
def test_a_bad_object_uri_is_refused_with_its_reason(uri: str, reason: str) -> None:
    from charter_guardrails.core.errors import ConfigError
    from charter_guardrails.readers.objects import parse_uri

    with pytest.raises(ConfigError, match=reason) as raised:
        parse_uri(uri)
    assert "secret" not in str(raised.value)


def test_a_dataset_has_one_source_and_conn_id_only_with_a_uri(policies: dict[str, Any]) -> None:
    from charter_guardrails.core.policy_models import Dataset
    from pydantic import ValidationError

    base = policies[UC].training_dataset.model_dump(mode="json")
    with pytest.raises(ValidationError, match="one source: path, uri or table, not path and uri"):
        Dataset.model_validate({**base, "uri": "s3://b/k.csv"})
    with pytest.raises(ValidationError, match="only a dataset with a uri has it"):
        Dataset.model_validate({**base, "conn_id": CONN_ID})
    with pytest.raises(ValidationError, match="format: sql needs a table"):
        Dataset.model_validate({**base, "path": None, "uri": "s3://b/k.csv", "format": "sql"})


def test_a_file_uri_is_staged_from_outside_the_data_folder(charter_home: Path, tmp_path: Path) -> None:
    from charter_guardrails.checks.integrity.object_verification import stage_delivery
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.core.settings import get_settings

    source = tmp_path / "elsewhere" / "training.csv"
    source.parent.mkdir()
    source.write_bytes(b"request_id;message\nR1;bonjour\n")
    spec = load_policy(UC).training_dataset.model_copy(update={"path": None, "uri": source.as_uri()})
    staged, info = stage_delivery(spec, None, get_settings().data_dir)
    assert staged.read_bytes() == source.read_bytes()
    assert staged.is_relative_to(get_settings().data_dir.resolve() / ".objects" / "file")
    assert (info.size, info.version_id) == (source.stat().st_size, None)


def test_a_data_subject_request_searches_the_staged_copies_of_an_object(
    ledger_url: str, charter_home: Path, s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """GDPR Art. 15: a person in an object dataset is found in its staged copy under the data folder; the object
    itself, in the team's store, is listed as not searched, with why. Only a keyed hash of the e-mail is kept."""
    from charter_demo.sample_data import Canaries, generate
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.dsr.find import new_request_id, search
    from charter_guardrails.dsr.identifiers import parse_identifier
    from charter_guardrails.dsr.places import OBJECT_NOT_SEARCHED

    person = Canaries.from_seed(20261205)
    data_dir = get_settings().data_dir
    generate(data_dir, {UC: load_policy(UC)}, rows=200, canaries=person)
    s3_bucket.put(KEY, data_dir / UC / "training.csv")
    (data_dir / UC / "training.csv").unlink()  # the delivery is in the bucket only
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(_policies(charter_home / "policies", s3_bucket.uri(KEY))))
    assert _charter(capsys, "hash", "--dataset", f"{UC}.training")[0] == 0  # stages the object

    found = search(parse_identifier(person.email, "email"), new_request_id(), UC).to_json_dict()
    staged = f".objects/s3/{s3_bucket.name}/{KEY}"
    in_objects = [(p["dataset"], p["kind"]) for p in found["places"] if p["path"].endswith(staged)]
    assert in_objects == [("training", "raw")]  # the staged copy (the generated variants hold the person too)
    assert {"place": f"{UC}.training", "reason": OBJECT_NOT_SEARCHED} in found["not_searched"]
    assert person.email not in json.dumps(found)


def test_an_unversioned_bucket_is_staged_and_compared_by_its_etag(charter_home: Path, s3_bucket: Bucket) -> None:
    """A bucket without versioning gives no version id (S3 may say ``null``): the object is read as it is, and a
    rewrite is told by its ETag."""
    from charter_guardrails.checks.integrity.manifest import Outcome
    from charter_guardrails.checks.integrity.object_verification import check_identity, stage_delivery
    from charter_guardrails.checks.integrity.outcome import Verification
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.core.settings import get_settings

    client = s3_bucket.client()
    client.put_bucket_versioning(Bucket=s3_bucket.name, VersioningConfiguration={"Status": "Suspended"})
    client.put_object(Bucket=s3_bucket.name, Key="plain.csv", Body=b"a;b\n1;2\n")
    spec = load_policy(UC).training_dataset.model_copy(
        update={"path": None, "uri": s3_bucket.uri("plain.csv"), "conn_id": CONN_ID}
    )
    staged, first = stage_delivery(spec, None, get_settings().data_dir)
    assert (staged.read_bytes(), first.version_id) == (b"a;b\n1;2\n", None)
    client.put_object(Bucket=s3_bucket.name, Key="plain.csv", Body=b"a;b\n1;3\n")
    _, second = stage_delivery(spec, None, get_settings().data_dir)
    intact = Verification(Outcome.INTACT, UC, "training", str(staged), "intact", manifest_id=1)
    changed = check_identity(intact, {"object": first.facts()}, second)
    assert changed.outcome is Outcome.DATA_CHANGED
    assert f"ETag {first.etag} registered, {second.etag} now" in changed.summary
