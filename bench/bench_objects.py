"""`make bench-objects`: an object of an S3-compatible bucket registered, in bounded memory, against a plain download.

moto's S3-compatible server runs in this process on loopback (HTTP); a versioned bucket gets one CSV object of
``BENCH_OBJECT_MIB`` MiB (default 256). Then, each in a child process of its own whose peak RSS (``VmHWM``) is
reported:

1. **baseline**: boto3's ``download_file`` of the object to a local file: the least any reader of the object pays;
2. **register**: what ``charter hash --dataset`` does for an object dataset: the object staged under the data folder
   (``readers.objects.stage``, streamed in 8 MiB reads at the version described) and its manifest computed
   (``checks.integrity.manifest.build_manifest``); the ratio to the baseline is printed.

Target: the register child's peak RSS <= 256 MiB whatever the object's size (judged from 256 MiB). The 1-minute
load average is printed at the start and at the end; the times count only when the start is below 0.5. Smoke size
for CI: ``make bench-objects-smoke`` (16 MiB). Exit 1 when a judged target is missed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_sources import _peak_mib, load_average  # noqa: E402

TARGET_RSS_MIB = 256
JUDGED_FROM_MIB = 256
KEY = "deliveries/tonnages.csv"


def _write_csv(path: Path, mib: int) -> None:
    line = "Marseille;2026-W14;biodéchets;1234,5;collecte en porte-à-porte\n".encode()
    block = line * (1024 * 1024 // len(line) + 1)
    with path.open("wb") as out:
        out.write(b"commune;semaine;flux;tonnes;mode\n")
        for _ in range(mib):
            out.write(block[: 1024 * 1024])


def child_baseline(endpoint: str, bucket: str, target: str) -> dict[str, Any]:
    from tests.object_store import Bucket

    client = Bucket(bucket, endpoint).client()
    started = time.perf_counter()
    client.download_file(bucket, KEY, target)
    return {"seconds": round(time.perf_counter() - started, 2), "bytes": Path(target).stat().st_size}


def child_register(endpoint: str, bucket: str, target: str) -> dict[str, Any]:
    from charter_guardrails.checks.integrity.manifest import build_manifest
    from charter_guardrails.incidents.connections import parse_connection_json
    from charter_guardrails.readers.objects import locate, stage

    from tests.object_store import connection_json

    uri = f"s3://{bucket}/{KEY}"
    started = time.perf_counter()
    info = stage(locate(uri, parse_connection_json("bench", connection_json(endpoint))), uri, Path(target))
    staged = time.perf_counter() - started
    document = build_manifest(target, use_case="waste_tonnage", dataset="training")
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "staging_seconds": round(staged, 2),
        "bytes": info.size,
        "version_id": info.version_id,
        "root": document["merkle_root"][:16],
    }


CHILDREN = {"baseline": child_baseline, "register": child_register}


def run_child(name: str, endpoint: str, bucket: str, folder: Path) -> dict[str, Any]:
    target = folder / f"{name}.csv"
    env = {**os.environ, "CHARTER_HOME": str(folder / "home")}
    argv = [sys.executable, __file__, "--child", name, endpoint, bucket, str(target)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} child failed:\n{done.stderr[-3000:]}")
    target.unlink(missing_ok=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        out = CHILDREN[sys.argv[2]](*sys.argv[3:6])
        print(json.dumps({**out, "peak_rss_mib": _peak_mib()}))
        return 0
    from tests.object_store import Bucket

    mib = int(os.environ.get("BENCH_OBJECT_MIB", 256))
    print(f"bench-objects: one {mib} MiB object; 1-min load average at start {load_average()}", flush=True)
    bucket = Bucket.create()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        source = folder / "source.csv"
        _write_csv(source, mib)
        started = time.perf_counter()
        bucket.client().upload_file(str(source), bucket.name, KEY)
        source.unlink()
        print(f"upload to the loopback server: {time.perf_counter() - started:.1f} s", flush=True)
        results = {name: run_child(name, bucket.endpoint, bucket.name, folder) for name in CHILDREN}
    for name, result in results.items():
        print(f"{name}: {result}", flush=True)
    ratio = results["register"]["seconds"] / max(results["baseline"]["seconds"], 1e-9)
    peak = results["register"]["peak_rss_mib"]
    ok, judged = peak <= TARGET_RSS_MIB, mib >= JUDGED_FROM_MIB
    print(
        f"object staged and hashed in {results['register']['seconds']} s = {ratio:.2f}x boto3's download "
        f"({results['baseline']['seconds']} s); peak RSS: register {peak} MiB, download "
        f"{results['baseline']['peak_rss_mib']} MiB (target <= {TARGET_RSS_MIB} MiB: {'OK' if ok else 'MISSED'}"
        + ("" if judged else f", judged from {JUDGED_FROM_MIB} MiB")
        + f"); 1-min load average at end {load_average()}",
        flush=True,
    )
    print(json.dumps({"mib": mib, "ratio": round(ratio, 2), **results}))
    return 0 if ok or not judged else 1


if __name__ == "__main__":
    sys.exit(main())
