"""Pseudonyms per use case: the pseudonymisation key of a use case is derived from the master key with HKDF-SHA256
(fixed salt, ``info = b"charter-pseudonym:" + use case id``), so the same person has unrelated pseudonyms in two
use cases and a pseudonym cannot be joined across them. Each copy records the derivation that made it, and a copy
made before derivation existed (no record: the master key) can still be matched value by value."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from charter_demo.sample_data import generate
from charter_guardrails.core.settings import get_settings

USE_CASES = ("citizen_requests", "waste_tonnage")


def _hkdf_sha256(master: bytes, salt: bytes, info: bytes) -> bytes:
    """RFC 5869 written out with the standard library, to check the parameters the project documents."""
    prk = hmac.new(salt, master, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def test_each_use_case_has_its_own_key_derived_from_the_master_key(charter_home: Path) -> None:
    from charter_guardrails.checks.privacy.pseudonymise import entity_token, pseudonym
    from charter_guardrails.core.keys import (
        KEY_DERIVATION_HKDF,
        KEY_DERIVATION_MASTER,
        PSEUDONYM_KDF_SALT,
        load_pseudonymisation_key,
        pseudonymisation_key_for,
    )

    master = load_pseudonymisation_key()
    keys = {u: pseudonymisation_key_for(u) for u in USE_CASES}
    for use_case, key in keys.items():
        assert key == _hkdf_sha256(master, PSEUDONYM_KDF_SALT, b"charter-pseudonym:" + use_case.encode())
        assert key == pseudonymisation_key_for(use_case, KEY_DERIVATION_HKDF)
        assert len(key) == 32
        assert key != master
    assert pseudonymisation_key_for("citizen_requests", KEY_DERIVATION_MASTER) == master
    person = "1 85 12 13 123 456 16"
    first, second = (pseudonym(keys[u], person) for u in USE_CASES)
    assert first != second, "the same person must not be joinable across two use cases"
    assert entity_token(keys["citizen_requests"], "PERSON", "Jean Dupont") != entity_token(
        keys["waste_tonnage"], "PERSON", "Jean Dupont"
    )
    with pytest.raises(Exception, match="hkdf-sha256-v1"):
        pseudonymisation_key_for("citizen_requests", "sha1-maison")


@pytest.fixture
def leak_file(charter_home: Path, policies: dict[str, Any]) -> Path:
    data_dir = get_settings().data_dir
    generate(data_dir, policies, rows=60)  # type: ignore[arg-type]
    return data_dir / "citizen_requests" / "training__pii_leak.csv"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_new_copy_uses_the_derived_key_and_records_it(leak_file: Path, tmp_path: Path, suffix: str) -> None:
    from charter_guardrails.checks.privacy.pseudonymise import (
        key_for_copy,
        pseudonym,
        pseudonymise_file,
        read_copy_metadata,
    )
    from charter_guardrails.core.keys import load_pseudonymisation_key, pseudonymisation_key_for
    from charter_guardrails.core.policy import load_policy

    policy = load_policy("citizen_requests")
    target = tmp_path / f"copie{suffix}"
    report = pseudonymise_file(policy, "training", leak_file, target)
    assert report.to_json_dict()["key_derivation"] == "hkdf-sha256-v1"
    metadata = read_copy_metadata(target)
    assert metadata == {
        "use_case": "citizen_requests",
        "dataset": "training",
        "key_derivation": "hkdf-sha256-v1",
        "hash": "hmac-sha256",
    }
    copy = pd.read_parquet(target) if suffix == ".parquet" else pd.read_csv(target, sep=";", dtype=str)
    source = pd.read_csv(leak_file, sep=";", dtype=str)
    derived = pseudonymisation_key_for("citizen_requests")
    assert copy["request_id"].tolist() == [pseudonym(derived, v) for v in source["request_id"]]
    master = load_pseudonymisation_key()
    assert not set(copy["request_id"]) & {pseudonym(master, v) for v in source["request_id"]}
    assert key_for_copy(target, "citizen_requests") == derived
    with pytest.raises(Exception, match="waste_tonnage"):
        key_for_copy(target, "waste_tonnage")  # a copy of one use case is never matched with another's key
    assert "key" not in json.dumps(metadata).replace("key_derivation", "")


def test_an_existing_copy_made_with_the_master_key_stays_reproducible(leak_file: Path, tmp_path: Path) -> None:
    """A copy written before keys were derived per use case has no record: it was made with the master key, and
    re-pseudonymising a value for it still gives the pseudonym it holds (to find a person's rows, for instance)."""
    from charter_guardrails.checks.privacy.pseudonymise import (
        key_for_copy,
        pseudonym,
        pseudonymise_file,
        pseudonymise_frame,
        read_copy_metadata,
    )
    from charter_guardrails.core.keys import load_pseudonymisation_key
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.readers.files import read_dataset

    policy = load_policy("citizen_requests")
    spec = policy.dataset("training")
    master = load_pseudonymisation_key()
    old_csv, old_parquet = tmp_path / "ancienne.csv", tmp_path / "ancienne.parquet"
    frame, _ = pseudonymise_frame(read_dataset(spec, leak_file), spec, master)
    frame.to_csv(old_csv, sep=";", index=False)  # as copies were written before: no record of the key
    frame.to_parquet(old_parquet, index=False)
    source = pd.read_csv(leak_file, sep=";", dtype=str)
    for old in (old_csv, old_parquet):
        assert read_copy_metadata(old) is None
        assert key_for_copy(old, "citizen_requests") == master
        held = pd.read_parquet(old) if old.suffix == ".parquet" else pd.read_csv(old, sep=";", dtype=str)
        value = source["request_id"].iloc[7]
        assert pseudonym(key_for_copy(old, "citizen_requests"), value) == held["request_id"].iloc[7]

    # A copy asked for with the master key (to extend an old one) says so, and matches the old copy.
    again = tmp_path / "prolongement.csv"
    pseudonymise_file(policy, "training", leak_file, again, derivation="master")
    assert read_copy_metadata(again)["key_derivation"] == "master"  # type: ignore[index]
    assert pd.read_csv(again, sep=";", dtype=str)["request_id"].tolist() == frame["request_id"].tolist()
    assert key_for_copy(again, "citizen_requests") == master
