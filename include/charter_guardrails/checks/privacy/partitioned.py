"""A large dataset's personal-data scan, partition by partition: the same findings in one process or spread over
workers, merged into one scan report.

A file with more rows than the policy's ``privacy.partition_rows`` (default
:data:`~charter_guardrails.core.policy_privacy.DEFAULT_PARTITION_ROWS`) is cut into row ranges of that many rows
(:func:`plan`). Each range is scanned alone (:func:`scan_partition`: the file is read as a stream up to the
range's last row; a Parquet file's row groups outside the range are not read) and the scans are merged
(:func:`merge`). The single-task check (:func:`.verdict.check_personal_data` on the file) and the DAGs' mapped
tasks run these same three functions, so they record the same findings and the same verdict.

- **exhaustive**: every distinct value of every partition is analysed. A finding counts rows, and its score
  is a mean over rows: counts and score × rows add up over the partitions, so the merged counts are those of
  one scan of the whole file. What a scan decides from a column's values as a whole is decided per partition:
  whether a column reads as free text (NER) and the birth-date column rule. A column read as free text in one
  partition is reported so (with a note naming the partitions).
- **sampling**: each partition draws its proportional share of the sample, ``ceil(n * rows / total)`` rows with
  its own seed (:class:`.report.Window`): a stratified sample of at least ``n`` rows. It keeps the guarantee of a
  simple random sample of ``n`` rows: for a column where a share ``p`` of all the rows hold an entity, the
  chance that every partition misses it is at most ``prod_i (1 - p_i)^(n_i)``, and with ``n_i >= n N_i / N``
  and the concavity of the logarithm that is at most ``(1 - p)^n``.

A partition's scan (:func:`scan_partition`) holds counts, scores and masked examples only: it travels as an XCom
between workers. No raw value leaves the task that read it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.privacy.report import (
    EXHAUSTIVE_GUARANTEE,
    ColumnScan,
    EntityFinding,
    ScanOptions,
    ScanReport,
    Window,
    miss_probability,
    sample_size,
    sampling_guarantee,
)

if TYPE_CHECKING:
    from charter_guardrails.core.policy_models import CsvDialect, Dataset

#: A column read otherwise in different partitions is reported as the first of these it was read as.
_KINDS = ("free_text", "name_like", "structured", "empty")


def _target(dataset: Dataset, path: Path | None) -> tuple[Path, bool] | None:
    """The file to scan and whether it is Parquet, as :func:`.stream.scan_dataset` reads it; ``None`` for a table."""
    from charter_guardrails.core.policy_models import DatasetFormat

    if dataset.format is DatasetFormat.SQL and path is None:
        return None
    target = path or dataset.resolve_path()
    return target, dataset.format is DatasetFormat.PARQUET or target.suffix.lower() == ".parquet" or target.is_dir()


def plan(dataset: Dataset, path: Path | None, options: ScanOptions) -> list[Window | None]:
    """The partitions of the scan: row ranges of ``options.partition_rows`` rows, or ``[None]`` (one scan of the
    whole) for a dataset no longer than that, an SQL table, or a file that cannot be read (its scan says why)."""
    from charter_guardrails.core.errors import DatasetReadError

    target = _target(dataset, path)
    size = options.partition_rows
    if size is None or target is None:
        return [None]
    file, parquet = target
    if not parquet and file.is_file() and file.stat().st_size <= size:
        return [None]  # every row takes at least a byte: no more rows than a partition holds
    try:
        total = count_rows(file, None if parquet else dataset.csv, parquet)
    except DatasetReadError:
        return [None]
    if total <= size:
        return [None]
    count = math.ceil(total / size)
    return [Window(i, count, i * size, min((i + 1) * size, total), total) for i in range(count)]


def count_rows(path: Path, dialect: CsvDialect | None, parquet: bool) -> int:
    """The rows of a CSV or Parquet file (or folder), as the scan reads them (quoted line breaks included):
    Parquet from its footers, CSV in one pass over its first column."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from charter_guardrails.checks.privacy.progress import ReadProgress
    from charter_guardrails.checks.privacy.stream_read import _arrow_csv, _header, _pandas_csv, _Refused
    from charter_guardrails.readers.files import check_csv, check_parquet, parquet_errors

    if parquet:
        check_parquet(path)
        with parquet_errors(path):
            if path.is_dir():
                return int(ds.dataset(path, format="parquet", partitioning="hive").count_rows())
            return int(pq.ParquetFile(path).metadata.num_rows)
    if dialect is None:
        from charter_guardrails.readers.files import detect_csv_dialect

        dialect = detect_csv_dialect(path).as_policy_dialect()
    encoding = check_csv(path, dialect)
    progress = ReadProgress(f"{path.name} (rows)")
    try:
        try:
            first = _header(path, dialect, encoding)[:1]
            return sum(b.num_rows for b in _arrow_csv(path, dialect, encoding, first, progress))
        except _Refused:
            progress.restart()
            return sum(b.num_rows for b in _pandas_csv(path, dialect, None, progress))
    finally:
        progress.close()


