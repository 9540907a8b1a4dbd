"""`make bench-integrity`: `charter verify` against `openssl dgst -sha256` on the same file, as whole processes.

For each size (default 256 MiB and 1 GiB; ``BENCH_SIZE_MIB=32`` for a CI smoke run), the script
writes a CSV file, registers its signed manifest in a throw-away ledger, warms the page cache,
then times ``BENCH_RUNS`` (default 5) alternated runs of each command and prints the medians, our
throughput divided by openssl's (target ≥ 1.0) and the peak RSS of our process (target ≤ 150 MiB,
and it must not grow with the file size). ``openssl dgst -sha256`` uses the CPU's SHA extensions on
one core; we hash Merkle leaves on every core, and the verify path imports no pandas, GX or Presidio.
Peak RSS is the child's own ``ru_maxrss``, from ``os.wait4``. The last column times the hashing
engine alone in a process (no CLI start-up, no ledger), to separate the hashing from the start-up.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
MIB = 1024 * 1024
TARGET_RATIO = 1.0
TARGET_RSS_MIB = 150


def _write_csv(path: Path, size: int) -> None:
    """A ``;``-separated CSV of ``size`` bytes: a random 4 MiB block of rows, repeated (content does not change
    hashing speed)."""
    rng = random.Random(20260101)
    rows = ["request_id;received_at;message;arrondissement;channel;age_band;category"]
    while sum(len(r) + 1 for r in rows) < 4 * MIB:
        rows.append(
            f"R{rng.randrange(10**9):09d};2026-0{rng.randrange(1, 10)}-1{rng.randrange(10)}T10:00:00;"
            f"Le lampadaire est en panne rue {rng.randrange(500)};132{rng.randrange(1, 17):02d};web;30-44;eclairage"
        )
    block = ("\n".join(rows[1:]) + "\n").encode()
    with path.open("wb") as handle:
        handle.write((rows[0] + "\n").encode())
        written = len(rows[0]) + 1
        while written < size:
            piece = block[: size - written]
            handle.write(piece)
            written += len(piece)


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MiB, CPU seconds) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {stderr[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def bench(size_mib: int, runs: int, workdir: Path, env: dict[str, str]) -> dict[str, float]:
    data = workdir / f"bench_{size_mib}mib.csv"
    _write_csv(data, size_mib * MIB)
    subprocess.run(
        [str(BIN / "charter"), "hash", str(data), "--dataset", "citizen_requests.training", "--quiet"],
        env=env,
        check=True,
    )
    openssl = [shutil.which("openssl") or "openssl", "dgst", "-sha256", str(data)]
    ours = [str(BIN / "charter"), "verify", str(data), "--dataset", "citizen_requests.training", "--quiet"]
    # The hashing engine alone in a process (no CLI, no ledger): what the Merkle hashing itself costs.
    engine = [
        sys.executable,
        "-c",
        "import sys\nfrom charter_guardrails.checks.integrity.hashing import hash_file\nhash_file(sys.argv[1])",
        str(data),
    ]
    commands = (("openssl", openssl), ("ours", ours), ("engine", engine))
    for _name, argv in commands:
        _run(argv, env)  # warm the page cache and the byte-compiled modules
    times: dict[str, list[float]] = {name: [] for name, _ in commands}
    rss: dict[str, list[float]] = {name: [] for name, _ in commands}
    cpu: dict[str, list[float]] = {name: [] for name, _ in commands}
    for _ in range(runs):  # alternated, so that background noise hits all alike
        for name, argv in commands:
            elapsed, peak, cpu_seconds = _run(argv, env)
            times[name].append(elapsed)
            rss[name].append(peak)
            cpu[name].append(cpu_seconds)
    data.unlink()
    size = size_mib * MIB
    result = {
        "size_mib": size_mib,
        "openssl_s": statistics.median(times["openssl"]),
        "ours_s": statistics.median(times["ours"]),
        "ours_rss_mib": max(rss["ours"]),
        "openssl_rss_mib": max(rss["openssl"]),
        "openssl_cpu_s": statistics.median(cpu["openssl"]),
        "ours_cpu_s": statistics.median(cpu["ours"]),
        "engine_s": statistics.median(times["engine"]),
    }
    result["openssl_gbps"] = size / result["openssl_s"] / 1e9
    result["ours_gbps"] = size / result["ours_s"] / 1e9
    result["ratio"] = result["openssl_s"] / result["ours_s"]
    result["engine_ratio"] = result["openssl_s"] / result["engine_s"]
    return result


def main() -> int:
    sizes = [int(s) for s in os.environ.get("BENCH_SIZE_MIB", "256,1024").split(",") if s.strip()]
    runs = int(os.environ.get("BENCH_RUNS", "5"))
    workdir = Path(tempfile.mkdtemp(prefix="charter-bench-integrity-", dir=os.environ.get("BENCH_DIR")))
    env = {**os.environ, "CHARTER_HOME": str(workdir / "home")}
    # Byte-compile once into the bench folder (the warm-up run writes it), as an installed package is;
    # the dev tree runs with PYTHONDONTWRITEBYTECODE, which would recompile the project at every start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    for name in (
        "CHARTER_LEDGER_URL",
        "CHARTER_SIGNING_KEY",
        "CHARTER_PUBLIC_KEY",
        "CHARTER_KEYS_DIR",
        "CHARTER_AUDIT_ANCHOR",
    ):
        env.pop(name, None)
    try:
        for argv in (["ledger", "migrate"], ["keys", "init"]):
            subprocess.run([str(BIN / "charter"), *argv], env=env, check=True, stdout=subprocess.DEVNULL)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        print(
            "integrity benchmark: `charter verify` vs `openssl dgst -sha256`, whole processes,"
            f" median of {runs} runs, {cores} cores"
            f" (load average {os.getloadavg()[0]:.1f} at start)"
        )
        print(
            f"{'size':>9}  {'openssl':>16}  {'charter verify':>16}  {'ratio':>6}  {'peak RSS (ours)':>15}"
            f"  {'CPU s openssl/ours':>18}  {'engine only':>17}"
        )
        results = []
        for size in sizes:
            r = bench(size, runs, workdir, env)
            results.append(r)
            print(
                f"{size:>5} MiB  {r['openssl_s']:>6.3f} s {r['openssl_gbps']:>4.2f} GB/s"
                f"  {r['ours_s']:>6.3f} s {r['ours_gbps']:>4.2f} GB/s"
                f"  {r['ratio']:>6.2f}  {r['ours_rss_mib']:>11.1f} MiB"
                f"  {r['openssl_cpu_s']:>8.2f} / {r['ours_cpu_s']:.2f}"
                f"  {r['engine_s']:>6.3f} s (x{r['engine_ratio']:.2f})",
                flush=True,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ratio_ok = (
        all(r["ratio"] >= TARGET_RATIO for r in results if r["size_mib"] >= 1024)
        if any(r["size_mib"] >= 1024 for r in results)
        else None
    )
    rss_ok = all(r["ours_rss_mib"] <= TARGET_RSS_MIB for r in results)
    if ratio_ok is None:
        ratio_text = "not measured (smoke size)"
    else:
        ratio_text = "target ≥ 1.0 met" if ratio_ok else "target ≥ 1.0 NOT met"
    print(f"throughput ratio ours/openssl at 1 GiB: {ratio_text}")
    print(
        f"peak RSS: {'≤ 150 MiB at every size' if rss_ok else 'ABOVE 150 MiB'}"
        + (
            f"; {results[0]['size_mib']} MiB -> {results[-1]['size_mib']} MiB:"
            f" {results[0]['ours_rss_mib']:.1f} -> {results[-1]['ours_rss_mib']:.1f} MiB"
            if len(results) > 1
            else ""
        )
    )
    strict = os.environ.get("BENCH_STRICT") == "1"
    return 1 if strict and (ratio_ok is False or not rss_ok) else 0


if __name__ == "__main__":
    sys.exit(main())
