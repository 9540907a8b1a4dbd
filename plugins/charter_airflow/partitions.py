"""A dataset stored as many Parquet files, checked one partition per mapped task, then combined.

The ``partitioned_scan`` DAG maps :func:`hash_partition` and :func:`scan_partition` over the
partitions (``.expand()``), so that Celery spreads them over the workers, and :func:`combine`
reduces their outputs:

- **integrity**: each partition's Merkle root comes from
  :func:`charter_guardrails.checks.integrity.hashing.hash_file`, with the chunk size the whole directory
  uses; the dataset root is the Merkle root over the leaves ``file_leaf(name, partition root)``,
  exactly what :func:`charter_guardrails.checks.integrity.manifest.build_manifest` computes for a directory
  of Parquet files in one task;
- **personal data**: each partition is scanned exhaustively by
  :func:`charter_guardrails.checks.privacy.scanner.scan_frame`; findings are additive (rows holding an
  entity, and score × rows), so their union per column and entity type is what one scan of the
  whole table finds. Masked examples are illustrations: the union keeps the first few.

:func:`single_task` computes the same result in one process, from the library alone: the
reference the mapped result must equal. Nothing here carries a raw personal value: findings hold
counts, scores and masked examples only.

No pandas, pyarrow or Presidio at import time (DAG files import this module's name only).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: Masked examples kept per column and entity type in a combined result.
MAX_EXAMPLES = 3


def partition_files(directory: Path) -> list[str]:
    """The partitions of ``directory``: its Parquet files, as sorted POSIX paths relative to it."""
    from charter_guardrails.checks.integrity.manifest import parquet_files

    return [p.relative_to(directory).as_posix() for p in parquet_files(directory)]


def plan(directory: Path, *, algorithm: str = "sha256") -> dict[str, Any]:
    """What every mapped task needs: the partitions and the chunk size the whole directory uses."""
    from charter_guardrails.checks.integrity.hashing import auto_chunk_size

    names = partition_files(directory)
    chunk_size = auto_chunk_size(max((directory / name).stat().st_size for name in names))
    return {"directory": str(directory), "partitions": names, "chunk_size": chunk_size, "algorithm": algorithm}


def hash_partition(directory: str | Path, name: str, *, chunk_size: int, algorithm: str = "sha256") -> dict[str, Any]:
    """Merkle root of one partition (one pass, constant memory)."""
    from charter_guardrails.checks.integrity.hashing import hash_file

    digest = hash_file(Path(directory) / name, algorithm=algorithm, chunk_size=chunk_size, workers=1)
    return {"name": name, "merkle_root": digest.root, "size_bytes": digest.size, "leaf_count": len(digest.chunks)}


def scan_options(
    free_text_columns: Iterable[str] = (), national_identifiers: Iterable[str] = (), phone_region: str = "FR"
) -> Any:
    """Exhaustive scan options: a sample drawn per partition would not add up to a sample of the whole.
    ``national_identifiers`` and ``phone_region``: the policy's ``privacy`` switches of the recognizers."""
    from charter_guardrails.checks.privacy.report import ScanOptions

    return ScanOptions(
        mode="exhaustive",
        free_text_columns=frozenset(free_text_columns),
        n_process=1,
        national_identifiers=frozenset(national_identifiers),
        phone_region=phone_region,
    )


def _additive(report: Any) -> dict[str, Any]:
    """A scan report as sums that combine: rows, and per column and entity type rows and score × rows."""
    columns: dict[str, Any] = {}
    for column in report.columns:
        columns[column.name] = {
            "rows": column.rows,
            "non_null": column.non_null,
            "findings": {
                f.entity_type: {
                    "count": f.count,
                    "score_rows": f.mean_score * f.count,
                    "max_score": f.max_score,
                    "masked_examples": list(f.masked_examples),
                }
                for f in column.findings
            },
        }
    return {"rows": report.rows, "columns": columns}


def scan_partition(
    directory: str | Path,
    name: str,
    *,
    free_text_columns: Sequence[str] = (),
    national_identifiers: Sequence[str] = (),
    phone_region: str = "FR",
) -> dict[str, Any]:
    """Personal data findings of one partition, as additive sums (no raw value)."""
    from charter_guardrails.checks.privacy.scanner import scan_frame
    from charter_guardrails.readers.files import read_parquet

    frame = read_parquet(Path(directory) / name)
    options = scan_options(free_text_columns, national_identifiers, phone_region)
    return {"name": name, **_additive(scan_frame(frame, options, source=name))}


