"""Corruption campaign: ≥ 1,000 seeded corruptions of CSV and Parquet files and of their signed
manifests. Every one must be detected, data corruptions must be localised to the right chunk
(and, for CSV, the right rows), and ≥ 200 clean re-verifications must all pass.

Files are small and the chunk size is 256 bytes, so each file spans 15–40 leaves.
"""

from __future__ import annotations

import copy
import io
import json
import random
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from charter_guardrails.checks.integrity.hashing import hash_file, leaf_hash, merkle_root, node_hash
from charter_guardrails.checks.integrity.manifest import Outcome, build_manifest, sign_manifest
from charter_guardrails.checks.integrity.verification import ManifestSnapshot, verify_file
from charter_guardrails.core.keys import key_id
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SEED = 20260101
CHUNK = 256
FIRST = ["Élodie", "Noël", "Zoé", "Jérôme", "Hélène", "François", "Inès", "Loïc", "Maëlle", "Aurélien"]
LAST = ["Martin", "Bernard", "Dubois", "Lefèvre", "Girard", "Mercier", "Faure", "André", "Roussel", "Müller"]
STREETS = ["rue de la République", "cours Julien", "boulevard Baille", "avenue du Prado", "rue d'Aubagne"]
CATEGORIES = ["voirie", "propreté", "éclairage", "déchets"]


def _rows(rng: random.Random, n: int) -> list[list[str]]:
    rows = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        rows.append(
            [
                f"R{rng.randrange(10**6):06d}-{i}",
                f"{first} {last}",
                f"06 {rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10, 99)}",
                f"{rng.randrange(1, 200)} {rng.choice(STREETS)}",
                rng.choice(CATEGORIES),
                f"{rng.uniform(0, 100):.2f}".replace(".", ","),
            ]
        )
    return rows


HEADER = ["request_id", "name", "phone", "address", "category", "score"]


def _csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    return ("\n".join(";".join(r) for r in [header, *rows]) + "\n").encode("utf-8")


def _parquet_bytes(rows: list[list[str]]) -> bytes:
    columns = list(zip(*rows, strict=True))
    table = pa.table({name: list(col) for name, col in zip(HEADER, columns, strict=True)})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="NONE", use_dictionary=False, write_statistics=False)
    return sink.getvalue()


@dataclass
class Base:
    kind: str
    rows: list[list[str]]
    data: bytes
    path: Path
    snapshot: ManifestSnapshot


def _snapshot(document: dict, signature: str, kid: str, ident: int = 1) -> ManifestSnapshot:
    return ManifestSnapshot(
        ident,
        1,
        document,
        signature,
        kid,
        document["merkle_root"],
        int(document["size_bytes"]),
        document.get("row_count"),
    )


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> dict:
    rng = random.Random(SEED)
    trusted = Ed25519PrivateKey.generate()
    other = Ed25519PrivateKey.generate()
    root = tmp_path_factory.mktemp("campaign")
    bases: list[Base] = []
    for i in range(4):
        for kind in ("csv", "parquet"):
            rows = _rows(rng, rng.randrange(60, 90))
            data = _csv_bytes(HEADER, rows) if kind == "csv" else _parquet_bytes(rows)
            path = root / f"base{i}.{kind}"
            path.write_bytes(data)
            signed = sign_manifest(
                build_manifest(path, use_case="uc", dataset="ds", chunk_size=CHUNK, run_id="register"), trusted
            )
            bases.append(Base(kind, rows, data, path, _snapshot(signed.document, signed.signature, signed.key_id)))
    return {
        "rng": rng,
        "trusted": trusted,
        "other": other,
        "keys": {key_id(trusted.public_key()): trusted.public_key()},
        "bases": bases,
        "dir": root,
    }