def scan_partition(
    dataset: Dataset, path: Path | None, options: ScanOptions, window: Window | None, *, source: str
) -> dict[str, Any]:
    """One partition's scan as JSON-safe sums (no raw value), or its read error; ``window=None``: the whole."""
    from charter_guardrails.checks.privacy.stream import scan_dataset, scan_file
    from charter_guardrails.core.errors import DatasetReadError

    target = _target(dataset, path)
    try:
        if window is None or target is None:
            scan = scan_dataset(dataset, path, options, source=source)
        else:
            file, parquet = target
            scan = scan_file(file, options, dialect=dataset.csv, parquet=parquet, source=source, window=window)
    except DatasetReadError as exc:
        return {"window": window.to_json_dict() if window else None, "read_error": exc.to_json_dict()}
    return {"window": window.to_json_dict() if window else None, **_sums(scan)}


def _finding_sums(finding: EntityFinding) -> dict[str, Any]:
    return {
        "entity_type": finding.entity_type,
        "count": finding.count,
        "share": finding.share,
        "mean_score": finding.mean_score,
        "max_score": finding.max_score,
        "masked_examples": list(finding.masked_examples),
    }


def _sums(scan: ScanReport) -> dict[str, Any]:
    """A scan report, exactly (floats unrounded: JSON keeps them), without its per-value detail."""
    return {
        "mode": scan.mode,
        "rows": scan.rows,
        "scanned_rows": scan.scanned_rows,
        "min_score": scan.min_score,
        "guarantee": scan.guarantee,
        "seconds": scan.seconds,
        "notes": list(scan.notes),
        "columns": [
            {
                "name": c.name,
                "kind": c.kind,
                "rows": c.rows,
                "non_null": c.non_null,
                "distinct": c.distinct,
                "findings": [_finding_sums(f) for f in c.findings],
                "suspects": [_finding_sums(f) for f in c.suspects],
                "notes": list(c.notes),
            }
            for c in scan.columns
        ],
    }


def _finding(sums: Mapping[str, Any]) -> EntityFinding:
    return EntityFinding(
        sums["entity_type"],
        sums["count"],
        sums["share"],
        sums["mean_score"],
        sums["max_score"],
        list(sums["masked_examples"]),
    )


def _column(sums: Mapping[str, Any]) -> ColumnScan:
    findings, suspects = [_finding(f) for f in sums["findings"]], [_finding(f) for f in sums["suspects"]]
    return ColumnScan(
        sums["name"], sums["kind"], sums["rows"], sums["non_null"], sums["distinct"], findings, suspects, sums["notes"]
    )


def merge(parts: Sequence[Mapping[str, Any]], options: ScanOptions, *, source: str) -> ScanReport:
    """The partitions' scans as one report: rows and findings added up, in the order of the partitions.

    A partition that could not be read makes the whole unreadable
    (:class:`~charter_guardrails.core.errors.DatasetReadError`, which the check turns into a failing verdict).
    """
    from charter_guardrails.core.errors import DatasetReadError

    ordered = sorted(parts, key=lambda p: (p["window"] or {}).get("index", 0))
    for part in ordered:
        if "read_error" in part:
            error = part["read_error"]
            raise DatasetReadError(error["kind"], error["message"], path=error.get("path"))
    if not ordered:
        raise ValueError("no partition to merge")
    if len(ordered) == 1:  # one scan of the whole: its report as it was
        only = ordered[0]
        columns = [_column(c) for c in only["columns"]]
        return ScanReport(
            source, only["mode"], only["rows"], only["scanned_rows"], only["min_score"], columns,
            only["guarantee"], only["seconds"], list(only["notes"]),
        )  # fmt: skip
    names = list(dict.fromkeys(c["name"] for p in ordered for c in p["columns"]))
    columns = [_merged_column(name, ordered, options) for name in names]
    total, scanned = sum(p["rows"] for p in ordered), sum(p["scanned_rows"] for p in ordered)
    largest = max(p["window"]["stop"] - p["window"]["start"] for p in ordered)
    note = f"scanned in {len(ordered)} partitions of at most {largest} rows, findings added up"
    return ScanReport(
        source=source,
        mode=ordered[0]["mode"],
        rows=total,
        scanned_rows=scanned,
        min_score=ordered[0]["min_score"],
        columns=columns,
        guarantee=_guarantee(options, ordered[0]["mode"], total, scanned, len(ordered), largest),
        seconds=sum(p["seconds"] for p in ordered),
        notes=[note],
    )