def _findings(columns: Mapping[str, Any], rows: int) -> list[dict[str, Any]]:
    """Sums → the findings of the dataset, sorted by column and entity type; rounded as the library rounds."""
    out = []
    for column in sorted(columns):
        for entity, sums in sorted(columns[column]["findings"].items()):
            count = sums["count"]
            out.append(
                {
                    "column": column,
                    "entity_type": entity,
                    "count": count,
                    "share": round(count / rows if rows else 0.0, 6),
                    "mean_score": round(sums["score_rows"] / count if count else 0.0, 4),
                    "max_score": round(sums["max_score"], 4),
                    "masked_examples": sums["masked_examples"][:MAX_EXAMPLES],
                }
            )
    return out


def combine(
    hashes: Sequence[Mapping[str, Any]], scans: Sequence[Mapping[str, Any]], *, algorithm: str = "sha256"
) -> dict[str, Any]:
    """The reduce step: the Merkle root over the partition digests and the union of the findings."""
    from charter_guardrails.checks.integrity.hashing import merkle_root
    from charter_guardrails.checks.integrity.manifest import file_leaf

    ordered = sorted(hashes, key=lambda h: h["name"])
    names = [h["name"] for h in ordered]
    if len(set(names)) != len(names) or sorted(s["name"] for s in scans) != names:
        raise ValueError(
            f"the hashed partitions {names} and the scanned ones {sorted(s['name'] for s in scans)} differ"
        )
    root = merkle_root([file_leaf(h["name"], h["merkle_root"], algorithm) for h in ordered], algorithm).hex()
    rows = 0
    columns: dict[str, Any] = {}
    for scan in sorted(scans, key=lambda s: s["name"]):
        rows += scan["rows"]
        for column, part in scan["columns"].items():
            total = columns.setdefault(column, {"findings": {}})
            for entity, sums in part["findings"].items():
                acc = total["findings"].setdefault(
                    entity, {"count": 0, "score_rows": 0.0, "max_score": 0.0, "masked_examples": []}
                )
                acc["count"] += sums["count"]
                acc["score_rows"] += sums["score_rows"]
                acc["max_score"] = max(acc["max_score"], sums["max_score"])
                acc["masked_examples"] += [e for e in sums["masked_examples"] if e not in acc["masked_examples"]]
    return {
        "partitions": len(ordered),
        "size_bytes": sum(h["size_bytes"] for h in ordered),
        "merkle_root": root,
        "algorithm": algorithm,
        "rows": rows,
        "findings": _findings(columns, rows),
    }


def single_task(directory: Path, *, free_text_columns: Sequence[str] = (), algorithm: str = "sha256") -> dict[str, Any]:
    """The same result in one task: the library's directory manifest and one scan of the whole table."""
    from charter_guardrails.checks.integrity.manifest import build_manifest
    from charter_guardrails.checks.privacy.scanner import scan_frame
    from charter_guardrails.readers.files import read_parquet

    manifest = build_manifest(directory, use_case="partitioned_scan", dataset=directory.name, algorithm=algorithm)
    frame = read_parquet(directory)
    sums = _additive(scan_frame(frame, scan_options(free_text_columns), source=directory.name))
    return {
        "partitions": manifest["leaf_count"],
        "size_bytes": manifest["size_bytes"],
        "merkle_root": manifest["merkle_root"],
        "algorithm": algorithm,
        "rows": sums["rows"],
        "findings": _findings(sums["columns"], sums["rows"]),
    }


def comparable(result: Mapping[str, Any]) -> str:
    """A result without its masked examples (their choice depends on the order of reading), as canonical JSON."""
    findings = [{k: v for k, v in f.items() if k != "masked_examples"} for f in result["findings"]]
    return json.dumps({**result, "findings": findings}, sort_keys=True)


def write_partitions(source: Path, directory: Path, partitions: int, *, repeat: int = 1) -> list[Path]:
    """Split a dataset file (CSV in a French dialect, or Parquet) into ``partitions`` Parquet files.

    :param repeat: concatenate the rows this many times first (benchmarks: more work per partition).
    """
    import pandas as pd
    from charter_guardrails.readers.files import read_any

    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    frame, _ = read_any(source)
    if repeat > 1:
        frame = pd.concat([frame] * repeat, ignore_index=True)
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("part-*.parquet"):
        old.unlink()
    size = -(-len(frame) // partitions)
    paths = []
    for i in range(partitions):
        path = directory / f"part-{i:04d}.parquet"
        frame.iloc[i * size : (i + 1) * size].to_parquet(path, index=False)
        paths.append(path)
    return paths