def _first_difference(a: bytes, b: bytes) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def _mutate(base: Base, case: str, rng: random.Random, others: list[Base]) -> tuple[bytes, int | None]:
    """(mutated bytes, the data row that was edited, when one was)."""
    data, rows = base.data, base.rows
    encode = _csv_bytes if base.kind == "csv" else (lambda _h, r: _parquet_bytes(r))
    if case == "bit_flip":
        out = bytearray(data)
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            pos = rng.randrange(len(out))
            out[pos] ^= 1 << rng.randrange(8)
        return bytes(out), None
    if case == "truncate":
        return data[: rng.randrange(1, len(data))], None
    if case == "append":
        return data + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))), None
    if case == "edit_cell":
        new = [list(r) for r in rows]
        r, c = rng.randrange(len(new)), rng.randrange(1, len(HEADER))
        new[r][c] = (
            new[r][c] + rng.choice(["x", "1", "é", " "])
            if rng.random() < 0.5
            else new[r][c][:-1] + rng.choice("0123456789")
        )
        return encode(HEADER, new), r + 1
    if case == "delete_row":
        new = [list(r) for r in rows]
        r = rng.randrange(len(new))
        del new[r]
        return encode(HEADER, new), r + 1
    if case == "insert_row":
        new = [list(r) for r in rows]
        r = rng.randrange(len(new) + 1)
        new.insert(r, _rows(rng, 1)[0])
        return encode(HEADER, new), r + 1
    if case == "swap_rows":
        new = [list(r) for r in rows]
        a, b = sorted(rng.sample(range(len(new)), 2))
        new[a], new[b] = new[b], new[a]
        return encode(HEADER, new), a + 1
    if case == "reencode_latin1":
        return data.decode("utf-8").encode("latin-1"), None
    if case == "swap_file":
        return rng.choice([o for o in others if o.kind == base.kind and o is not base]).data, None
    raise AssertionError(case)


DATA_CASES = {  # case: (CSV cases, Parquet cases)
    "bit_flip": (150, 100),
    "truncate": (60, 40),
    "append": (60, 40),
    "edit_cell": (100, 50),
    "delete_row": (50, 30),
    "insert_row": (50, 30),
    "swap_rows": (50, 30),
    "reencode_latin1": (20, 0),
    "swap_file": (30, 20),
}
MANIFEST_CASES = {
    "manifest_edited": (60, 30),
    "manifest_rebuilt_for_bad_data": (20, 10),
    "signed_by_other_key": (30, 15),
    "other_key_claims_trusted_id": (15, 10),
}


def test_campaign_has_at_least_1000_cases_over_csv_and_parquet() -> None:
    plan = {**DATA_CASES, **MANIFEST_CASES}
    assert sum(a + b for a, b in plan.values()) >= 1000
    assert sum(a for a, _ in plan.values()) >= 300
    assert sum(b for _, b in plan.values()) >= 300


def test_merkle_tree_follows_rfc6962() -> None:
    """Check the tree against a direct transcription of RFC 6962 §2.1 and its domain separation."""

    def mth(items: list[bytes]) -> bytes:
        if len(items) == 1:
            return leaf_hash(items[0])
        k = 1
        while k * 2 < len(items):
            k *= 2
        return node_hash(mth(items[:k]), mth(items[k:]))

    for n in range(1, 34):
        items = [bytes([i]) * (i + 1) for i in range(n)]
        assert merkle_root([leaf_hash(x) for x in items]).hex() == mth(items).hex()
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(left, right) != leaf_hash(left + right)  # a node is never a leaf (second-preimage defence)


