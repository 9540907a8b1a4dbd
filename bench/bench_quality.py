"""`make bench-quality`: the cost of the charter's quality runner, and SQL pushdown at scale.

1. On BENCH_ROWS rows (default 1,000,000) in a pandas DataFrame, with the ``waste_tonnage.training``
   suite (25 expectations), time ``validate_frame`` (GX validation + redaction + CheckResult + Data Docs)
   against bare GX (``batch.validate`` of the same suite, same result format) in the same run.
   Medians of BENCH_RUNS runs (default 3), alternating the order. Target: ratio <= 1.15.
2. Create a scratch PostgreSQL database on 127.0.0.1:5432 (user postgres), load BENCH_PG_ROWS rows
   (default 10,000,000) with COPY, validate the table through GX's SQL datasource in a child process
   and report that process's peak RSS (target <= 1 GiB); the database is dropped afterwards.

Smoke size for CI: ``BENCH_ROWS=20000 BENCH_PG_ROWS=50000 BENCH_RUNS=1 make bench-quality``;
``BENCH_PG_ROWS=0`` skips the PostgreSQL part.
"""

from __future__ import annotations

import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
COMMUNES = ["13055", "13001", "13005", "13028", "13047", "13056", "13063", "13071", "13103", "13117", "13002", "13041"]
FLUX = ["ordures_menageres", "tri_selectif", "verre", "encombrants"]
TARGET_RATIO = 1.15
TARGET_RSS = 1 << 30