def _merged_column(name: str, parts: Sequence[Mapping[str, Any]], options: ScanOptions) -> ColumnScan:
    """One column over the partitions: rows and findings added up; ``distinct`` the most of a partition."""
    here = [(p["window"]["index"], c) for p in parts for c in p["columns"] if c["name"] == name]
    kinds = {c["kind"] for _, c in here}
    kind = next(k for k in _KINDS if k in kinds) if kinds <= set(_KINDS) else sorted(kinds)[0]
    notes = list(dict.fromkeys(n for _, c in here for n in c["notes"]))
    if len(kinds - {"empty"}) > 1:
        by_kind = {k: [str(i + 1) for i, c in here if c["kind"] == k] for k in sorted(kinds)}
        notes.append("read as " + "; ".join(f"{k} in partition(s) {', '.join(v)}" for k, v in by_kind.items()))
    rows = sum(c["rows"] for _, c in here)
    return ColumnScan(
        name,
        kind,
        rows,
        sum(c["non_null"] for _, c in here),
        max(c["distinct"] for _, c in here),
        findings=_merged_findings([c["findings"] for _, c in here], rows, options),
        suspects=_merged_findings([c["suspects"] for _, c in here], rows, options),
        notes=notes,
    )


def _merged_findings(
    per_part: Sequence[Sequence[Mapping[str, Any]]], rows: int, options: ScanOptions
) -> list[EntityFinding]:
    """Findings per entity type: rows added up, the mean score weighted by rows, the highest score, the first
    masked examples (most frequent values of the earliest partitions)."""
    totals: dict[str, dict[str, Any]] = {}
    for findings in per_part:
        for f in findings:
            acc = totals.setdefault(f["entity_type"], {"count": 0, "weighted": 0.0, "max": 0.0, "examples": []})
            acc["count"] += f["count"]
            acc["weighted"] += f["mean_score"] * f["count"]
            acc["max"] = max(acc["max"], f["max_score"])
            acc["examples"] += [e for e in f["masked_examples"] if e not in acc["examples"]]
    merged = [
        EntityFinding(
            entity,
            t["count"],
            t["count"] / rows if rows else 0.0,
            t["weighted"] / t["count"] if t["count"] else 0.0,
            t["max"],
            t["examples"][: options.max_examples],
        )
        for entity, t in totals.items()
    ]
    return sorted(merged, key=lambda f: (-f.count, f.entity_type))


def _guarantee(options: ScanOptions, mode: str, total: int, scanned: int, count: int, largest: int) -> str:
    """What the merged scan guarantees: every distinct value, or the stratified sample's detection bound."""
    if mode != "sampling":
        return f"{EXHAUSTIVE_GUARANTEE}, partition by partition ({count} partitions of at most {largest} rows)"
    n = sample_size(options.min_detectable_rate, options.confidence)
    if total <= n:
        return sampling_guarantee(options, total)
    return (
        f"sampling, stratified: {scanned} of {total} rows drawn at random in {count} partitions of at most "
        f"{largest} rows, each its share of n = {n} in proportion to its rows (rounded up); a column where at "
        f"least {options.min_detectable_rate:.2%} of the rows hold an entity is found with probability at least "
        f"{1 - miss_probability(options.min_detectable_rate, n):.6f} (asked: {options.confidence}), as with a "
        "simple random sample of n rows"
    )


def scan_delivery(dataset: Dataset, path: Path | None, options: ScanOptions, *, source: str) -> ScanReport:
    """The scan of a dataset in this process: whole, or partition by partition when it is longer than
    ``options.partition_rows`` (the same partitions, scans and merge as the DAGs' mapped tasks)."""
    from charter_guardrails.checks.privacy.stream import scan_dataset

    windows = plan(dataset, path, options)
    if windows == [None]:
        return scan_dataset(dataset, path, options, source=source)
    return merge([scan_partition(dataset, path, options, w, source=source) for w in windows], options, source=source)
