"""`make bench-sources`: the guardrails on a large PostgreSQL table, in the database, in bounded worker memory.

A scratch PostgreSQL database on 127.0.0.1:5432 (user postgres) gets ``BENCH_SOURCES_ROWS`` rows (default
10,000,000) of waste-tonnage-like data by COPY, with its primary key ``(commune, week, flux)``. Then, each in a
child process of its own whose peak RSS (``VmHWM``, its own since exec) is reported:

1. **baseline**: the rows read in key order from a server-side cursor and dropped: the least any check that
   looks at every row must pay;
2. **manifest**: the table's signed-manifest facts (``checks.integrity.table_hashing.hash_table``: canonical rows
   in key order, leaves over key ranges); the ratio to the baseline is printed;
3. **quality**: the ``waste_tonnage.training`` suite through GX's SQL datasource (``validate_table``: metrics
   computed by SQL in the database).

Target: each child's peak RSS <= 1 GiB (judged at 10,000,000 rows). The 1-minute load average is printed at the
start and at the end; the times count only when the start is below 0.5. The database is dropped afterwards,
also on failure. Smoke size for CI: ``make bench-sources-smoke`` (``BENCH_SOURCES_ROWS=50000``). Exit 1 when a
judged target is missed.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_quality import PG_ADMIN_URL, _status_kib, load_tonnages  # noqa: E402

TARGET_RSS = 1 << 30
JUDGED_FROM_ROWS = 10_000_000


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def _sqlalchemy(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def load(url: str, rows: int) -> float:
    """COPY ``rows`` synthetic rows into ``tonnages``, then add its primary key; the seconds it took."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        load_tonnages(conn, rows, progress=True)
        conn.execute("ALTER TABLE tonnages ADD PRIMARY KEY (commune, week, flux)")
        conn.execute("ANALYZE tonnages")
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# the children


def _peak_mib() -> float:
    """This process's peak RSS: ``VmHWM``, which starts again at exec (``ru_maxrss`` keeps the forking parent's)."""
    peak_kib = _status_kib("VmHWM")
    return round((peak_kib or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024, 1)


def child_baseline(url: str) -> dict[str, Any]:
    from charter_guardrails.checks.integrity.table_hashing import _text_type, describe, stream_rows
    from sqlalchemy import create_engine

    engine = create_engine(_sqlalchemy(url))
    schema, keys = describe(engine, "tonnages")
    text_keys = {c for c, kind in schema if c in keys and _text_type(kind)}  # read as hash_table reads them
    started, rows = time.perf_counter(), 0
    for _ in stream_rows(engine, "tonnages", [c for c, _ in schema], keys, text_keys):
        rows += 1
    return {"seconds": round(time.perf_counter() - started, 2), "rows": rows}


def child_manifest(url: str) -> dict[str, Any]:
    from charter_guardrails.checks.integrity.table_hashing import hash_table
    from sqlalchemy import create_engine

    started = time.perf_counter()
    digest = hash_table(create_engine(_sqlalchemy(url)), "tonnages")
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "rows": digest.rows,
        "leaves": len(digest.leaves),
        "root": digest.root[:16],
    }


def child_quality(url: str) -> dict[str, Any]:
    from charter_guardrails.checks.quality._gx import quiet_gx
    from charter_guardrails.checks.quality.runner import validate_table
    from charter_guardrails.core.policy import UseCasePolicy

    quiet_gx()
    policy = UseCasePolicy.from_file(ROOT / "include" / "policies" / "waste_tonnage.yaml")
    started = time.perf_counter()
    result = validate_table(policy, "training", "tonnages", url=_sqlalchemy(url), run_id="bench_sources")
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "verdict": result.verdict.value,
        "evaluated": result.metrics["evaluated_expectations"],
        "summary": result.summary,  # which expectations failed, without values
    }


CHILDREN = {"baseline": child_baseline, "manifest": child_manifest, "quality": child_quality}


def run_child(name: str, url: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "CHARTER_HOME": home}
        done = subprocess.run(
            [sys.executable, __file__, "--child", name, url], capture_output=True, text=True, env=env, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"{name} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        out = CHILDREN[sys.argv[2]](sys.argv[3])
        print(json.dumps({**out, "peak_rss_mib": _peak_mib()}))
        return 0
    import psycopg

    rows = int(os.environ.get("BENCH_SOURCES_ROWS", 10_000_000))
    print(f"bench-sources: {rows:,} rows; 1-min load average at start {load_average()}", flush=True)
    name = f"charter_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        print(f"load (COPY + primary key): {load(url, rows):.1f} s", flush=True)
        results = {}
        for child in CHILDREN:
            results[child] = run_child(child, url)
            print(f"{child}: {results[child]}", flush=True)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    ratio = results["manifest"]["seconds"] / max(results["baseline"]["seconds"], 1e-9)
    worst = max(r["peak_rss_mib"] for r in results.values())
    ok = worst <= TARGET_RSS >> 20
    judged = rows >= JUDGED_FROM_ROWS
    print(
        f"table manifest {results['manifest']['seconds']} s = {ratio:.2f}x the plain read in key order "
        f"({results['baseline']['seconds']} s); quality in the database {results['quality']['seconds']} s "
        f"({results['quality']['verdict']}); peak RSS per child: "
        + ", ".join(f"{k} {v['peak_rss_mib']} MiB" for k, v in results.items())
        + f" (target <= {TARGET_RSS >> 20} MiB: {'OK' if ok else 'MISSED'}"
        + ("" if judged else f", judged from {JUDGED_FROM_ROWS:,} rows")
        + f"); 1-min load average at end {load_average()}",
        flush=True,
    )
    print(json.dumps({"rows": rows, "manifest_ratio": round(ratio, 2), **results}))
    return 0 if ok or not judged else 1


if __name__ == "__main__":
    sys.exit(main())