def test_chunked_digest_does_not_depend_on_worker_count(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(random.Random(1).randbytes(CHUNK * 37 + 11))
    roots = {hash_file(path, chunk_size=CHUNK, workers=w).root for w in (1, 2, 3, 8)}
    assert len(roots) == 1
    one_leaf = hash_file(path, chunk_size=10**6)
    assert one_leaf.root == leaf_hash(path.read_bytes()).hex()


def test_leaves_read_in_pieces_equal_the_whole_chunk_digest(tmp_path: Path) -> None:
    """A leaf larger than the read piece (1 MiB) is hashed piece by piece: its digest and its newline
    count must be those of the whole chunk."""
    rng = random.Random(7)
    data = b"".join(rng.randbytes(rng.randrange(1, 200)).replace(b"\n", b"") + b"\n" for _ in range(40_000))[
        : 5 * 1024 * 1024 + 123
    ]
    path = tmp_path / "rows.csv"
    path.write_bytes(data)
    chunk = 3 * 1024 * 1024 + 17  # not a multiple of the piece size
    digest = hash_file(path, chunk_size=chunk, count_newlines=True, workers=2)
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    assert [c.digest for c in digest.chunks] == [leaf_hash(p).hex() for p in pieces]
    assert [c.newlines for c in digest.chunks] == [p.count(b"\n") for p in pieces]
    assert [c.ends_with_newline for c in digest.chunks] == [p.endswith(b"\n") for p in pieces]
    assert digest.root == merkle_root([leaf_hash(p) for p in pieces]).hex()


CHILD_JOB = """
import json, sys
from pathlib import Path
from charter_guardrails.checks.integrity.hash_job import HashJob
path, chunk = Path(sys.argv[1]), int(sys.argv[2])
out = {}
job = HashJob(path, isolate=True, chunk_size=chunk, count_newlines=True)
out["forked"] = job._pid is not None
digest = job.result()
out["root"], out["chunks"] = digest.root, [(c.digest, c.newlines) for c in digest.chunks]
for name in ("missing.csv", "empty.csv"):
    try:
        HashJob(path.with_name(name), isolate=True).result()
    except Exception as exc:
        out[name] = [type(exc).__name__, str(exc)]
cancelled = HashJob(path, isolate=True, chunk_size=chunk)
cancelled.cancel()
out["cancelled"] = cancelled._pid is None and cancelled._read_fd is None
print(json.dumps(out))
"""


def test_hash_job_in_a_child_process_returns_the_same_digest_and_errors(tmp_path: Path) -> None:
    """``HashJob(isolate=True)``, the console script's path, hashes in a forked child process: the
    digest and the errors must be those of :func:`hash_file` in this process."""
    path = tmp_path / "rows.csv"
    path.write_bytes(random.Random(5).randbytes(CHUNK * 9 + 3))
    (tmp_path / "empty.csv").write_bytes(b"")
    done = subprocess.run(
        [sys.executable, "-c", CHILD_JOB, str(path), str(CHUNK)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    expected = hash_file(path, chunk_size=CHUNK, count_newlines=True)
    assert out["forked"]
    assert out["cancelled"]
    assert out["root"] == expected.root
    assert out["chunks"] == [[c.digest, c.newlines] for c in expected.chunks]
    assert out["missing.csv"][0] == "DatasetFileMissing"
    assert "does not exist" in out["missing.csv"][1]
    assert out["empty.csv"][0] == "DatasetFileEmpty"


def test_corruption_campaign_detects_and_localises_everything(campaign: dict, tmp_path: Path) -> None:
    rng: random.Random = campaign["rng"]
    bases: list[Base] = campaign["bases"]
    trusted_keys = campaign["keys"]
    tally: Counter[str] = Counter()
    missed: list[str] = []
    target = tmp_path / "under_test"
    for case, (n_csv, n_parquet) in DATA_CASES.items():
        for kind, count in (("csv", n_csv), ("parquet", n_parquet)):
            for _ in range(count):
                base = rng.choice([b for b in bases if b.kind == kind])
                mutated, edited_row = _mutate(base, case, rng, bases)
                if mutated == base.data:  # e.g. two equal rows swapped: not a corruption, draw again
                    mutated, edited_row = _mutate(base, "bit_flip", rng, bases)
                path = target.with_suffix(f".{kind}")
                path.write_bytes(mutated)
                result = verify_file(
                    path, base.snapshot, use_case="uc", dataset="ds", trusted_keys=trusted_keys, workers=2
                )
                tally[f"{kind}:{case}"] += 1
                if result.outcome is not Outcome.DATA_CHANGED:
                    missed.append(f"{kind}:{case} -> {result.outcome}")
                    continue
                first_diff = _first_difference(base.data, mutated)
                chunk = first_diff // CHUNK
                assert result.facts["first_changed_chunk"] == chunk, (kind, case, first_diff)
                first_range = result.facts["ranges"][0]
                assert first_range["chunk"] == chunk
                assert first_range["bytes"][0] == chunk * CHUNK <= first_diff <= first_range["bytes"][1]
                if len(mutated) == len(base.data):  # in place: exactly the chunks holding a changed byte
                    differing = sorted({i // CHUNK for i in range(len(mutated)) if mutated[i] != base.data[i]})
                    assert result.facts["changed_chunk_count"] == len(differing)
                    assert result.facts["changed_chunks"] == differing[:20]
                if kind == "csv" and edited_row is not None and case == "edit_cell":
                    assert first_range["rows"][0] <= edited_row <= first_range["rows"][1], (first_range, edited_row)
    assert missed == [], missed[:10]
    assert sum(tally.values()) == sum(a + b for a, b in DATA_CASES.values())


def test_manifest_tampering_campaign(campaign: dict, tmp_path: Path) -> None:
    rng: random.Random = campaign["rng"]
    bases: list[Base] = campaign["bases"]
    trusted_keys, other = campaign["keys"], campaign["other"]
    missed: list[str] = []
    count = 0
    for case, (n_csv, n_parquet) in MANIFEST_CASES.items():
        for kind, n in (("csv", n_csv), ("parquet", n_parquet)):
            for _ in range(n):
                base = rng.choice([b for b in bases if b.kind == kind])
                snap = base.snapshot
                document = copy.deepcopy(snap.document)
                path = base.path
                if case == "manifest_edited":
                    field = rng.choice(
                        [
                            "merkle_root",
                            "chunk",
                            "row_count",
                            "size_bytes",
                            "dataset_name",
                            "created_at",
                            "lines",
                            "run_id",
                        ]
                    )
                    if field == "merkle_root":
                        document["merkle_root"] = rng.randbytes(32).hex()
                    elif field == "chunk":
                        document["chunks"][rng.randrange(len(document["chunks"]))]["digest"] = rng.randbytes(32).hex()
                    elif field == "row_count":
                        document["row_count"] = (document["row_count"] or 0) + rng.randrange(1, 100)
                    elif field == "size_bytes":
                        document["size_bytes"] += 1
                    elif field == "lines" and kind == "csv":
                        document["chunks"][0]["lines"] = [1, 999]
                    else:
                        document[field if field != "lines" else "run_id"] = "edited-" + str(rng.random())
                    forged = ManifestSnapshot(
                        1,
                        1,
                        document,
                        snap.signature,
                        snap.key_id,
                        document["merkle_root"],
                        int(document["size_bytes"]),
                        snap.row_count,
                    )
                    expected = {Outcome.MANIFEST_EDITED}
                else:
                    mutated, _ = _mutate(
                        base,
                        rng.choice(
                            ["bit_flip", "edit_cell", "truncate"] if kind == "csv" else ["edit_cell", "swap_rows"]
                        ),
                        rng,
                        bases,
                    )
                    path = tmp_path / f"bad.{kind}"
                    path.write_bytes(mutated)
                    rebuilt = build_manifest(path, use_case="uc", dataset="ds", chunk_size=CHUNK, run_id="register")
                    if (
                        case == "manifest_rebuilt_for_bad_data"
                    ):  # attacker recomputes the manifest, keeps the old signature
                        rebuilt["key_id"] = snap.key_id
                        forged = _snapshot(rebuilt, snap.signature, snap.key_id)
                        expected = {Outcome.MANIFEST_EDITED}
                    elif case == "signed_by_other_key":
                        signed = sign_manifest(rebuilt, other)
                        forged = _snapshot(signed.document, signed.signature, signed.key_id)
                        expected = {Outcome.UNKNOWN_KEY}
                    else:  # signed by another key but claiming the trusted key's id
                        signed = sign_manifest(rebuilt, other)
                        document = {**signed.document, "key_id": snap.key_id}
                        forged = _snapshot(document, signed.signature, snap.key_id)
                        expected = {Outcome.MANIFEST_EDITED}
                result = verify_file(path, forged, use_case="uc", dataset="ds", trusted_keys=trusted_keys, workers=1)
                count += 1
                if result.outcome not in expected:
                    missed.append(f"{kind}:{case} -> {result.outcome}")
                assert result.raises_incident
    assert missed == [], missed[:10]
    assert count == sum(a + b for a, b in MANIFEST_CASES.values())


def test_no_false_positive_on_clean_reverifications(campaign: dict, tmp_path: Path) -> None:
    """200+ clean verifications: the registered file, and byte-identical copies written later (new inode and mtime)."""
    bases: list[Base] = campaign["bases"]
    outcomes: Counter[str] = Counter()
    for i in range(240):
        base = bases[i % len(bases)]
        path = base.path
        if i % 2:
            path = tmp_path / f"copy{i}.{base.kind}"
            path.write_bytes(base.data)
        result = verify_file(
            path, base.snapshot, use_case="uc", dataset="ds", trusted_keys=campaign["keys"], workers=1 + i % 3
        )
        outcomes[result.outcome.value] += 1
    assert outcomes == Counter({"intact": 240})


def test_peak_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    """Hash a 32 MiB and a 512 MiB (sparse) file in fresh processes: the peak RSS stays flat and small."""
    import subprocess
    import sys

    # VmHWM, not ru_maxrss: ru_maxrss survives exec and would count the (large) pytest parent at fork time.
    code = (
        "import sys\nfrom charter_guardrails.checks.integrity.hashing import hash_file\nhash_file(sys.argv[1])\n"
        "print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:')) // 1024)"
    )
    peaks = {}
    for size_mib in (32, 512):
        path = tmp_path / f"sparse_{size_mib}.bin"
        with path.open("wb") as handle:
            handle.truncate(size_mib * 1024 * 1024)
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
        peaks[size_mib] = int(out.stdout.strip())
        path.unlink()
    assert peaks[512] - peaks[32] < 40, peaks  # MiB, for 480 MiB more data: buffers are per worker, not per file size
    assert peaks[512] < 150, peaks