def synthetic(rows: int, start: int = 0) -> Any:
    """Waste-tonnage-like rows, unique per (commune, week, flux), typed as ``apply_types`` would."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(start + 7)
    i = np.arange(start, start + rows)
    base = np.datetime64(datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0), "us")
    frame = pd.DataFrame(
        {
            "commune": pd.array(np.array(COMMUNES)[(i // 4) % 12], dtype="string"),
            # one "week" per day back in time keeps the compound key unique on any size
            "week": base - (i // 48).astype("timedelta64[D]"),
            "flux": pd.array(np.array(FLUX)[i % 4], dtype="string"),
            "population": pd.array(rng.integers(9000, 900000, rows), dtype="Int64"),
            "jours_feries": pd.array((rng.random(rows) < 0.12).astype("int64"), dtype="Int64"),
            "pluie_mm": pd.array(np.clip(rng.normal(12, 9, rows), 0, None).round(3), dtype="Float64"),
            "tonnage_t": pd.array(rng.uniform(1, 900, rows).round(3), dtype="Float64"),
        }
    )
    return frame


def bench_runner(rows: int, runs: int) -> dict[str, Any]:
    from charter_guardrails.checks.quality._gx import ephemeral_context
    from charter_guardrails.checks.quality.runner import validate_frame
    from charter_guardrails.checks.quality.suite_run import RESULT_FORMAT, suite_parameters
    from charter_guardrails.checks.quality.suites import build_gx_suite, load_suite
    from charter_guardrails.core.policy import UseCasePolicy

    policy = UseCasePolicy.from_file(ROOT / "include" / "policies" / "waste_tonnage.yaml")
    loaded = load_suite("waste_tonnage.training.json")
    frame = synthetic(rows)
    params = suite_parameters(policy.training_dataset, loaded)

    def bare() -> float:
        started = time.perf_counter()
        context = ephemeral_context()
        suite = context.suites.add(build_gx_suite(loaded.path, loaded.name, loaded.expectations))
        batch = (
            context.data_sources.add_pandas("bare")
            .add_dataframe_asset("t")
            .add_batch_definition_whole_dataframe("b")
            .get_batch(batch_parameters={"dataframe": frame})
        )
        batch.validate(suite, result_format=RESULT_FORMAT, expectation_parameters=params)
        return time.perf_counter() - started

    def ours() -> float:
        started = time.perf_counter()
        result = validate_frame(policy, "training", frame, suite=loaded, run_id=f"bench_{uuid.uuid4().hex[:6]}")
        elapsed = time.perf_counter() - started
        assert result.metrics["evaluated_expectations"] == len(loaded.expectations)
        return elapsed

    bare(), ours()  # warm-up: imports, first-use caches
    bare_times, our_times = [], []
    for run in range(runs):
        for name in ("bare", "ours") if run % 2 == 0 else ("ours", "bare"):
            (bare_times if name == "bare" else our_times).append(bare() if name == "bare" else ours())
    b, o = statistics.median(bare_times), statistics.median(our_times)
    return {
        "rows": rows,
        "expectations": len(loaded.expectations),
        "runs": runs,
        "bare_gx_s": round(b, 3),
        "runner_s": round(o, 3),
        "ratio": round(o / b, 3),
        "target": TARGET_RATIO,
        "ok": o / b <= TARGET_RATIO,
    }


def _pg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def bench_postgres(rows: int) -> dict[str, Any]:
    import psycopg

    name = f"charter_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        started = time.perf_counter()
        with psycopg.connect(url) as conn:
            conn.execute(
                "CREATE UNLOGGED TABLE tonnages (commune text, week timestamp, flux text, population bigint, "
                "jours_feries bigint, pluie_mm double precision, tonnage_t double precision)"
            )
            chunk = 500_000
            with conn.cursor().copy("COPY tonnages FROM STDIN WITH (FORMAT csv)") as copy:
                for start in range(0, rows, chunk):
                    buffer = io.StringIO()
                    synthetic(min(chunk, rows - start), start).to_csv(
                        buffer, header=False, index=False, date_format="%Y-%m-%d %H:%M:%S"
                    )
                    copy.write(buffer.getvalue())
            conn.execute("ANALYZE tonnages")
        load_s = time.perf_counter() - started
        # the validation runs in its own process so that its peak RSS is not the loader's
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "CHARTER_HOME": home}
            child = subprocess.run(
                [sys.executable, __file__, "--validate-table", url], capture_output=True, text=True, env=env
            )
        if child.returncode != 0:
            raise RuntimeError(f"validation child failed:\n{child.stderr[-3000:]}")
        out = json.loads(child.stdout.strip().splitlines()[-1])
        out.update(
            {
                "rows": rows,
                "load_s": round(load_s, 1),
                "target_rss_mib": TARGET_RSS >> 20,
                "ok": out["peak_rss_bytes"] <= TARGET_RSS,
            }
        )
        return out
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def validate_table_child(url: str) -> None:
    from charter_guardrails.checks.quality.runner import validate_table
    from charter_guardrails.core.policy import UseCasePolicy

    policy = UseCasePolicy.from_file(ROOT / "include" / "policies" / "waste_tonnage.yaml")
    started = time.perf_counter()
    result = validate_table(policy, "training", "tonnages", url=_pg(url), run_id="bench_pg")
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(
        json.dumps(
            {
                "validate_s": round(elapsed, 1),
                "peak_rss_bytes": peak,
                "peak_rss_mib": round(peak / 2**20, 1),
                "verdict": result.verdict.value,
                "evaluated": result.metrics["evaluated_expectations"],
                "failed_error": result.metrics["failed_error"],
                "table_rows": result.metrics["rows"],
            }
        )
    )


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--validate-table":
        validate_table_child(sys.argv[2])
        return 0
    from charter_guardrails.checks.quality._gx import quiet_gx

    quiet_gx()
    rows = int(os.environ.get("BENCH_ROWS", 1_000_000))
    pg_rows = int(os.environ.get("BENCH_PG_ROWS", 10_000_000))
    runs = int(os.environ.get("BENCH_RUNS", 3))
    os.environ.setdefault("CHARTER_HOME", tempfile.mkdtemp(prefix="charter_bench_"))
    first = bench_runner(rows, runs)
    print(
        f"runner vs bare GX, {first['rows']:,} rows, {first['expectations']} expectations, median of {runs}: "
        f"bare {first['bare_gx_s']} s, ours {first['runner_s']} s, ratio {first['ratio']} (target <= {TARGET_RATIO}) "
        f"{'OK' if first['ok'] else 'MISSED'}",
        flush=True,
    )
    if pg_rows <= 0:  # BENCH_PG_ROWS=0: the runner ratio only
        return 0 if first["ok"] else 1
    second = bench_postgres(pg_rows)
    print(
        f"PostgreSQL pushdown, {second['rows']:,} rows: load (COPY) {second['load_s']} s,"
        f" validation {second['validate_s']} s, "
        f"peak RSS {second['peak_rss_mib']} MiB (target <= {TARGET_RSS >> 20} MiB)"
        f" {'OK' if second['ok'] else 'MISSED'}; "
        f"verdict {second['verdict']} ({second['failed_error']} error expectation(s) failed of {second['evaluated']})",
        flush=True,
    )
    print(json.dumps({"runner": first, "postgres": second}))
    return 0 if first["ok"] and second["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
